package rmtcall

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// A forwarded call is the caller's procedure and arguments under a fresh
// xid, with an AUTH_NONE verifier; the caller gets the results under its
// own xid with the service's port (v2) or merged address (v3, v4), as
// rpcbind's rpcbproc_callit_com and handle_reply build them.
func TestForwardRelaysResultsToTheCaller(t *testing.T) {
	f := newForwarder(t, Config{})
	svc := newService(t, "udp4")
	for _, tt := range []struct {
		name       string
		vers, proc uint32
		address    []byte // XDR of the port or address in the reply
	}{
		{"PMAP v2 CALLIT", pmap.VersPMAP, pmap.ProcCallit, words(4500)},
		{"RPCBIND v3 CALLIT", pmap.VersRPCB3, pmap.ProcCallit, xdr.AppendString(nil, "10.0.0.1.17.148")},
		{"RPCBIND v4 BCAST", pmap.VersRPCB4, pmap.ProcCallit, xdr.AppendString(nil, "10.0.0.1.17.148")},
		{"RPCBIND v4 INDIRECT", pmap.VersRPCB4, pmap.ProcIndirect, xdr.AppendString(nil, "10.0.0.1.17.148")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			req := request(svc, rec, localCaller, 0x1234, tt.vers, []byte{0xde, 0xad, 0xbe}) // 3 bytes: padded
			req.Proc = tt.proc
			req.Call.Indirect = tt.proc == pmap.ProcIndirect
			if err := f.Send(req); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := svc.next()
			if got.XID == 0x1234 || got.XID == 0 {
				t.Errorf("forwarded with xid %#x: not a fresh one", got.XID)
			}
			if got.Prog != 400300 || got.Vers != 1 || got.Proc != 1 || got.RPCVers != rpc.Version {
				t.Errorf("forwarded as prog %d vers %d proc %d rpcvers %d", got.Prog, got.Vers, got.Proc, got.RPCVers)
			}
			if got.Cred.Flavor != rpc.AuthNone || got.Verf.Flavor != rpc.AuthNone || len(got.Cred.Body) != 0 {
				t.Errorf("credential %+v verifier %+v, want AUTH_NONE", got.Cred, got.Verf)
			}
			if want := []byte{0xde, 0xad, 0xbe, 0}; !bytes.Equal(got.args, want) {
				t.Errorf("arguments %x, want %x", got.args, want)
			}
			if got.from.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("forwarded from %v, want the loopback address", got.from)
			}
			svc.answer(got, []byte{1, 2, 3, 4})
			want := rpc.AppendSuccess(nil, 0x1234)
			want = append(want, tt.address...)
			want = xdr.AppendOpaque(want, []byte{1, 2, 3, 4})
			if reply := rec.next(); !bytes.Equal(reply, want) {
				t.Errorf("reply\n got  %x\n want %x", reply, want)
			}
			eventually(t, "the call leaves the table", func() bool { return f.InFlight() == 0 })
		})
	}
}

// Calls over udp6 go out of the IPv6 forwarding socket to the IPv6
// loopback address.
func TestForwardOverIPv6(t *testing.T) {
	f := newForwarder(t, Config{})
	if _, v6 := f.Addrs(); !v6.IsValid() {
		t.Skip("no IPv6 loopback")
	}
	svc := newService(t, "udp6")
	rec := newRecorder(t)
	req := request(svc, rec, netip.MustParseAddrPort("[::1]:700"), 7, pmap.VersRPCB4, nil)
	req.Call.Uaddr = []byte("::1.17.148")
	if err := f.Send(req); err != nil {
		t.Fatal(err)
	}
	got := svc.next()
	if got.from.Addr() != netip.IPv6Loopback() {
		t.Errorf("forwarded from %v", got.from)
	}
	svc.answer(got, nil)
	want := xdr.AppendOpaque(xdr.AppendString(rpc.AppendSuccess(nil, 7), "::1.17.148"), nil)
	if reply := rec.next(); !bytes.Equal(reply, want) {
		t.Errorf("reply %x, want %x", reply, want)
	}
}

