package pmap

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// The fixed world every test runs in: the interfaces of a host with a
// loopback and one Ethernet interface, a clock, and a daemon that serves
// the five transports in the order rpcbind opens them.
var (
	testIfaces = []IfaceAddr{
		{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Index: 1, Loopback: true},
		{Prefix: netip.MustParsePrefix("10.0.0.1/24"), Index: 2},
		{Prefix: netip.MustParsePrefix("::1/128"), Index: 1, Loopback: true},
	}
	testNow = time.Date(2024, 5, 17, 12, 0, 0, 0, time.UTC)

	ownRows = []struct{ netid, addr string }{
		{"tcp6", "::.0.111"},
		{"udp6", "::.0.111"},
		{"tcp", "0.0.0.0.0.111"},
		{"udp", "0.0.0.0.0.111"},
		{"local", "/run/rpcbind.sock"},
	}
)

// harness is a Service behind a Mux, driven the way the rpc server drives
// it: one rpc.Call per request, the results appended to a SUCCESS header.
type harness struct {
	t   testing.TB
	svc *Service
	mux *rpc.Mux
	xid uint32
	// padded is whether the last call noted non-zero padding.
	padded bool
}

func newHarness(t testing.TB, opts ...func(*Service)) *harness {
	t.Helper()
	// rpcbind's rules are tested as rpcbind has them: with privileged
	// ports open to every local caller. portmapd's protection of them is
	// tested on its own (policy_test.go).
	svc := &Service{
		Registry:            NewRegistry(),
		Stats:               NewStats(),
		Ifaces:              &Interfaces{List: func() []IfaceAddr { return testIfaces }},
		Now:                 func() time.Time { return testNow },
		OpenPrivilegedPorts: true,
	}
	for _, o := range opts {
		o(svc)
	}
	for _, r := range ownRows {
		svc.AddTransport(r.netid, r.addr)
	}
	mux := rpc.NewMux()
	svc.Register(mux)
	return &harness{t: t, svc: svc, mux: mux}
}

func insecure(s *Service) { s.Insecure = true }

// caller is where a call comes from: the transport it arrives on, the
// remote address and, on the local socket, the peer's uid.
type caller struct {
	netid  string
	remote netip.AddrPort
	uid    int
}

func (c caller) String() string {
	if c.netid == rpc.NetidLocal {
		return fmt.Sprintf("local uid %d", c.uid)
	}
	return c.netid + " " + c.remote.String()
}

func from(netid, addrPort string) caller {
	return caller{netid: netid, remote: netip.MustParseAddrPort(addrPort), uid: -1}
}

func localUID(uid int) caller { return caller{netid: rpc.NetidLocal, uid: uid} }

var (
	localRoot    = localUID(0)
	localUser    = localUID(1000)
	loopbackPriv = from("tcp", "127.0.0.1:700")
	loopbackUDP  = from("udp", "127.0.0.1:40000")
	loopbackUDP6 = from("udp6", "[::1]:40000")
	remoteUDP    = from("udp", "10.0.0.2:40000")
	remoteUDP6   = from("udp6", "[2001:db8::2]:40000")
	remoteTCP    = from("tcp", "10.0.0.2:40000")
	unspecUDP    = from("udp", "0.0.0.0:40000")
)

// call makes one call and returns its results, or the error that chooses
// the reply.
func (h *harness) call(c caller, vers, proc uint32, args []byte) ([]byte, error) {
	h.t.Helper()
	h.xid++
	call := rpc.Call{
		CallHeader: rpc.CallHeader{XID: h.xid, RPCVers: rpc.Version, Prog: Program, Vers: vers, Proc: proc},
		Args:       args,
		Netid:      c.netid,
		Remote:     c.remote,
	}
	call.SetUID(c.uid)
	head := rpc.AppendSuccess(nil, h.xid)
	w := rpc.Reply{Body: head}
	err := h.mux.ServeRPC(&w, &call)
	if err == nil && w.After != nil {
		err = w.After() // as the server does before replying
	}
	if !bytes.HasPrefix(w.Body, head) {
		h.t.Fatalf("%s: v%d proc %d: reply header clobbered", c, vers, proc)
	}
	h.padded = call.Padded()
	res := w.Body
	// The server sends a handler's Tail after its results.
	return append(res[len(head):len(res):len(res)], w.Tail...), err
}

// ok is call for calls that must succeed.
func (h *harness) ok(c caller, vers, proc uint32, args []byte) []byte {
	h.t.Helper()
	res, err := h.call(c, vers, proc, args)
	if err != nil {
		h.t.Fatalf("%s: v%d proc %d: %v", c, vers, proc, err)
	}
	return res
}

func (h *harness) boolCall(c caller, vers, proc uint32, args []byte) bool {
	h.t.Helper()
	d := xdr.NewDecoder(h.ok(c, vers, proc, args))
	v, err := d.Bool()
	if err != nil || d.Len() != 0 {
		h.t.Fatalf("%s: v%d proc %d: result is not a bool", c, vers, proc)
	}
	return v
}

