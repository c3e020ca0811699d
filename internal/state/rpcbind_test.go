package state

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

// rpcbindDir makes a directory holding the given rpcbind files, mode 0600
// as rpcbind's umask leaves them.
func rpcbindDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data, 0o600)
	}
	return dir
}

func TestLoadRpcbind(t *testing.T) {
	realRpcb := readFixture(t, "registrations/rpcbind.xdr")
	realPmap := readFixture(t, "registrations/portmap.xdr")
	own := pmap.Mapping{Prog: pmap.Program, Vers: 4, Netid: "tcp", Addr: "0.0.0.0.0.111", Owner: "superuser"}
	for _, tc := range []struct {
		name   string
		files  map[string][]byte
		want   []pmap.Mapping
		aside  map[string]int // reason -> count, per file name
		asideF string
	}{
		{"both files: rpcbind.xdr is taken whole, portmap.xdr adds nothing new",
			map[string][]byte{RpcbindFile: realRpcb, PortmapFile: realPmap}, registered, nil, ""},
		{"rpcbind.xdr alone is enough",
			map[string][]byte{RpcbindFile: realRpcb}, registered, nil, ""},
		{"portmap.xdr alone gives tcp and udp rows on 0.0.0.0 owned by superuser",
			map[string][]byte{PortmapFile: realPmap}, registeredV2, nil, ""},
		{"rows of program 100000 are skipped",
			map[string][]byte{RpcbindFile: rpcbList(own, own, sample[0])}, sample[:1], nil, ""},
		{"portmap.xdr fills in only what rpcbind.xdr lacks",
			map[string][]byte{
				RpcbindFile: rpcbList(registered[0]),
				PortmapFile: pmapList([4]uint32{100003, 3, 6, 9999}, [4]uint32{100003, 3, 17, 2049}),
			},
			[]pmap.Mapping{registered[0], {Prog: 100003, Vers: 3, Netid: "udp", Addr: "0.0.0.0.8.1", Owner: "superuser"}},
			nil, ""},
		{"portmap.xdr rows that PMAP SET refuses are skipped",
			map[string][]byte{PortmapFile: pmapList([4]uint32{7, 1, 1, 80}, [4]uint32{7, 1, 6, 70000}, [4]uint32{7, 1, 6, 80})},
			[]pmap.Mapping{{Prog: 7, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.0.80", Owner: "superuser"}}, nil, ""},
		{"rpcbind with no registrations gives an empty table",
			map[string][]byte{RpcbindFile: readFixture(t, "empty/rpcbind.xdr"), PortmapFile: readFixture(t, "empty/portmap.xdr")},
			nil, nil, ""},
		{"any non-zero list flag is TRUE, as in libtirpc",
			map[string][]byte{RpcbindFile: xb{}.u32(7).entry(sample[0]).u32(0)}, sample[:1], nil, ""},
		{"bytes after the end marker are ignored, as rpcbind does",
			map[string][]byte{RpcbindFile: append(rpcbList(sample[0]), 1, 2, 3)}, sample[:1], nil, ""},
		{"truncated rpcbind.xdr is moved aside, portmap.xdr still used",
			map[string][]byte{RpcbindFile: realRpcb[:len(realRpcb)-30], PortmapFile: realPmap},
			registeredV2, map[string]int{"truncated": 1}, RpcbindFile},
		{"list without its end marker is truncated",
			map[string][]byte{RpcbindFile: realRpcb[:len(realRpcb)-4]}, nil, map[string]int{"truncated": 1}, RpcbindFile},
		{"empty file is truncated",
			map[string][]byte{PortmapFile: nil}, nil, map[string]int{"truncated": 1}, PortmapFile},
		{"absurd string length is refused",
			map[string][]byte{RpcbindFile: xb{}.u32(1).u32(1).u32(1).u32(0xfffffff0)}, nil, map[string]int{"corrupt": 1}, RpcbindFile},
		{"string beyond MaxString is refused",
			map[string][]byte{RpcbindFile: xb{}.u32(1).u32(1).u32(1).str(string(make([]byte, MaxString+1))).str("").str("").u32(0)},
			nil, map[string]int{"corrupt": 1}, RpcbindFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := rpcbindDir(t, tc.files)
			got := LoadRpcbind([]string{dir}, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("LoadRpcbind =\n %v\nwant\n %v", got, tc.want)
			}
			if tc.asideF != "" {
				if aside := asideFiles(t, filepath.Join(dir, tc.asideF)); !mapsEqual(aside, tc.aside) {
					t.Errorf("%s moved aside as %v, want %v", tc.asideF, aside, tc.aside)
				}
			}
			// LoadRpcbind reads; consuming is WarmStart's job.
			for name := range tc.files {
				if name == tc.asideF {
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
					t.Errorf("%s disappeared: %v", name, err)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestLoadRpcbindTrust(t *testing.T) {
	valid := rpcbList(sample[0])
	for _, tc := range []struct {
		name    string
		root    bool
		dirMode os.FileMode
		dirUID  int // -1: leave
		fileUID int
		mode    os.FileMode
		link    bool
		want    []pmap.Mapping
		reason  string
	}{
		{name: "this user's file is believed", dirMode: 0o755, dirUID: -1, fileUID: -1, mode: 0o600, want: sample[:1]},
		{name: "file of the directory's owner is believed (Debian: _rpc in /run/rpcbind)", root: true,
			dirMode: 0o755, dirUID: 102, fileUID: 102, mode: 0o600, want: sample[:1]},
		{name: "another user's file in a world-writable directory is planted", root: true,
			dirMode: 0o1777, dirUID: -1, fileUID: 65534, mode: 0o600, reason: "owner"},
		{name: "directory owner's file is planted when others can write the directory", root: true,
			dirMode: 0o1777, dirUID: 65534, fileUID: 65534, mode: 0o600, reason: "owner"},
		{name: "a stranger's file is refused", root: true,
			dirMode: 0o755, dirUID: 102, fileUID: 65534, mode: 0o600, reason: "owner"},
		{name: "file writable by others is refused", dirMode: 0o755, dirUID: -1, fileUID: -1, mode: 0o666, reason: "mode"},
		{name: "symbolic link is refused", dirMode: 0o755, dirUID: -1, fileUID: -1, mode: 0o600, link: true, reason: "symlink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && !isRoot() {
				t.Skip("needs root to chown")
			}
			dir := filepath.Join(t.TempDir(), "rpcbind")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, RpcbindFile)
			if tc.link {
				target := filepath.Join(t.TempDir(), "target")
				writeFile(t, target, valid, 0o600)
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, p, valid, tc.mode)
			}
			if tc.fileUID >= 0 {
				if err := os.Lchown(p, tc.fileUID, 0); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dirUID >= 0 {
				if err := os.Chown(dir, tc.dirUID, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			got := LoadRpcbind([]string{dir}, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("LoadRpcbind = %v, want %v", got, tc.want)
			}
			if tc.reason != "" {
				if aside := asideFiles(t, p); aside[tc.reason] != 1 {
					t.Errorf("moved aside as %v, want %q", aside, tc.reason)
				}
			}
		})
	}
}

func TestLoadRpcbindStaleAfterReboot(t *testing.T) {
	dir := rpcbindDir(t, map[string][]byte{RpcbindFile: rpcbList(sample[0])})
	p := filepath.Join(dir, RpcbindFile)
	boot, ok := bootTime()
	if !ok {
		t.Skip("boot time unknown")
	}
	old := boot.Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	if got := LoadRpcbind([]string{dir}, log); got != nil {
		t.Errorf("stale file loaded: %v", got)
	}
	if aside := asideFiles(t, p); aside["stale"] != 1 {
		t.Errorf("moved aside as %v, want stale", aside)
	}
	if logs.FilterMessageSnippet("moved aside").Len() != 1 {
		t.Errorf("no log line: %v", logs.All())
	}
}

func TestLoadRpcbindDirectoryOrder(t *testing.T) {
	first := rpcbindDir(t, map[string][]byte{RpcbindFile: rpcbList(sample[0])})
	second := rpcbindDir(t, map[string][]byte{RpcbindFile: rpcbList(sample[1])})
	empty := t.TempDir()
	alias := filepath.Join(t.TempDir(), "alias") // like /var/run/rpcbind -> /run/rpcbind
	if err := os.Symlink(second, alias); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dirs []string
		want []pmap.Mapping
	}{
		{"first directory with files wins", []string{first, second}, sample[:1]},
		{"directories without files are passed over", []string{"/nonexistent", empty, second, first}, sample[1:2]},
		{"an alias of a visited directory is not read twice", []string{alias, second}, sample[1:2]},
		{"no files anywhere", []string{empty, "/nonexistent"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LoadRpcbind(tc.dirs, nil); !slices.Equal(got, tc.want) {
				t.Errorf("LoadRpcbind = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWarmStart(t *testing.T) {
	realRpcb := readFixture(t, "registrations/rpcbind.xdr")
	realPmap := readFixture(t, "registrations/portmap.xdr")
	past := time.Now().Add(-time.Minute)

	t.Run("rpcbind's files are imported when portmapd has none", func(t *testing.T) {
		rdir := rpcbindDir(t, map[string][]byte{RpcbindFile: realRpcb, PortmapFile: realPmap})
		s := openStore(t)
		if got := s.WarmStart([]string{rdir}); !slices.Equal(got, registered) {
			t.Fatalf("WarmStart = %v", got)
		}
		if got := readSaved(t, s.Path()); !slices.Equal(got, registered) {
			t.Errorf("import not saved: %v", got)
		}
		for _, name := range []string{RpcbindFile, PortmapFile} {
			if _, err := os.Stat(filepath.Join(rdir, name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s not consumed: %v", name, err)
			}
			if _, err := os.Stat(filepath.Join(rdir, name+".imported")); err != nil {
				t.Errorf("%s.imported: %v", name, err)
			}
		}
		// The next start reads portmapd's own file.
		if got := s.WarmStart([]string{rdir}); !slices.Equal(got, registered) {
			t.Errorf("second WarmStart = %v", got)
		}
	})
	t.Run("portmapd's newer file wins over older rpcbind files", func(t *testing.T) {
		rdir := rpcbindDir(t, map[string][]byte{RpcbindFile: realRpcb})
		if err := os.Chtimes(filepath.Join(rdir, RpcbindFile), past, past); err != nil {
			t.Fatal(err)
		}
		s := openStore(t)
		if err := s.Save(sample); err != nil {
			t.Fatal(err)
		}
		if got := s.WarmStart([]string{rdir}); !slices.Equal(got, sample) {
			t.Errorf("WarmStart = %v", got)
		}
		if _, err := os.Stat(filepath.Join(rdir, RpcbindFile)); err != nil {
			t.Errorf("older rpcbind file touched: %v", err)
		}
	})
	t.Run("rpcbind's newer files win after a switch back and forth", func(t *testing.T) {
		s := openStore(t)
		if err := s.Save(sample); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(s.Path(), past, past); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(s.jpath, past, past); err != nil {
			t.Fatal(err)
		}
		rdir := rpcbindDir(t, map[string][]byte{RpcbindFile: realRpcb})
		if got := s.WarmStart([]string{rdir}); !slices.Equal(got, registered) {
			t.Errorf("WarmStart = %v", got)
		}
	})
	t.Run("unusable rpcbind files fall back to portmapd's own", func(t *testing.T) {
		s := openStore(t)
		if err := s.Save(sample); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(s.Path(), past, past); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(s.jpath, past, past); err != nil {
			t.Fatal(err)
		}
		rdir := rpcbindDir(t, map[string][]byte{RpcbindFile: []byte("junk")})
		if got := s.WarmStart([]string{rdir}); !slices.Equal(got, sample) {
			t.Errorf("WarmStart = %v", got)
		}
	})
}
