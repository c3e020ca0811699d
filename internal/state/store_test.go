package state

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := openStore(t)
	if err := s.Save(sample); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %04o, want 0600", fi.Mode().Perm())
	}
	if got := s.Load(); !slices.Equal(got, sample) {
		t.Errorf("Load = %v, want %v", got, sample)
	}
	// Save replaces, never appends.
	if err := s.Save(sample[:1]); err != nil {
		t.Fatal(err)
	}
	if got := s.Load(); !slices.Equal(got, sample[:1]) {
		t.Errorf("after second Save, Load = %v", got)
	}
	if err := s.Save(nil); err != nil {
		t.Fatal(err)
	}
	if got := s.Load(); got != nil {
		t.Errorf("after saving an empty table, Load = %v", got)
	}
	if _, err := os.Stat(s.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestSaveRefusalKeepsPreviousFile(t *testing.T) {
	s := openStore(t)
	if err := s.Save(sample); err != nil {
		t.Fatal(err)
	}
	err := s.Save([]pmap.Mapping{{Prog: 1, Netid: strings.Repeat("n", MaxString+1)}})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Save of an oversized row: %v, want ErrTooLarge", err)
	}
	if got := s.Load(); !slices.Equal(got, sample) {
		t.Errorf("previous table lost: %v", got)
	}
}

func TestLoadCleansRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []pmap.Mapping
		want []pmap.Mapping
	}{
		{"portmapper's own rows are dropped", []pmap.Mapping{
			{Prog: pmap.Program, Vers: 4, Netid: "tcp", Addr: "0.0.0.0.0.111", Owner: "superuser"}, sample[0],
		}, sample[:1]},
		// The registry's SetAll keeps the first (pmap's TestSetAll).
		{"a repeated (prog, vers, netid) is left to the registry", []pmap.Mapping{
			sample[0], {Prog: sample[0].Prog, Vers: sample[0].Vers, Netid: sample[0].Netid, Addr: "0.0.0.0.9.9"},
		}, []pmap.Mapping{
			sample[0], {Prog: sample[0].Prog, Vers: sample[0].Vers, Netid: sample[0].Netid, Addr: "0.0.0.0.9.9"},
		}},
		{"same prog and vers on another netid is kept", sample[:2], sample[:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			if err := s.Save(tc.in); err != nil {
				t.Fatal(err)
			}
			if got := s.Load(); !slices.Equal(got, tc.want) {
				t.Errorf("Load = %v, want %v", got, tc.want)
			}
		})
	}
}

// Every refused file: Load returns an empty table, the file is gone from
// its place, a copy named after the reason is next to it, and one log
// line names the file and the reason.
func TestLoadRefusesHostileFiles(t *testing.T) {
	valid, err := encodeState(sample, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		root   bool // needs chown
		setup  func(t *testing.T, path string)
		reason string
	}{
		{"empty file is truncated", false, func(t *testing.T, p string) { writeFile(t, p, nil, 0o600) }, "truncated"},
		{"torn write fails the checksum", false, func(t *testing.T, p string) {
			writeFile(t, p, valid[:len(valid)-13], 0o600)
		}, "checksum"},
		{"zeroed block fails the checksum", false, func(t *testing.T, p string) {
			b := slices.Clone(valid)
			clear(b[16:48])
			writeFile(t, p, b, 0o600)
		}, "checksum"},
		{"stranger's file is not a state file", false, func(t *testing.T, p string) {
			writeFile(t, p, []byte("100003 3 tcp 2049\n"), 0o600)
		}, "magic"},
		{"newer format version is moved aside, not misread", false, func(t *testing.T, p string) {
			writeFile(t, p, header(3, "").u32(0).seal(), 0o600)
		}, "version"},
		{"huge count is refused", false, func(t *testing.T, p string) {
			writeFile(t, p, header(1, "").u32(0x7fffffff).seal(), 0o600)
		}, "corrupt"},
		{"absurd string length is refused", false, func(t *testing.T, p string) {
			writeFile(t, p, header(1, "").u32(1).u32(1).u32(1).u32(1<<30).seal(), 0o600)
		}, "corrupt"},
		{"file from an earlier boot is stale", false, func(t *testing.T, p string) {
			writeFile(t, p, header(1, "00000000-0000-0000-0000-000000000000").u32(1).entry(sample[0]).seal(), 0o600)
		}, "stale"},
		{"file beyond MaxFileSize is not read", false, func(t *testing.T, p string) {
			writeFile(t, p, valid, 0o600)
			if err := os.Truncate(p, MaxFileSize+1); err != nil { // sparse: cheap
				t.Fatal(err)
			}
		}, "toolarge"},
		{"symbolic link is moved, its target untouched", false, func(t *testing.T, p string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			writeFile(t, target, valid, 0o600)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := os.Stat(target); err != nil {
					t.Errorf("symlink target touched: %v", err)
				}
			})
		}, "symlink"},
		{"dangling symbolic link is moved", false, func(t *testing.T, p string) {
			if err := os.Symlink("/nonexistent/portmapd.xdr", p); err != nil {
				t.Fatal(err)
			}
		}, "symlink"},
		{"FIFO is refused without blocking", false, func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "notregular"},
		{"directory in the file's place is refused", false, func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "notregular"},
		{"file writable by group is refused", false, func(t *testing.T, p string) { writeFile(t, p, valid, 0o620) }, "mode"},
		{"file writable by others is refused", false, func(t *testing.T, p string) { writeFile(t, p, valid, 0o606) }, "mode"},
		{"file owned by another user is refused", true, func(t *testing.T, p string) {
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
			log, logs := observed()
			s, err := Open(t.TempDir(), log)
			if err != nil {
				t.Fatal(err)
			}
			tc.setup(t, s.Path())

			done := make(chan []pmap.Mapping)
			go func() { done <- s.Load() }()
			var got []pmap.Mapping
			select {
			case got = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked")
			}

			if got != nil {
				t.Errorf("Load = %v, want an empty table", got)
			}
			if _, err := os.Lstat(s.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused file still in place: %v", err)
			}
			if aside := asideFiles(t, s.Path()); aside[tc.reason] != 1 || len(aside) != 1 {
				t.Errorf("moved-aside files by reason: %v, want one %q", aside, tc.reason)
			}
			lines := logs.FilterMessageSnippet("moved aside").All()
			if len(lines) != 1 {
				t.Fatalf("%d log lines about moving aside, want 1: %v", len(lines), logs.All())
			}
			if f := lines[0].ContextMap(); f["reason"] != tc.reason || f["file"] != s.Path() || f["moved_to"] == "" {
				t.Errorf("log fields %v", f)
			}
			// The daemon goes on: the next Save and Load work.
			if err := s.Save(sample); err != nil {
				t.Fatal(err)
			}
			if got := s.Load(); !slices.Equal(got, sample) {
				t.Errorf("after recovery, Load = %v", got)
			}
		})
	}
}