func (h *harness) stringCall(c caller, vers, proc uint32, args []byte) string {
	h.t.Helper()
	d := xdr.NewDecoder(h.ok(c, vers, proc, args))
	s, err := d.String(MaxWireString)
	if err != nil || d.Len() != 0 {
		h.t.Fatalf("%s: v%d proc %d: result is not a string", c, vers, proc)
	}
	return s
}

// The procedures, as a client sees them.

func (h *harness) set(c caller, vers uint32, m Mapping) bool {
	h.t.Helper()
	return h.boolCall(c, vers, ProcSet, rpcbArg(m.Prog, m.Vers, m.Netid, m.Addr, m.Owner))
}

func (h *harness) unset(c caller, vers uint32, prog, pvers uint32, netid string) bool {
	h.t.Helper()
	return h.boolCall(c, vers, ProcUnset, rpcbArg(prog, pvers, netid, "", ""))
}

func (h *harness) pmapSet(c caller, prog, vers, prot, port uint32) bool {
	h.t.Helper()
	return h.boolCall(c, VersPMAP, ProcSet, pmapArg(prog, vers, prot, port))
}

func (h *harness) pmapUnset(c caller, prog, vers, prot, port uint32) bool {
	h.t.Helper()
	return h.boolCall(c, VersPMAP, ProcUnset, pmapArg(prog, vers, prot, port))
}

func (h *harness) getport(c caller, prog, vers, prot uint32) uint32 {
	h.t.Helper()
	d := xdr.NewDecoder(h.ok(c, VersPMAP, ProcGetport, pmapArg(prog, vers, prot, 0)))
	v, err := d.Uint32()
	if err != nil || d.Len() != 0 {
		h.t.Fatalf("%s: GETPORT result is not a port", c)
	}
	return v
}

func (h *harness) getaddr(c caller, vers, prog, pvers uint32, netid, hint string) string {
	h.t.Helper()
	return h.stringCall(c, vers, ProcGetaddr, rpcbArg(prog, pvers, netid, hint, ""))
}

func (h *harness) getversaddr(c caller, prog, pvers uint32, netid string) string {
	h.t.Helper()
	return h.stringCall(c, VersRPCB4, ProcGetversaddr, rpcbArg(prog, pvers, netid, "", ""))
}

func (h *harness) dump(c caller, vers uint32) []Mapping {
	h.t.Helper()
	ms, err := decodeRpcbList(h.ok(c, vers, ProcDump, nil))
	if err != nil {
		h.t.Fatalf("%s: v%d DUMP: %v", c, vers, err)
	}
	return ms
}

func (h *harness) pmapDump(c caller) []pmapRow {
	h.t.Helper()
	rows, err := decodePmapList(h.ok(c, VersPMAP, ProcDump, nil))
	if err != nil {
		h.t.Fatalf("%s: v2 DUMP: %v", c, err)
	}
	return rows
}

func (h *harness) getaddrlist(c caller, prog, vers uint32, hint string) []rpcbEntry {
	h.t.Helper()
	es, err := decodeEntryList(h.ok(c, VersRPCB4, ProcGetaddrlist, rpcbArg(prog, vers, "", hint, "")))
	if err != nil {
		h.t.Fatalf("%s: GETADDRLIST: %v", c, err)
	}
	return es
}

func (h *harness) getstat(c caller) statByVers {
	h.t.Helper()
	st, err := decodeStatByVers(h.ok(c, VersRPCB4, ProcGetstat, nil))
	if err != nil {
		h.t.Fatalf("GETSTAT: %v", err)
	}
	return st
}

// registrations is the v3 DUMP without the daemon's own rows.
func (h *harness) registrations() []Mapping {
	h.t.Helper()
	var out []Mapping
	for _, m := range h.dump(localRoot, VersRPCB3) {
		if m.Prog != Program {
			out = append(out, m)
		}
	}
	return out
}

// Argument builders.

func rpcbArg(prog, vers uint32, netid, addr, owner string) []byte {
	b := xdr.AppendUint32(nil, prog)
	b = xdr.AppendUint32(b, vers)
	b = xdr.AppendString(b, netid)
	b = xdr.AppendString(b, addr)
	return xdr.AppendString(b, owner)
}

func pmapArg(prog, vers, prot, port uint32) []byte {
	b := xdr.AppendUint32(nil, prog)
	b = xdr.AppendUint32(b, vers)
	b = xdr.AppendUint32(b, prot)
	return xdr.AppendUint32(b, port)
}

func rmtcallArg(prog, vers, proc uint32, args []byte) []byte {
	b := xdr.AppendUint32(nil, prog)
	b = xdr.AppendUint32(b, vers)
	b = xdr.AppendUint32(b, proc)
	return xdr.AppendOpaque(b, args)
}

func netbufArg(maxlen uint32, buf []byte) []byte {
	return xdr.AppendOpaque(xdr.AppendUint32(nil, maxlen), buf)
}

// Result decoders. Each insists on consuming its input exactly, so that a
// reply with trailing or missing bytes fails.

var errTrailing = errors.New("trailing bytes after the result")

func done(d *xdr.Decoder, err error) error {
	if err == nil && d.Len() != 0 {
		return errTrailing
	}
	return err
}