// An AUTH_SYS credential is passed on rebuilt from its parsed fields with
// the current time as its stamp, as rpcbind's authunix_create does.
func TestAuthSysIsPassedOn(t *testing.T) {
	f := newForwarder(t, Config{})
	svc := newService(t, "udp4")
	rec := newRecorder(t)
	p := rpc.AuthSysParams{Stamp: 1, MachineName: []byte("client"), UID: 1000, GID: 100, NGIDs: 2}
	p.GIDs[0], p.GIDs[1] = 100, 27
	req := request(svc, rec, localCaller, 1, pmap.VersRPCB3, nil)
	req.AuthSys = &p
	before := uint32(time.Now().Unix())
	if err := f.Send(req); err != nil {
		t.Fatal(err)
	}
	got := svc.next()
	if got.Cred.Flavor != rpc.AuthSys {
		t.Fatalf("credential flavour %d, want AUTH_SYS", got.Cred.Flavor)
	}
	fwd, err := rpc.ParseAuthSys(got.Cred.Body)
	if err != nil {
		t.Fatalf("forwarded credential: %v", err)
	}
	if fwd.Stamp < before || fwd.Stamp > before+5 {
		t.Errorf("stamp %d, want the current time %d", fwd.Stamp, before)
	}
	fwd.Stamp = p.Stamp
	if fmt.Sprint(fwd) != fmt.Sprint(p) {
		t.Errorf("credential %+v, want %+v", fwd, p)
	}
	if p.Stamp != 1 {
		t.Error("the caller's credential was modified")
	}
}

// An error reply from the service is SYSTEM_ERR for an INDIRECT caller,
// as rpcbind's send_svcsyserr, and nothing for CALLIT and BCAST; either way
// the call is done.
func TestServiceErrorsBecomeSystemErrForIndirect(t *testing.T) {
	f := newForwarder(t, Config{})
	svc := newService(t, "udp4")
	for _, tt := range []struct {
		name  string
		reply func(xid uint32) []byte
	}{
		{"PROG_UNAVAIL", func(x uint32) []byte { return rpc.AppendAccepted(nil, x, rpc.ProgUnavail) }},
		{"PROG_MISMATCH", func(x uint32) []byte { return rpc.AppendProgMismatch(nil, x, 2, 3) }},
		{"PROC_UNAVAIL", func(x uint32) []byte { return rpc.AppendAccepted(nil, x, rpc.ProcUnavail) }},
		{"GARBAGE_ARGS", func(x uint32) []byte { return rpc.AppendAccepted(nil, x, rpc.GarbageArgs) }},
		{"AUTH_ERROR", func(x uint32) []byte { return rpc.AppendAuthError(nil, x, rpc.AuthTooWeak) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			if err := f.Send(indirect(request(svc, rec, localCaller, 0x99, pmap.VersRPCB4, nil))); err != nil {
				t.Fatal(err)
			}
			got := svc.next()
			svc.send(got.from, tt.reply(got.XID))
			if reply, want := rec.next(), rpc.AppendAccepted(nil, 0x99, rpc.SystemErr); !bytes.Equal(reply, want) {
				t.Errorf("INDIRECT got %x, want SYSTEM_ERR %x", reply, want)
			}

			if err := f.Send(request(svc, rec, localCaller, 0x9a, pmap.VersRPCB4, nil)); err != nil {
				t.Fatal(err)
			}
			got = svc.next()
			svc.send(got.from, tt.reply(got.XID))
			rec.none()
			if n := f.InFlight(); n != 0 {
				t.Errorf("%d calls still in flight after their replies", n)
			}
		})
	}
}

// Only the service answers its call: a reply from another socket, a reply
// with an unknown xid, and a message that is not a reply are all dropped
// without touching the call in flight, which the service's own reply then
// completes.
func TestRepliesFromElsewhereAreIgnored(t *testing.T) {
	f := newForwarder(t, Config{})
	svc := newService(t, "udp4")
	impostor := newService(t, "udp4")
	rec := newRecorder(t)
	if err := f.Send(request(svc, rec, localCaller, 5, pmap.VersRPCB3, nil)); err != nil {
		t.Fatal(err)
	}
	got := svc.next()
	impostor.send(got.from, append(rpc.AppendSuccess(nil, got.XID), 6, 6, 6, 6))
	svc.send(got.from, append(rpc.AppendSuccess(nil, got.XID+1), 7, 7, 7, 7))
	svc.send(got.from, []byte{1, 2})
	rec.none()
	if n := f.InFlight(); n != 1 {
		t.Fatalf("%d calls in flight, want the call still waiting", n)
	}
	svc.answer(got, []byte{1, 1, 1, 1})
	want := xdr.AppendOpaque(xdr.AppendString(rpc.AppendSuccess(nil, 5), "10.0.0.1.17.148"), []byte{1, 1, 1, 1})
	if reply := rec.next(); !bytes.Equal(reply, want) {
		t.Errorf("reply %x, want %x", reply, want)
	}
	if c := f.Counters(); c.Stray != 3 || c.Replied != 1 {
		t.Errorf("counters %+v, want 3 stray datagrams and 1 reply", c)
	}
}

