package pmap

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/portmapd/portmapd/rpc"
)

// Remote calls are not forwarded, as in Debian's rpcbind without -r, and
// answered as that rpcbind answers them (observed with rpcbind 1.2.6):
// never over a stream; AUTH_TOOWEAK for what must never be forwarded,
// whichever procedure; otherwise silence from CALLIT and BCAST, and from
// INDIRECT the reason the call went nowhere.
func TestRemoteCallsAreNotForwarded(t *testing.T) {
	mismatch := &rpc.ProgMismatchError{Low: 1, High: 3}
	tests := []struct {
		name     string
		args     []byte
		insecure bool
		indirect error // INDIRECT's answer over udp
		callit   error // CALLIT's and BCAST's answer over udp
	}{
		{"registered program", rmtcallArg(progA, 2, 1, nil), false, rpc.ErrSystem, rpc.ErrNoReply},
		{"unregistered program", rmtcallArg(progB, 1, 1, nil), false, rpc.ErrProgUnavail, rpc.ErrNoReply},
		{"unregistered version", rmtcallArg(progA, 7, 1, []byte("args")), false, mismatch, rpc.ErrNoReply},
		{"registered only on udp6", rmtcallArg(200003, 1, 1, nil), false, rpc.ErrProgUnavail, rpc.ErrNoReply},
		{"arguments that do not decode", []byte{0, 0, 0, 1, 0, 0}, false, rpc.ErrGarbageArgs, rpc.ErrNoReply},
		{"the portmapper itself", rmtcallArg(Program, 2, ProcSet, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"the portmapper itself when insecure", rmtcallArg(Program, 2, ProcSet, nil), true, rpc.ErrSystem, rpc.ErrNoReply},
		{"the portmapper's NULL", rmtcallArg(Program, 2, ProcNull, nil), false, rpc.ErrSystem, rpc.ErrNoReply},
		{"NFS", rmtcallArg(progNFS, 3, 1, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"NFS NULL", rmtcallArg(progNFS, 3, 0, nil), false, rpc.ErrProgUnavail, rpc.ErrNoReply},
		{"MOUNT MNT", rmtcallArg(progMount, 3, procMountMNT, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"MOUNT UMNT", rmtcallArg(progMount, 3, procMountUMNT, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"MOUNT EXPORT", rmtcallArg(progMount, 3, 5, nil), false, rpc.ErrProgUnavail, rpc.ErrNoReply},
		{"YPBIND SETDOM", rmtcallArg(progYPBind, 2, procYPBSetdom, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"YPBIND DOMAIN", rmtcallArg(progYPBind, 2, 1, nil), false, rpc.ErrProgUnavail, rpc.ErrNoReply},
		{"YPPASSWD", rmtcallArg(progYPPasswd, 1, 1, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"RQUOTA", rmtcallArg(progRquota, 1, 1, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"YP MATCH", rmtcallArg(progYP, 2, procYPMatch, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"YP FIRST", rmtcallArg(progYP, 2, procYPFirst, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"YP NEXT", rmtcallArg(progYP, 2, procYPNext, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"YP ALL", rmtcallArg(progYP, 2, procYPAll, nil), false, rpc.ErrAuthTooWeak, rpc.ErrAuthTooWeak},
		{"YP DOMAIN", rmtcallArg(progYP, 2, 1, nil), false, rpc.ErrProgUnavail, rpc.ErrNoReply},
	}
	procs := []struct {
		name       string
		vers, proc uint32
		indirect   bool
	}{
		{"v2 CALLIT", VersPMAP, ProcCallit, false},
		{"v3 CALLIT", VersRPCB3, ProcCallit, false},
		{"v4 BCAST", VersRPCB4, ProcCallit, false},
		{"v4 INDIRECT", VersRPCB4, ProcIndirect, true},
	}
	for _, tt := range tests {
		for _, p := range procs {
			t.Run(tt.name+" "+p.name, func(t *testing.T) {
				h := newHarness(t)
				h.svc.Insecure = tt.insecure
				for _, m := range []Mapping{
					{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"},
					{Prog: progA, Vers: 3, Netid: "udp", Addr: "0.0.0.0.8.3"},
					{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.2"},
					{Prog: 200003, Vers: 1, Netid: "udp6", Addr: "::.8.9"},
				} {
					h.svc.Registry.Set(m)
				}
				want := tt.callit
				if p.indirect {
					want = tt.indirect
				}
				res, err := h.call(loopbackUDP, p.vers, p.proc, tt.args)
				if !sameError(err, want) {
					t.Errorf("over udp: (%x, %v), want %v", res, err, want)
				}
				for _, c := range []caller{from("tcp", "127.0.0.1:1"), from("tcp6", "[::1]:1"), localRoot} {
					if _, err := h.call(c, p.vers, p.proc, tt.args); err != rpc.ErrNoReply {
						t.Errorf("over %s: %v, want no reply", c.netid, err)
					}
				}
			})
		}
	}
}

func sameError(err, want error) bool {
	var pm, wpm *rpc.ProgMismatchError
	if errors.As(want, &wpm) {
		return errors.As(err, &pm) && *pm == *wpm
	}
	return err == want
}

// GETSTAT lists remote calls by (prog, vers, proc, netid): success when
// the exact version is registered on the arrival transport, failure
// otherwise, and how many were INDIRECT. Calls over a stream, refused
// calls and undecodable ones are not listed.
func TestRemoteCallsAreCounted(t *testing.T) {
	h := newHarness(t)
	h.svc.Registry.Set(Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"})
	calls := []struct {
		c          caller
		vers, proc uint32
		args       []byte
	}{
		{loopbackUDP, VersRPCB4, ProcCallit, rmtcallArg(progA, 1, 0, nil)},
		{loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(progA, 1, 0, nil)},
		{loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(progA, 2, 0, nil)},
		{loopbackUDP6, VersRPCB4, ProcIndirect, rmtcallArg(progA, 1, 0, nil)},
		{loopbackUDP, VersRPCB3, ProcCallit, rmtcallArg(progA, 1, 5, nil)},
		{loopbackUDP, VersPMAP, ProcCallit, rmtcallArg(progB, 1, 0, nil)},
		{loopbackUDP, VersPMAP, ProcCallit, rmtcallArg(progNFS, 3, 1, nil)},
		{loopbackUDP, VersPMAP, ProcCallit, []byte{1}},
		{from("tcp", "127.0.0.1:1"), VersPMAP, ProcCallit, rmtcallArg(progA, 1, 0, nil)},
	}
	for _, c := range calls {
		h.call(c.c, c.vers, c.proc, c.args)
	}
	st := h.getstat(loopbackUDP)
	// A new entry's indirect count starts at 1 whatever made it, as in
	// rpcbind's rpcbs_rmtcall; later calls add only for INDIRECT.
	want := [3][]rmtStatRow{
		StatV2: {{progB, 1, 0, 0, 1, 1, "udp"}},
		StatV3: {{progA, 1, 5, 1, 0, 1, "udp"}},
		StatV4: {
			{progA, 1, 0, 0, 1, 1, "udp6"},
			{progA, 2, 0, 0, 1, 1, "udp"},
			{progA, 1, 0, 2, 0, 2, "udp"},
		},
	}
	for v := range want {
		if fmt.Sprint(st[v].rmts) != fmt.Sprint(want[v]) {
			t.Errorf("version %d remote calls:\n got  %v\n want %v", v+2, st[v].rmts, want[v])
		}
	}
	if got := st[StatV2].procs[ProcCallit]; got != 4 {
		t.Errorf("v2 CALLIT counted %d times, want 4 (every call, as rpcbind)", got)
	}
}

// fakeForwarder records what the handlers hand to a Forwarder and answers
// with err.
type fakeForwarder struct {
	calls []RemoteCall
	err   error
}

func (f *fakeForwarder) Forward(c *rpc.Call, r RemoteCall) error {
	r.Args = append([]byte(nil), r.Args...)
	r.Uaddr = append([]byte(nil), r.Uaddr...)
	f.calls = append(f.calls, r)
	return f.err
}

// With a Forwarder (rpcbind -r), a call that passes rpcbind's checks is
// handed over with the loopback address of the arrival transport's family
// at the registered port, the registered address merged for the caller
// (what a v3/v4 reply carries) and the port (what a v2 reply carries); the
// handler itself then sends nothing. Refusals and lookup failures are
// answered as without forwarding, and nothing is forwarded over a stream.
func TestRemoteCallsAreHandedToTheForwarder(t *testing.T) {
	mappings := []Mapping{
		{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"},
		{Prog: progA, Vers: 2, Netid: "udp", Addr: "127.0.0.1.8.2"},
		{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.9"},
		{Prog: progB, Vers: 1, Netid: "udp", Addr: "0.0.0.0.0.0"},
	}
	loop4, loop6 := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	tests := []struct {
		name       string
		c          caller
		vers, proc uint32
		args       []byte
		fwdErr     error
		want       *RemoteCall // nil: not forwarded
		err        error
	}{
		{"v2 CALLIT from loopback", loopbackUDP, VersPMAP, ProcCallit, rmtcallArg(progA, 1, 1, []byte("abc")), nil,
			&RemoteCall{Prog: progA, Vers: 1, Proc: 1, Args: []byte("abc"), Target: netip.AddrPortFrom(loop4, 0x801),
				Uaddr: []byte("127.0.0.1.8.1"), Port: 0x801}, rpc.ErrNoReply},
		{"v3 CALLIT from another host", remoteUDP, VersRPCB3, ProcCallit, rmtcallArg(progA, 2, 0, nil), nil,
			&RemoteCall{Prog: progA, Vers: 2, Proc: 0, Args: []byte{}, Target: netip.AddrPortFrom(loop4, 0x802),
				Uaddr: []byte("10.0.0.1.8.2"), Port: 0x802}, rpc.ErrNoReply},
		{"v4 BCAST over udp6", loopbackUDP6, VersRPCB4, ProcCallit, rmtcallArg(progA, 1, 3, nil), nil,
			&RemoteCall{Prog: progA, Vers: 1, Proc: 3, Args: []byte{}, Target: netip.AddrPortFrom(loop6, 0x809),
				Uaddr: []byte("::1.8.9"), Port: 0x809}, rpc.ErrNoReply},
		{"v4 INDIRECT", remoteUDP, VersRPCB4, ProcIndirect, rmtcallArg(progA, 1, 1, nil), nil,
			&RemoteCall{Prog: progA, Vers: 1, Proc: 1, Args: []byte{}, Target: netip.AddrPortFrom(loop4, 0x801),
				Uaddr: []byte("10.0.0.1.8.1"), Port: 0x801, Indirect: true}, rpc.ErrNoReply},
		{"v4 INDIRECT the forwarder cannot send", loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(progA, 1, 1, nil), rpc.ErrSystem,
			&RemoteCall{Prog: progA, Vers: 1, Proc: 1, Args: []byte{}, Target: netip.AddrPortFrom(loop4, 0x801),
				Uaddr: []byte("127.0.0.1.8.1"), Port: 0x801, Indirect: true}, rpc.ErrSystem},
		{"v3 CALLIT the forwarder cannot send", loopbackUDP, VersRPCB3, ProcCallit, rmtcallArg(progA, 1, 1, nil), rpc.ErrSystem,
			&RemoteCall{Prog: progA, Vers: 1, Proc: 1, Args: []byte{}, Target: netip.AddrPortFrom(loop4, 0x801),
				Uaddr: []byte("127.0.0.1.8.1"), Port: 0x801}, rpc.ErrNoReply},
		{"v4 INDIRECT of a registration at port 0", loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(progB, 1, 1, nil), nil, nil, rpc.ErrSystem},
		{"v4 INDIRECT of an unregistered program", loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(200099, 1, 1, nil), nil, nil, rpc.ErrProgUnavail},
		{"v4 INDIRECT of a missing version", loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(progA, 9, 1, nil), nil, nil,
			&rpc.ProgMismatchError{Low: 1, High: 2}},
		{"v2 CALLIT of a missing version", loopbackUDP, VersPMAP, ProcCallit, rmtcallArg(progA, 9, 1, nil), nil, nil, rpc.ErrNoReply},
		{"v4 INDIRECT of NFS", loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(progNFS, 3, 1, nil), nil, nil, rpc.ErrAuthTooWeak},
		{"v4 INDIRECT over tcp", from("tcp", "127.0.0.1:1"), VersRPCB4, ProcIndirect, rmtcallArg(progA, 1, 1, nil), nil, nil, rpc.ErrNoReply},
		{"v3 CALLIT over the local socket", localRoot, VersRPCB3, ProcCallit, rmtcallArg(progA, 1, 1, nil), nil, nil, rpc.ErrNoReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fwd := &fakeForwarder{err: tt.fwdErr}
			h := newHarness(t, func(s *Service) { s.Forwarder = fwd })
			for _, m := range mappings {
				h.svc.Registry.Set(m)
			}
			res, err := h.call(tt.c, tt.vers, tt.proc, tt.args)
			if !sameError(err, tt.err) || len(res) != 0 {
				t.Errorf("answer (%x, %v), want %v", res, err, tt.err)
			}
			var want []RemoteCall
			if tt.want != nil {
				want = []RemoteCall{*tt.want}
			}
			if fmt.Sprint(fwd.calls) != fmt.Sprint(want) {
				t.Errorf("forwarded\n got  %+v\n want %+v", fwd.calls, want)
			}
		})
	}
}
