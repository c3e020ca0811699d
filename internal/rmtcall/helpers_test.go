package rmtcall

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// wait bounds every wait for a datagram; on loopback they take well under
// a millisecond, and quiet bounds the wait that shows none came.
const (
	wait  = 2 * time.Second
	quiet = 100 * time.Millisecond
)

// service is a UDP socket on the loopback address standing in for an RPC
// service: it hands every call it receives to the test, which chooses the
// answer.
type service struct {
	t     testing.TB
	conn  *net.UDPConn
	calls chan received
}

type received struct {
	rpc.CallHeader
	args []byte
	from netip.AddrPort
}

func newService(t testing.TB, network string) *service {
	t.Helper()
	ip := net.IPv4(127, 0, 0, 1)
	if network == "udp6" {
		ip = net.IPv6loopback
	}
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatalf("service socket: %v", err)
	}
	s := &service{t: t, conn: conn, calls: make(chan received, 1024)}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var d xdr.Decoder
			msg := bytes.Clone(buf[:n])
			d.Reset(msg)
			h, err := rpc.ParseCall(&d)
			if err != nil {
				continue
			}
			select {
			case s.calls <- received{CallHeader: h, args: d.Rest(), from: from}:
			default:
			}
		}
	}()
	return s
}

func (s *service) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// next returns the next call the service received.
func (s *service) next() received {
	s.t.Helper()
	select {
	case r := <-s.calls:
		return r
	case <-time.After(wait):
		s.t.Fatalf("the service received nothing within %v", wait)
		return received{}
	}
}

// none checks that the service receives nothing more.
func (s *service) none() {
	s.t.Helper()
	select {
	case r := <-s.calls:
		s.t.Fatalf("the service received an unexpected call, xid %#x proc %d", r.XID, r.Proc)
	case <-time.After(quiet):
	}
}

// answer sends the results of r to the forwarder that sent it.
func (s *service) answer(r received, results []byte) {
	s.t.Helper()
	s.send(r.from, append(rpc.AppendSuccess(nil, r.XID), results...))
}

func (s *service) send(to netip.AddrPort, msg []byte) {
	s.t.Helper()
	if _, err := s.conn.WriteToUDPAddrPort(msg, to); err != nil {
		s.t.Fatalf("service reply: %v", err)
	}
}

// recorder is a Responder that keeps what the caller would receive.
type recorder struct {
	t       testing.TB
	replies chan []byte
}

func newRecorder(t testing.TB) *recorder { return &recorder{t: t, replies: make(chan []byte, 1024)} }

func (r *recorder) Respond(b []byte) error {
	r.replies <- bytes.Clone(b)
	return nil
}

func (r *recorder) next() []byte {
	r.t.Helper()
	select {
	case b := <-r.replies:
		return b
	case <-time.After(wait):
		r.t.Fatalf("the caller got no reply within %v", wait)
		return nil
	}
}

func (r *recorder) none() {
	r.t.Helper()
	select {
	case b := <-r.replies:
		r.t.Fatalf("the caller got an unexpected reply %x", b)
	case <-time.After(quiet):
	}
}

func newForwarder(t testing.TB, cfg Config) *Forwarder {
	t.Helper()
	f, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

var (
	localCaller  = netip.MustParseAddrPort("127.0.0.1:700")
	remoteCaller = netip.MustParseAddrPort("10.0.0.2:5000")
)

// request is a CALLIT of version vers from caller with xid, to proc 1 of
// program 400300 version 1 of svc, with args.
func request(svc *service, rec *recorder, caller netip.AddrPort, xid, vers uint32, args []byte) *Request {
	return &Request{
		Caller:  caller,
		XID:     xid,
		Version: vers,
		Proc:    pmap.ProcCallit,
		Size:    40 + 16 + len(args),
		Call: pmap.RemoteCall{
			Prog: 400300, Vers: 1, Proc: 1, Args: args,
			Target: svc.addr(),
			Uaddr:  []byte("10.0.0.1.17.148"),
			Port:   4500,
		},
		Reply: rec,
	}
}

func indirect(r *Request) *Request {
	r.Proc = pmap.ProcIndirect
	r.Call.Indirect = true
	return r
}

// words encodes XDR unsigned integers.
func words(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = xdr.AppendUint32(b, v)
	}
	return b
}

// eventually polls cond for up to wait.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