// The table holds MaxInFlight calls; a new call beyond replaces the
// oldest, whose late reply then goes nowhere.
func TestTableIsBoundedAndDropsTheOldest(t *testing.T) {
	const max = 4
	f := newForwarder(t, Config{MaxInFlight: max, Timeout: time.Minute})
	svc := newService(t, "udp4")
	rec := newRecorder(t)
	var calls []received
	for i := range 10 {
		if err := f.Send(request(svc, rec, localCaller, uint32(100+i), pmap.VersRPCB3, nil)); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, svc.next())
		if n := f.InFlight(); n > max {
			t.Fatalf("%d calls in flight, more than %d", n, max)
		}
	}
	c := f.Counters()
	if c.InFlight != max || c.Evicted != 10-max || c.Forwarded != 10 {
		t.Fatalf("counters %+v, want %d in flight and %d evicted", c, max, 10-max)
	}
	svc.answer(calls[0], nil) // dropped long ago
	rec.none()
	svc.answer(calls[9], nil)
	reply := rec.next()
	if xid := xdrWord(reply, 0); xid != 109 {
		t.Errorf("reply for caller xid %d, want 109", xid)
	}
}

// A call whose service never answers is freed by the timer, whether or not
// another call arrives; its late reply goes nowhere.
func TestSilentServicesExpire(t *testing.T) {
	f := newForwarder(t, Config{Timeout: 50 * time.Millisecond})
	svc := newService(t, "udp4")
	rec := newRecorder(t)
	var calls []received
	for i := range 3 {
		if err := f.Send(request(svc, rec, localCaller, uint32(i+1), pmap.VersRPCB3, nil)); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, svc.next())
	}
	if n := f.InFlight(); n != 3 {
		t.Fatalf("%d in flight, want 3", n)
	}
	eventually(t, "expiry", func() bool { return f.InFlight() == 0 })
	if c := f.Counters(); c.Expired != 3 {
		t.Errorf("counters %+v, want 3 expired", c)
	}
	svc.answer(calls[0], nil)
	rec.none()

	// The timer is armed again for calls made after the table emptied.
	if err := f.Send(request(svc, rec, localCaller, 9, pmap.VersRPCB3, nil)); err != nil {
		t.Fatal(err)
	}
	svc.next()
	eventually(t, "second expiry", func() bool { return f.InFlight() == 0 })
}

// A retransmission (same caller address, caller xid, version and
// procedure) of a call in flight is not forwarded again; once the call is
// answered the same xid is a new call, and a call that differs in any part
// of the key is another call.
func TestRetransmissionsAreNotForwardedAgain(t *testing.T) {
	f := newForwarder(t, Config{})
	svc := newService(t, "udp4")
	rec := newRecorder(t)
	first := request(svc, rec, localCaller, 42, pmap.VersRPCB3, nil)
	if err := f.Send(first); err != nil {
		t.Fatal(err)
	}
	got := svc.next()
	if err := f.Send(request(svc, rec, localCaller, 42, pmap.VersRPCB3, nil)); !errors.Is(err, rpc.ErrNoReply) {
		t.Errorf("retransmission: %v, want ErrNoReply", err)
	}
	svc.none()
	others := []*Request{
		request(svc, rec, localCaller, 43, pmap.VersRPCB3, nil),
		request(svc, rec, netip.MustParseAddrPort("127.0.0.1:701"), 42, pmap.VersRPCB3, nil),
		request(svc, rec, localCaller, 42, pmap.VersRPCB4, nil),
		indirect(request(svc, rec, localCaller, 42, pmap.VersRPCB4, nil)),
		request(svc, rec, localCaller, 42, pmap.VersPMAP, nil),
	}
	for _, r := range others {
		if err := f.Send(r); err != nil {
			t.Errorf("caller %v xid %d v%d proc %d: %v", r.Caller, r.XID, r.Version, r.Proc, err)
		}
		svc.next()
	}
	if c := f.Counters(); c.Duplicates != 1 {
		t.Errorf("%d duplicates counted, want 1", c.Duplicates)
	}
	svc.answer(got, nil)
	rec.next()
	if err := f.Send(request(svc, rec, localCaller, 42, pmap.VersRPCB3, nil)); err != nil {
		t.Errorf("the same xid after the reply: %v, want a new forward", err)
	}
	svc.next()
}