func TestLoadMissingFileIsColdStart(t *testing.T) {
	log, logs := observed()
	s, err := Open(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Load(); got != nil {
		t.Errorf("Load = %v", got)
	}
	if len(asideFiles(t, s.Path())) != 0 || logs.FilterMessageSnippet("cold start").Len() != 1 {
		t.Errorf("missing file handled as an error: %v", logs.All())
	}
}

func TestLoadKeepsUnknownBoot(t *testing.T) {
	// A file written where the boot id was unknown carries "": believed.
	s := openStore(t)
	writeFile(t, s.Path(), header(1, "").u32(1).entry(sample[0]).seal(), 0o600)
	if got := s.Load(); !slices.Equal(got, sample[:1]) {
		t.Errorf("Load = %v", got)
	}
}

func TestMovedAsideFilesArePruned(t *testing.T) {
	s := openStore(t)
	start := time.Now()
	for i := range 3 * keepAside {
		s.now = func() time.Time { return start.Add(time.Duration(i) * time.Second) }
		writeFile(t, s.Path(), []byte("garbage, not a state file"), 0o600)
		s.Load()
	}
	if n := asideFiles(t, s.Path())["magic"]; n != keepAside {
		t.Errorf("%d moved-aside files kept, want %d", n, keepAside)
	}
	newest := s.Path() + ".magic-" + start.Add(time.Duration(3*keepAside-1)*time.Second).UTC().Format(asideLayout)
	if _, err := os.Stat(newest); err != nil {
		t.Errorf("newest moved-aside file pruned: %v", err)
	}
}

func TestOpen(t *testing.T) {
	t.Run("creates a private directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "state")
		if _, err := Open(dir, nil); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("created with mode %04o", fi.Mode().Perm())
		}
	})
	t.Run("removes a temporary file left by a crash", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, FileName+".tmp"), []byte("half"), 0o600)
		if _, err := Open(dir, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale temporary file kept: %v", err)
		}
	})
	for _, tc := range []struct {
		name  string
		root  bool
		setup func(t *testing.T) string
	}{
		{"refuses a directory others can write", false, func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"refuses a symbolic link to a directory", false, func(t *testing.T) string {
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(t.TempDir(), link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
		{"refuses a directory owned by another user", true, func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && !isRoot() {
				t.Skip("needs root to chown")
			}
			if _, err := Open(tc.setup(t), nil); !errors.Is(err, ErrUnsafeDir) {
				t.Errorf("Open: %v, want ErrUnsafeDir", err)
			}
		})
	}
	t.Run("refuses a file in the directory's place", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		writeFile(t, p, nil, 0o600)
		if _, err := Open(p, nil); err == nil {
			t.Error("Open of a regular file succeeded")
		}
	})
}

// A crash between the temporary file's write and the rename leaves the
// previous file whole; the next Open clears the leftover.
func TestCrashBeforeRenameKeepsPreviousTable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(sample); err != nil {
		t.Fatal(err)
	}
	newer, _ := encodeState(sample[:1], s.bootID, 0)
	writeFile(t, s.tmp, newer[:len(newer)/2], 0o600) // the crash
	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Load(); !slices.Equal(got, sample) {
		t.Errorf("Load after crash = %v", got)
	}
}
