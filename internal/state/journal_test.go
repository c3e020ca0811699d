package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

// journaled makes a store whose snapshot holds sample and whose journal
// holds n SETs after it, one record each, as a daemon leaves them. It
// returns the store and the table after each record (tables[0]: none).
func journaled(t *testing.T, n int) (*Store, [][]pmap.Mapping) {
	t.Helper()
	s := openStore(t)
	if err := s.Save(sample); err != nil {
		t.Fatal(err)
	}
	reg, w := newWriter(t, s)
	tables := [][]pmap.Mapping{reg.Mappings()}
	for i := range n {
		if err := set(t, reg, w, row(7, i)); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, reg.Mappings())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return s, tables
}

// A crash can tear the last record at any byte; the records before it
// load, and the next change is appended after them, never after the
// torn bytes.
func TestJournalTornTail(t *testing.T) {
	const n = 3
	src, tables := journaled(t, n)
	snap, err := os.ReadFile(src.Path())
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(src.jpath)
	if err != nil {
		t.Fatal(err)
	}
	recLen := (len(full) - len(encodeJournalHeader(src.bootID, 0))) / n
	for cut := len(full) - 2*recLen; cut < len(full); cut++ {
		s := openStore(t)
		writeFile(t, s.Path(), snap, 0o600)
		writeFile(t, s.jpath, full[:cut], 0o600)
		whole := n - (len(full)-cut+recLen-1)/recLen
		reg := pmap.NewRegistry()
		got := s.Load()
		if !slices.Equal(got, tables[whole]) {
			t.Fatalf("cut at %d of %d: Load = %v, want the table after %d records", cut, len(full), got, whole)
		}
		reg.SetAll(got)
		w := NewWriter(s, reg, nil)
		if err := set(t, reg, w, row(8, cut)); err != nil {
			t.Fatal(err)
		}
		w.Close()
		want := append(slices.Clone(tables[whole]), row(8, cut))
		if got := onDisk(t, s); !slices.Equal(got, want) {
			t.Fatalf("cut at %d: after a new change the disk holds %v, want %v", cut, got, want)
		}
	}
}

