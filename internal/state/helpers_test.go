package state

import (
	"encoding/binary"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portmapd/portmapd/pmap"
)

var update = flag.Bool("update", false, "rewrite fixtures and fuzz seeds (with root: from a live rpcbind)")

// fixtureDir holds files written by Debian's rpcbind 1.2.6 (see its README).
const fixtureDir = "../../testdata/state/rpcbind-1.2.6"

// registered is what testdata/state/rpcbind-1.2.6/registrations holds:
// the table rpcbreg builds in TestRpcbindLive, as rpcbind.xdr records it.
var registered = []pmap.Mapping{
	{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: "superuser"},
	{Prog: 100003, Vers: 3, Netid: "udp6", Addr: "::.8.1", Owner: "superuser"},
	{Prog: 100021, Vers: 4, Netid: "tcp6", Addr: "::1.3.5", Owner: "superuser"},
	{Prog: 200000, Vers: 1, Netid: "local", Addr: "/run/foo.sock", Owner: "superuser"},
	{Prog: 100024, Vers: 1, Netid: "udp", Addr: "0.0.0.0.2.188", Owner: "superuser"},
	{Prog: 100024, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.2.189", Owner: "superuser"},
	{Prog: 300000, Vers: 2, Netid: "tcp", Addr: "127.0.0.1.4.0", Owner: "65534"},
}

// registeredV2 is the same table as portmap.xdr alone records it: tcp and
// udp rows only, no host part, no owner.
var registeredV2 = []pmap.Mapping{
	{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: "superuser"},
	{Prog: 100024, Vers: 1, Netid: "udp", Addr: "0.0.0.0.2.188", Owner: "superuser"},
	{Prog: 100024, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.2.189", Owner: "superuser"},
	{Prog: 300000, Vers: 2, Netid: "tcp", Addr: "0.0.0.0.4.0", Owner: "superuser"},
}

// sample is a small table in portmapd's own terms.
var sample = []pmap.Mapping{
	{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: "superuser"},
	{Prog: 100003, Vers: 3, Netid: "udp6", Addr: "::.8.1", Owner: "superuser"},
	{Prog: 100005, Vers: 1, Netid: "local", Addr: "/run/mountd.sock", Owner: "0"},
	{Prog: 300019, Vers: 1, Netid: "tcp", Addr: "127.0.0.1.3.232", Owner: "1000"},
}

// observed returns a logger that records everything it is given.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// xb builds XDR by hand, for files that go-xdr's encoder would refuse to
// produce: wrong lengths, wrong counts, missing bytes.
type xb []byte

func (b xb) u32(v uint32) xb { return binary.BigEndian.AppendUint32(b, v) }

func (b xb) str(s string) xb {
	b = b.u32(uint32(len(s)))
	b = append(b, s...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (b xb) entry(m pmap.Mapping) xb {
	return b.u32(m.Prog).u32(m.Vers).str(m.Netid).str(m.Addr).str(m.Owner)
}

// header starts a state file: magic, version, boot id.
func header(vers uint32, boot string) xb {
	return xb(magic).u32(vers).str(boot)
}

// seal appends the checksum, so that a crafted body reaches the decoder.
func (b xb) seal() []byte {
	return binary.BigEndian.AppendUint32(slices.Clone(b), crc32.Checksum(b, castagnoli()))
}

// rpcbList encodes rows the way libtirpc's xdr_rpcblist_ptr does.
func rpcbList(ms ...pmap.Mapping) []byte {
	var b xb
	for _, m := range ms {
		b = b.u32(1).entry(m)
	}
	return b.u32(0)
}

// pmapList encodes {prog, vers, prot, port} rows like xdr_pmaplist_ptr.
func pmapList(rows ...[4]uint32) []byte {
	var b xb
	for _, r := range rows {
		b = b.u32(1).u32(r[0]).u32(r[1]).u32(r[2]).u32(r[3])
	}
	return b.u32(0)
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask; tests want it exact.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// asideFiles lists what moveAside left next to path, by reason.
func asideFiles(t testing.TB, path string) map[string]int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), filepath.Base(path)+".")
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(rest, '-'); i > 0 {
			got[rest[:i]]++
		}
	}
	return got
}

// readSaved decodes the state file directly, without Load's side effects
// (Load moves files; a second Store's Open removes the temporary file).
func readSaved(t testing.TB, path string) []pmap.Mapping {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ms, _, _, err := decodeState(data)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return ms
}

func isRoot() bool { return os.Geteuid() == 0 }
