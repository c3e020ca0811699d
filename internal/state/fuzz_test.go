package state

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portmapd/portmapd/pmap"
)

// FuzzLoad feeds arbitrary bytes to Store.Load as the state file. Load must
// not panic or hang; a file it refuses must be gone from its place; a table
// it accepts must survive Save and Load unchanged, and match what the
// decoder alone makes of the bytes. Seeds: testdata/fuzz/FuzzLoad
// (regenerate with go test -run TestFuzzSeeds -update).
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Open(fuzzDir(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, s.Path(), data, 0o600)
		ms := s.Load()

		decoded, boot, _, derr := decodeState(data)
		_, statErr := os.Lstat(s.Path())
		refused := derr != nil || (boot != "" && s.bootID != "" && boot != s.bootID)
		switch {
		case refused && statErr == nil:
			t.Fatalf("refused file (%v) left in place", derr)
		case refused && ms != nil:
			t.Fatalf("refused file yielded %v", ms)
		case !refused && statErr != nil:
			t.Fatalf("accepted file moved: %v", statErr)
		case !refused && len(ms) > len(decoded):
			t.Fatalf("Load made up rows: %d from %d", len(ms), len(decoded))
		}
		if err := s.Save(ms); err != nil {
			t.Fatalf("Save of a loaded table: %v", err)
		}
		if again := s.Load(); !slices.Equal(again, ms) {
			t.Fatalf("Save/Load changed the table:\n%v\n%v", ms, again)
		}
	})
}

// FuzzLoadJournal feeds arbitrary bytes to Store.Load as the journal after
// a valid snapshot of sample. Load must not panic; an accepted journal's
// table must be what replaying its good records gives; whatever the
// bytes, a change appended afterwards must load after that table (a torn
// or damaged tail is cut off, never appended to). Seeds:
// testdata/fuzz/FuzzLoadJournal.
func FuzzLoadJournal(f *testing.F) {
	snap, err := encodeState(sample, "", 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Open(fuzzDir(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, s.Path(), snap, 0o600)
		writeFile(t, s.jpath, data, 0o600)
		ms := s.Load()
		if j, err := decodeJournal(data); err == nil && (j.bootID == "" || j.bootID == s.bootID) && j.base == 0 {
			want, _ := replay(slices.Clone(sample), j.recs, 0)
			want = dropOwnRows(s.log, "", want)
			if !slices.Equal(ms, want) {
				t.Fatalf("Load = %v, replaying the good records gives %v", ms, want)
			}
		}
		reg := pmap.NewRegistry()
		reg.SetAll(ms)
		w := NewWriter(s, reg, nil)
		defer w.Close()
		m := pmap.Mapping{Prog: 0x7fff0000, Vers: 1, Netid: "tcp", Addr: "127.0.0.1.1.1", Owner: "superuser"}
		if err := set(t, reg, w, m); err != nil {
			t.Fatal(err)
		}
		if got := onDisk(t, s); !slices.Equal(got, reg.Mappings()) {
			t.Fatalf("after a change the disk holds %v, the table %v", got, reg.Mappings())
		}
	})
}

// FuzzLoadRpcbind feeds arbitrary bytes as rpcbind.xdr and as portmap.xdr.
func FuzzLoadRpcbind(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{RpcbindFile, PortmapFile} {
			dir := fuzzDir(t)
			writeFile(t, filepath.Join(dir, name), data, 0o600)
			ms := LoadRpcbind([]string{dir}, nil)
			if len(ms) > len(data)/20 {
				t.Fatalf("%s: %d rows from %d bytes", name, len(ms), len(data))
			}
			// Whatever rpcbind left, portmapd can save.
			s, err := Open(fuzzDir(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Save(ms); err != nil {
				t.Fatalf("%s: Save of imported rows: %v", name, err)
			}
		}
	})
}