// A damaged record (bit flip, a record out of sequence) ends the journal
// there with a warning; the records before it are kept.
func TestJournalDamagedRecordEndsIt(t *testing.T) {
	src, tables := journaled(t, 4)
	full, err := os.ReadFile(src.jpath)
	if err != nil {
		t.Fatal(err)
	}
	hdr := len(encodeJournalHeader(src.bootID, 0))
	recLen := (len(full) - hdr) / 4
	flip := slices.Clone(full)
	flip[hdr+2*recLen+20] ^= 0x40                                 // inside the third record
	skip := slices.Concat(full[:hdr+recLen], full[hdr+2*recLen:]) // the second record lost
	for _, tc := range []struct {
		name string
		data []byte
		want []pmap.Mapping
	}{
		{"bit flip in the third record", flip, tables[2]},
		{"a record missing from the sequence", skip, tables[1]},
		{"garbage after the last record", append(slices.Clone(full), 0, 0, 0, 40, 1, 2), tables[4]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := observed()
			s, err := Open(t.TempDir(), log)
			if err != nil {
				t.Fatal(err)
			}
			copyFile(t, src.Path(), s.Path())
			writeFile(t, s.jpath, tc.data, 0o600)
			if got := s.Load(); !slices.Equal(got, tc.want) {
				t.Errorf("Load = %v, want %v", got, tc.want)
			}
			if logs.FilterMessageSnippet("torn or damaged").Len() != 1 {
				t.Errorf("no warning about the journal's tail: %v", logs.All())
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b, 0o600)
}

// A journal is read as hostile as the snapshot: a refused journal is
// moved aside, named after the reason, and the snapshot alone loads.
func TestJournalRefusesHostileFiles(t *testing.T) {
	src, _ := journaled(t, 2)
	valid, err := os.ReadFile(src.jpath)
	if err != nil {
		t.Fatal(err)
	}
	hdr := encodeJournalHeader(src.bootID, 0)
	for _, tc := range []struct {
		name   string
		root   bool
		setup  func(t *testing.T, path string)
		reason string
	}{
		{"empty journal is truncated", false, func(t *testing.T, p string) { writeFile(t, p, nil, 0o600) }, "truncated"},
		{"torn header is truncated", false, func(t *testing.T, p string) { writeFile(t, p, hdr[:len(hdr)-3], 0o600) }, "truncated"},
		{"damaged header fails its checksum", false, func(t *testing.T, p string) {
			b := slices.Clone(valid)
			b[len(hdr)-6] ^= 1 // in base
			writeFile(t, p, b, 0o600)
		}, "checksum"},
		{"stranger's file is not a journal", false, func(t *testing.T, p string) { writeFile(t, p, []byte("hello, journal!\n"), 0o600) }, "magic"},
		{"newer journal version is moved aside", false, func(t *testing.T, p string) {
			writeFile(t, p, xb(journalMagic).u32(2).str("").u32(0).u32(0).seal(), 0o600)
		}, "version"},
		{"journal from an earlier boot is stale", false, func(t *testing.T, p string) {
			writeFile(t, p, encodeJournalHeader("00000000-0000-0000-0000-000000000000", 0), 0o600)
		}, "stale"},
		{"journal after a snapshot that is not there", false, func(t *testing.T, p string) {
			writeFile(t, p, encodeJournalHeader(src.bootID, 99), 0o600)
		}, "corrupt"},
		{"journal beyond MaxFileSize is not read", false, func(t *testing.T, p string) {
			writeFile(t, p, valid, 0o600)
			if err := os.Truncate(p, MaxFileSize+1); err != nil {
				t.Fatal(err)
			}
		}, "toolarge"},
		{"symbolic link is moved, its target untouched", false, func(t *testing.T, p string) {
			target := t.TempDir() + "/elsewhere"
			writeFile(t, target, valid, 0o600)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}, "symlink"},
		{"FIFO is refused without blocking", false, func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "notregular"},
		{"journal writable by others is refused", false, func(t *testing.T, p string) { writeFile(t, p, valid, 0o602) }, "mode"},
		{"journal owned by another user is refused", true, func(t *testing.T, p string) {
			writeFile(t, p, valid, 0o600)
			if err := os.Lchown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && !isRoot() {
				t.Skip("needs root to chown")
			}
			s, err := Open(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			copyFile(t, src.Path(), s.Path())
			tc.setup(t, s.jpath)
			done := make(chan []pmap.Mapping)
			go func() { done <- s.Load() }()
			select {
			case got := <-done:
				if !slices.Equal(got, sample) {
					t.Errorf("Load = %v, want the snapshot's %v", got, sample)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked")
			}
			if aside := asideFiles(t, s.jpath); aside[tc.reason] != 1 || len(aside) != 1 {
				t.Errorf("moved-aside journals by reason: %v, want one %q", aside, tc.reason)
			}
			// The next change saves the whole table and the pair loads.
			reg := pmap.NewRegistry()
			reg.SetAll(sample)
			w := NewWriter(s, reg, nil)
			defer w.Close()
			if err := set(t, reg, w, row(9, 1)); err != nil {
				t.Fatal(err)
			}
			if got := onDisk(t, s); !slices.Equal(got, append(slices.Clone(sample), row(9, 1))) {
				t.Errorf("after recovery the disk holds %v", got)
			}
		})
	}
}

// A compaction installs the new snapshot, then the new journal; a crash
// between the two leaves the new snapshot with the old journal, whose
// records up to the snapshot's seq are skipped and the rest replayed.
func TestCompactionCrashBetweenRenames(t *testing.T) {
	s, tables := journaled(t, 6)
	// The snapshot as a compaction after the fourth record writes it.
	ms := slices.Clone(tables[4])
	if _, err := s.writeCompaction(ms, 4); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.ctmp, s.Path()); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, s); !slices.Equal(got, tables[6]) {
		t.Errorf("new snapshot with the old journal loads as %v, want %v", got, tables[6])
	}
	// A snapshot newer than every record: nothing replays, and the next
	// change starts a journal after it rather than leaving a gap.
	if _, err := s.writeCompaction(tables[6], 9); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.ctmp, s.Path()); err != nil {
		t.Fatal(err)
	}
	reg := pmap.NewRegistry()
	reg.SetAll(s.Load())
	w := NewWriter(s, reg, nil)
	defer w.Close()
	if err := set(t, reg, w, row(10, 1)); err != nil {
		t.Fatal(err)
	}
	if got, want := onDisk(t, s), append(slices.Clone(tables[6]), row(10, 1)); !slices.Equal(got, want) {
		t.Errorf("after the next change the disk holds %v, want %v", got, want)
	}
	if w.saves.Load() != 1 {
		t.Errorf("%d whole saves, want 1 (a journal behind the snapshot is not appended to)", w.saves.Load())
	}
}

// Replaying UNSET records removes the rows wherever they are, and a SET
// of a taken key changes nothing, as in the registry.
func TestReplayFollowsTheRegistry(t *testing.T) {
	s := openStore(t)
	reg, w := newWriter(t, s)
	ctx := context.Background()
	for i := range 5 {
		if err := set(t, reg, w, row(11, i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []uint32{0, 3} {
		if _, gen := reg.UnsetAt(row(11, 0).Prog, i, "", pmap.OwnerSuperuser); w.Wait(ctx, gen) != nil {
			t.Fatal("UNSET failed")
		}
	}
	if err := set(t, reg, w, row(11, 0)); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, s); !slices.Equal(got, reg.Mappings()) {
		t.Errorf("disk %v, table %v", got, reg.Mappings())
	}
	if !errors.Is(w.Close(), nil) {
		t.Fatal("Close failed")
	}
}

// Inspect reads what Load would, and changes nothing.
func TestInspect(t *testing.T) {
	s, tables := journaled(t, 3)
	full, err := os.ReadFile(s.jpath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.jpath, full[:len(full)-5], 0o600)
	ms, tail, err := Inspect(s.dir)
	if err != nil || tail == "" || !slices.Equal(ms, tables[2]) {
		t.Fatalf("Inspect = %v, %q, %v; want the table after 2 records and a torn tail", ms, tail, err)
	}
	if after, _ := os.ReadFile(s.jpath); len(after) != len(full)-5 {
		t.Error("Inspect changed the journal")
	}
	writeFile(t, s.Path(), []byte("junk"), 0o600)
	if _, _, err := Inspect(s.dir); !errors.Is(err, ErrTruncated) {
		t.Errorf("Inspect of a junk snapshot: %v", err)
	}
	if _, err := os.Stat(s.Path()); err != nil {
		t.Errorf("Inspect moved the snapshot: %v", err)
	}
}

// Whatever mix of changes the registry makes (keys set again, removed
// and set anew, UNSETs of every netid at once, netids in capitals), the
// snapshot and journal load as the registry's table, DUMP order included.
func TestJournalReplaysLikeTheRegistry(t *testing.T) {
	s := openStore(t)
	if err := s.Save(sample); err != nil {
		t.Fatal(err)
	}
	reg, w := newWriter(t, s)
	rng := rand.New(rand.NewPCG(1, 2))
	netids := []string{"udp", "tcp", "TCP", "udp6", "local"}
	for i := range 600 {
		prog, vers := uint32(100003+rng.IntN(5)), uint32(1+rng.IntN(3))
		netid := netids[rng.IntN(len(netids))]
		var gen uint64
		if rng.IntN(3) > 0 {
			_, gen = reg.SetAt(pmap.Mapping{Prog: prog, Vers: vers, Netid: netid,
				Addr: fmt.Sprintf("0.0.0.0.%d.%d", rng.IntN(3), i%256), Owner: "superuser"})
		} else {
			if rng.IntN(2) == 0 {
				netid = ""
			}
			_, gen = reg.UnsetAt(prog, vers, netid, pmap.OwnerSuperuser)
		}
		if err := w.Wait(context.Background(), gen); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if got := onDisk(t, s); !slices.Equal(got, reg.Mappings()) {
				t.Fatalf("after %d changes the files load as\n%v\nthe registry holds\n%v", i+1, got, reg.Mappings())
			}
		}
	}
}