func decodeRpcbList(b []byte) ([]Mapping, error) {
	d := xdr.NewDecoder(b)
	var ms []Mapping
	for {
		more, err := d.Bool()
		if err != nil {
			return nil, err
		}
		if !more {
			return ms, done(d, nil)
		}
		var m Mapping
		if m.Prog, err = d.Uint32(); err != nil {
			return nil, err
		}
		if m.Vers, err = d.Uint32(); err != nil {
			return nil, err
		}
		if m.Netid, err = d.String(MaxWireString); err != nil {
			return nil, err
		}
		if m.Addr, err = d.String(MaxWireString); err != nil {
			return nil, err
		}
		if m.Owner, err = d.String(MaxWireString); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
}

type pmapRow struct{ prog, vers, prot, port uint32 }

func decodePmapList(b []byte) ([]pmapRow, error) {
	d := xdr.NewDecoder(b)
	var rows []pmapRow
	for {
		more, err := d.Bool()
		if err != nil {
			return nil, err
		}
		if !more {
			return rows, done(d, nil)
		}
		var r pmapRow
		for _, f := range []*uint32{&r.prog, &r.vers, &r.prot, &r.port} {
			if *f, err = d.Uint32(); err != nil {
				return nil, err
			}
		}
		rows = append(rows, r)
	}
}

// rpcbEntry is RFC 1833's rpcb_entry.
type rpcbEntry struct {
	maddr, netid     string
	semantics        uint32
	protofmly, proto string
}

func decodeEntryList(b []byte) ([]rpcbEntry, error) {
	d := xdr.NewDecoder(b)
	var es []rpcbEntry
	for {
		more, err := d.Bool()
		if err != nil {
			return nil, err
		}
		if !more {
			return es, done(d, nil)
		}
		var e rpcbEntry
		if e.maddr, err = d.String(MaxWireString); err != nil {
			return nil, err
		}
		if e.netid, err = d.String(MaxWireString); err != nil {
			return nil, err
		}
		if e.semantics, err = d.Uint32(); err != nil {
			return nil, err
		}
		if e.protofmly, err = d.String(MaxWireString); err != nil {
			return nil, err
		}
		if e.proto, err = d.String(MaxWireString); err != nil {
			return nil, err
		}
		es = append(es, e)
	}
}

// netbuf is a decoded struct netbuf.
type netbuf struct {
	maxlen uint32
	buf    []byte
}

func decodeNetbuf(b []byte) (netbuf, error) {
	d := xdr.NewDecoder(b)
	var n netbuf
	var err error
	if n.maxlen, err = d.Uint32(); err != nil {
		return n, err
	}
	n.buf, err = d.Opaque(MaxWireString)
	return n, done(d, err)
}

// rpcb_stat and rpcb_stat_byvers.
type addrStatRow struct {
	prog, vers       uint32
	success, failure int32
	netid            string
}

type rmtStatRow struct {
	prog, vers, proc           uint32
	success, failure, indirect int32
	netid                      string
}

type versStat struct {
	procs      [highProc]int32
	set, unset int32
	addrs      []addrStatRow
	rmts       []rmtStatRow
}

type statByVers [3]versStat

func decodeStatByVers(b []byte) (statByVers, error) {
	d := xdr.NewDecoder(b)
	var st statByVers
	for i := range st {
		vs := &st[i]
		for p := range vs.procs {
			v, err := d.Int32()
			if err != nil {
				return st, err
			}
			vs.procs[p] = v
		}
		var err error
		if vs.set, err = d.Int32(); err != nil {
			return st, err
		}
		if vs.unset, err = d.Int32(); err != nil {
			return st, err
		}
		for {
			more, err := d.Bool()
			if err != nil {
				return st, err
			}
			if !more {
				break
			}
			var a addrStatRow
			if a.prog, err = d.Uint32(); err != nil {
				return st, err
			}
			if a.vers, err = d.Uint32(); err != nil {
				return st, err
			}
			if a.success, err = d.Int32(); err != nil {
				return st, err
			}
			if a.failure, err = d.Int32(); err != nil {
				return st, err
			}
			if a.netid, err = d.String(MaxWireString); err != nil {
				return st, err
			}
			vs.addrs = append(vs.addrs, a)
		}
		for {
			more, err := d.Bool()
			if err != nil {
				return st, err
			}
			if !more {
				break
			}
			var r rmtStatRow
			for _, f := range []*uint32{&r.prog, &r.vers, &r.proc} {
				if *f, err = d.Uint32(); err != nil {
					return st, err
				}
			}
			for _, f := range []*int32{&r.success, &r.failure, &r.indirect} {
				if *f, err = d.Int32(); err != nil {
					return st, err
				}
			}
			if r.netid, err = d.String(MaxWireString); err != nil {
				return st, err
			}
			vs.rmts = append(vs.rmts, r)
		}
	}
	return st, done(d, nil)
}

// diffMappings compares two tables and describes the first difference.
func diffMappings(got, want []Mapping) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d mappings, want %d:\n got  %v\n want %v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("mapping %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	return ""
}