// Each source that is not local gets a token bucket; loopback callers are
// not limited.
func TestCallsAreRateLimitedPerSource(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	f := newForwarder(t, Config{Rate: 1, Burst: 3, Now: func() time.Time { return now }})
	svc := newService(t, "udp4")
	rec := newRecorder(t)
	xid := uint32(0)
	send := func(caller netip.AddrPort) error {
		xid++
		err := f.Send(request(svc, rec, caller, xid, pmap.VersRPCB3, nil))
		if err == nil {
			svc.next()
		}
		return err
	}
	for i := range 3 {
		if err := send(remoteCaller); err != nil {
			t.Fatalf("call %d within the burst: %v", i+1, err)
		}
	}
	if err := send(remoteCaller); !errors.Is(err, rpc.ErrNoReply) {
		t.Fatalf("call beyond the burst: %v, want ErrNoReply", err)
	}
	svc.none()
	if err := send(netip.MustParseAddrPort("10.0.0.3:5000")); err != nil {
		t.Errorf("another source: %v", err)
	}
	for i := range 10 {
		if err := send(localCaller); err != nil {
			t.Fatalf("loopback call %d: %v", i+1, err)
		}
	}
	now = now.Add(time.Second)
	if err := send(remoteCaller); err != nil {
		t.Errorf("after a second: %v", err)
	}
	if err := send(remoteCaller); !errors.Is(err, rpc.ErrNoReply) {
		t.Errorf("second call after a second: %v, want ErrNoReply", err)
	}
	if c := f.Counters(); c.RateLimited != 2 {
		t.Errorf("%d calls limited, want 2", c.RateLimited)
	}
}

// A reply to a caller that is not local is dropped when larger than
// MaxReplyRatio times the request; a local caller gets it whatever its
// size.
func TestRepliesToRemoteCallersCannotAmplify(t *testing.T) {
	f := newForwarder(t, Config{MaxReplyRatio: 2})
	svc := newService(t, "udp4")
	for _, tt := range []struct {
		name    string
		caller  netip.AddrPort
		results int
		sent    bool
	}{
		{"remote caller, small results", remoteCaller, 16, true},
		// 24 header + 20 address + 4 length + 64 = 112 = 2 × 56.
		{"remote caller, exactly twice the request", remoteCaller, 64, true},
		{"remote caller, over twice the request", remoteCaller, 68, false},
		{"remote caller, large results", remoteCaller, 4000, false},
		{"local caller, large results", localCaller, 4000, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			req := request(svc, rec, tt.caller, 1, pmap.VersRPCB3, nil)
			if req.Size != 56 {
				t.Fatalf("request size %d", req.Size)
			}
			before := f.Counters().TooLarge
			if err := f.Send(req); err != nil {
				t.Fatal(err)
			}
			svc.answer(svc.next(), make([]byte, tt.results))
			if tt.sent {
				rec.next()
				return
			}
			rec.none()
			if f.Counters().TooLarge != before+1 {
				t.Error("the dropped reply was not counted")
			}
		})
	}
}

// xids are not sequential like rpcbind's (time × 64, plus 64 per call):
// nobody who sees one forward learns the next.
func TestForwardXIDsAreUnpredictable(t *testing.T) {
	f := newForwarder(t, Config{MaxInFlight: 200})
	svc := newService(t, "udp4")
	rec := newRecorder(t)
	seen := map[uint32]bool{}
	var prev uint32
	steps := map[uint32]bool{}
	for i := range 100 {
		if err := f.Send(request(svc, rec, localCaller, uint32(i), pmap.VersRPCB3, nil)); err != nil {
			t.Fatal(err)
		}
		x := svc.next().XID
		if x == 0 || seen[x] {
			t.Fatalf("xid %#x zero or repeated", x)
		}
		seen[x] = true
		steps[x-prev] = true
		prev = x
	}
	if len(steps) < 95 {
		t.Errorf("only %d distinct steps between 100 xids", len(steps))
	}
}

// After Close nothing is forwarded and nothing waits.
func TestCloseForgetsCalls(t *testing.T) {
	f, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, "udp4")
	rec := newRecorder(t)
	if err := f.Send(request(svc, rec, localCaller, 1, pmap.VersRPCB3, nil)); err != nil {
		t.Fatal(err)
	}
	svc.next()
	f.Close()
	if n := f.InFlight(); n != 0 {
		t.Errorf("%d in flight after Close", n)
	}
	if err := f.Send(request(svc, rec, localCaller, 2, pmap.VersRPCB3, nil)); !errors.Is(err, rpc.ErrSystem) {
		t.Errorf("Send after Close: %v, want ErrSystem", err)
	}
	f.Close()
}

func xdrWord(b []byte, i int) uint32 {
	d := xdr.NewDecoder(b[4*i:])
	v, _ := d.Uint32()
	return v
}