// fuzzDir is a fresh directory on tmpfs when there is one: the targets
// save, and an fsync per input on a disk would cut fuzzing to a crawl.
func fuzzDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "portmapd-fuzz")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestFuzzSeeds keeps the seed corpora in testdata/fuzz: with -update it
// writes them, otherwise it checks each still reaches the outcome it was
// made for.
func TestFuzzSeeds(t *testing.T) {
	valid, _ := encodeState(sample, "", 0)
	rpcb := readFixture(t, "registrations/rpcbind.xdr")
	pmapf := readFixture(t, "registrations/portmap.xdr")
	jhdr := encodeJournalHeader("", 0)
	jrecs := appendRecord(appendRecord(nil, 1, pmap.Change{Mapping: registered[0]}), 2,
		pmap.Change{Removed: true, Mapping: sample[0]})
	seeds := map[string]map[string][]byte{
		"FuzzLoad": {
			"valid":             valid,
			"empty-table":       header(1, "").u32(0).seal(),
			"empty-file":        nil,
			"torn":              valid[:len(valid)-6],
			"version-2":         header(3, "").u32(0).seal(),
			"huge-count":        header(1, "").u32(^uint32(0)).seal(),
			"huge-string":       header(1, "").u32(1).u32(1).u32(1).u32(0xfffffff0).seal(),
			"string-over-max":   header(1, "").u32(1).u32(1).u32(1).str(string(make([]byte, MaxString+1))).str("").str("").seal(),
			"trailing-bytes":    header(1, "").u32(1).entry(sample[0]).u32(0).seal(),
			"duplicates":        header(1, "").u32(2).entry(sample[0]).entry(sample[0]).seal(),
			"own-rows":          header(1, "").u32(1).entry(registeredOwn).seal(),
			"other-boot":        header(1, "someone-else").u32(1).entry(sample[0]).seal(),
			"long-boot-id":      header(1, string(make([]byte, 65))).u32(0).seal(),
			"rpcbind-file":      rpcb,
			"nonzero-padding":   header(1, "").u32(1).u32(1).u32(1).u32(1).u32(0x61ffffff).u32(0).u32(0).seal(),
			"unsealed-valid":    header(1, "").u32(0),
			"magic-and-version": header(1, ""),
		},
		"FuzzLoadJournal": {
			"valid":         slices.Concat(jhdr, jrecs),
			"header-only":   jhdr,
			"torn-record":   slices.Concat(jhdr, jrecs[:len(jrecs)-3]),
			"bad-crc":       slices.Concat(jhdr, jrecs[:len(jrecs)-1], []byte{0}),
			"seq-gap":       slices.Concat(jhdr, appendRecord(nil, 2, pmap.Change{Mapping: sample[1]})),
			"huge-length":   slices.Concat(jhdr, xb{}.u32(0xfffffff0)),
			"other-base":    encodeJournalHeader("", 7),
			"other-boot":    encodeJournalHeader("someone-else", 0),
			"empty":         nil,
			"snapshot-file": valid,
		},
		"FuzzLoadRpcbind": {
			"rpcbind-1.2.6-rpcbind": rpcb,
			"rpcbind-1.2.6-portmap": pmapf,
			"empty-list":            xb{}.u32(0),
			"no-end-marker":         rpcb[:len(rpcb)-4],
			"huge-string":           xb{}.u32(1).u32(1).u32(1).u32(0xfffffff0),
			"flag-not-bool":         xb{}.u32(2).entry(sample[0]).u32(0),
			"bad-prot":              pmapList([4]uint32{1, 1, 99, 80}),
		},
	}
	for target, files := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, data := range files {
			path := filepath.Join(dir, name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, path, []byte(want), 0o644)
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("seed missing (run with -update): %v", err)
				continue
			}
			if string(got) != want {
				t.Errorf("seed %s/%s is out of date (run with -update)", target, name)
			}
		}
	}
}

// registeredOwn is a row of the portmapper itself, which Load drops.
var registeredOwn = pmap.Mapping{Prog: pmap.Program, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.111", Owner: "superuser"}
