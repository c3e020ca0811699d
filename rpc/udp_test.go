package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portmapd/portmapd/xdr"
)

// queuedUDPServer returns a loopback datagram socket that nobody reads
// yet, and a function that starts serving it. Calls sent in between queue
// up in the socket, so that the server's first read takes them as batches.
func queuedUDPServer(t *testing.T, s *Server) (*net.UDPConn, func()) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn := pc.(*net.UDPConn)
	if s.Handler == nil {
		s.Handler = testMux()
	}
	done := make(chan error, 1)
	start := func() { go func() { done <- s.ServeUDP(conn, NetidUDP) }() }
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("ServeUDP: %v", err)
			}
		default:
			conn.Close()
		}
	})
	return conn, start
}

// Calls that arrive together are read and answered together, more of them
// than one batch holds, each with its own result, to its own sender.
func TestServerUDPBatchesAnswerEveryCall(t *testing.T) {
	conn, start := queuedUDPServer(t, &Server{})
	const perClient = 3*udpBatchSize/2 + 1
	clients := []*udpClient{dialUDP(t, conn.LocalAddr()), dialUDP(t, conn.LocalAddr()), dialUDP(t, conn.LocalAddr())}
	for i := range uint32(perClient) {
		for k, c := range clients {
			xid := uint32(k)<<16 | i
			c.send(t, testCall(xid, 1, procAdd, xid, 1))
		}
	}
	start()
	for k, c := range clients {
		for i := range uint32(perClient) {
			xid := uint32(k)<<16 | i
			expectReply(t, c, xdr.AppendUint32(AppendSuccess(nil, xid), xid+1))
		}
	}
}

// A reply the kernel refuses to send is skipped with a log line; the
// replies queued behind it in the same batch still go out. A datagram from
// source port 0, which a raw socket can forge, gets a reply that sendmmsg
// refuses with EINVAL.
func TestServerUDPBatchSkipsRefusedReply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("forging a datagram needs a raw socket (root)")
	}
	core, logs := observer.New(zapcore.InfoLevel)
	conn, start := queuedUDPServer(t, &Server{Log: zap.New(core)})
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	c := dialUDP(t, conn.LocalAddr())

	raw, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_UDP)
	if err != nil {
		t.Skipf("raw socket: %v", err)
	}
	defer syscall.Close(raw)
	forge := func(xid uint32) {
		payload := testCall(xid, 1, procNull)
		udp := make([]byte, 8, 8+len(payload))
		binary.BigEndian.PutUint16(udp[0:2], 0) // source port 0
		binary.BigEndian.PutUint16(udp[2:4], port)
		binary.BigEndian.PutUint16(udp[4:6], uint16(8+len(payload)))
		udp = append(udp, payload...) // checksum 0: none, allowed over IPv4
		if err := syscall.Sendto(raw, udp, 0, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatalf("forge: %v", err)
		}
	}
	forge(100)
	c.send(t, testCall(1, 1, procNull))
	forge(101)
	c.send(t, testCall(2, 1, procNull))
	start()
	expectReply(t, c, AppendSuccess(nil, 1))
	expectReply(t, c, AppendSuccess(nil, 2))
	deadline := time.Now().Add(replyWait)
	for logs.FilterMessage("datagram reply failed").Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	failed := logs.FilterMessage("datagram reply failed").All()
	if len(failed) != 2 {
		t.Fatalf("%d failed replies logged, want 2", len(failed))
	}
	for _, e := range failed {
		if got := e.ContextMap()["remote"]; got != "127.0.0.1:0" {
			t.Errorf("failed reply logged for %v, want 127.0.0.1:0", got)
		}
	}
}

// A datagram is read as far as rpcbind reads one, 9000 bytes: the
// kernel drops the rest, and the call sees its arguments cut short. The
// next datagram in the same batch is whole.
func TestServerUDPReadsCallsUpTo9000Bytes(t *testing.T) {
	conn, start := queuedUDPServer(t, &Server{})
	c := dialUDP(t, conn.LocalAddr())
	header := len(testCall(0, 1, procArgLen))
	for xid, args := range []int{100, maxCallDatagram - header, maxCallDatagram - header + 4, 20000} {
		c.send(t, append(testCall(uint32(xid), 1, procArgLen), make([]byte, args)...))
	}
	start()
	for xid, want := range []int{100, maxCallDatagram - header, maxCallDatagram - header, maxCallDatagram - header} {
		expectReply(t, c, xdr.AppendUint32(AppendSuccess(nil, uint32(xid)), uint32(want)))
	}
}

// heldServer serves a program whose procedure 1 holds its reply until the
// test releases it, and whose procedure 2 fails after the reply was built.
func heldServer(t *testing.T, release <-chan struct{}) *testServer {
	m := NewMux()
	m.Handle(testProg, testVersLow, []Handler{
		procNull: HandlerFunc(func(w *Reply, c *Call) error { return nil }),
		1: HandlerFunc(func(w *Reply, c *Call) error {
			w.After = func() error { <-release; return nil }
			w.Body = xdr.AppendUint32(w.Body, 7)
			return nil
		}),
		2: HandlerFunc(func(w *Reply, c *Call) error {
			w.After = func() error { return errors.New("disk full") }
			w.Body = xdr.AppendUint32(w.Body, 8)
			return nil
		}),
	})
	return startServer(t, &Server{Handler: m})
}

// A datagram whose reply waits (a change being written to disk) does not
// hold up the calls read after it; it is answered when the wait ends.
func TestServerReplyAfterOnDatagrams(t *testing.T) {
	release := make(chan struct{})
	ts := heldServer(t, release)
	held, other := dialUDP(t, ts.udp.LocalAddr()), dialUDP(t, ts.udp.LocalAddr())
	held.send(t, testCall(1, 1, 1))
	other.send(t, testCall(2, 1, procNull))
	expectReply(t, other, AppendSuccess(nil, 2))
	if got, err := held.recv(t, silenceWait); err == nil {
		t.Fatalf("held reply %x sent before its wait ended", got)
	}
	close(release)
	expectReply(t, held, xdr.AppendUint32(AppendSuccess(nil, 1), 7))

	other.send(t, testCall(3, 1, 2))
	expectReply(t, other, AppendAccepted(nil, 3, SystemErr))
}

// On a stream the wait happens in turn, so replies keep the calls' order.
func TestServerReplyAfterOnStreams(t *testing.T) {
	release := make(chan struct{})
	ts := heldServer(t, release)
	s := dialStream(t, "tcp", ts.tcp.Addr().String())
	s.send(t, testCall(1, 1, 1))
	s.send(t, testCall(2, 1, procNull))
	if got, err := s.recv(t, silenceWait); err == nil {
		t.Fatalf("reply %x sent before the held one", got)
	}
	close(release)
	expectReply(t, s, xdr.AppendUint32(AppendSuccess(nil, 1), 7))
	expectReply(t, s, AppendSuccess(nil, 2))
	s.send(t, testCall(3, 1, 2))
	expectReply(t, s, AppendAccepted(nil, 3, SystemErr))
}

// The reader's conversions of socket addresses, both ways.
func TestSockaddrRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		addr   string
	}{
		{syscall.AF_INET, "192.0.2.1:111"},
		{syscall.AF_INET, "127.0.0.1:65535"},
		{syscall.AF_INET6, "[2001:db8::1]:111"},
		{syscall.AF_INET6, "[::ffff:192.0.2.1]:40000"},
		{syscall.AF_INET6, "[fe80::1%7]:1"},
	} {
		want := netip.MustParseAddrPort(tc.addr)
		var sa syscall.RawSockaddrInet6
		n := putSockaddr(&sa, want, tc.family)
		if got := sockaddrAddrPort(&sa, n); got != want {
			t.Errorf("%v as family %d came back as %v", want, tc.family, got)
		}
		if got := sockaddrAddrPort(&sa, n-1); got.IsValid() {
			t.Errorf("%v: a short sockaddr gave %v", want, got)
		}
	}
	// An IPv4 caller answered over a dual-stack socket is addressed mapped.
	var sa syscall.RawSockaddrInet6
	putSockaddr(&sa, netip.MustParseAddrPort("192.0.2.1:9"), syscall.AF_INET6)
	if got := sockaddrAddrPort(&sa, syscall.SizeofSockaddrInet6); got != netip.MustParseAddrPort("[::ffff:192.0.2.1]:9") {
		t.Errorf("IPv4 on an IPv6 socket: %v", got)
	}
	if !bytes.Equal(sa.Addr[:10], make([]byte, 10)) {
		t.Errorf("mapped address %x", sa.Addr)
	}
}

// Calls pipelined on one stream share their waits: every call already
// buffered is handled before the first held reply's wait runs (so one
// write to disk carries all their changes), and the replies still leave
// in the calls' order, a failed wait answered SYSTEM_ERR in its place.
func TestServerPipelinedWaitsRunTogether(t *testing.T) {
	var mu sync.Mutex
	handled, waits := 0, 0
	var seenAtFirstWait []int
	m := NewMux()
	wait := func(fail bool) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if waits == 0 || handled != seenAtFirstWait[len(seenAtFirstWait)-1] {
				seenAtFirstWait = append(seenAtFirstWait, handled)
			}
			waits++
			if fail {
				return errors.New("disk full")
			}
			return nil
		}
	}
	m.Handle(testProg, testVersLow, []Handler{
		procNull: HandlerFunc(func(w *Reply, c *Call) error { return nil }),
		1: HandlerFunc(func(w *Reply, c *Call) error {
			mu.Lock()
			handled++
			mu.Unlock()
			w.After = wait(false)
			w.Body = xdr.AppendUint32(w.Body, c.XID)
			return nil
		}),
		2: HandlerFunc(func(w *Reply, c *Call) error {
			mu.Lock()
			handled++
			mu.Unlock()
			w.After = wait(true)
			w.Body = xdr.AppendUint32(w.Body, c.XID)
			return nil
		}),
	})
	ts := startServer(t, &Server{Handler: m})
	for _, tr := range []struct{ network, addr string }{{"tcp", ts.tcp.Addr().String()}, {"unix", ts.unixPath}} {
		mu.Lock()
		handled, waits, seenAtFirstWait = 0, 0, nil
		mu.Unlock()
		s := dialStream(t, tr.network, tr.addr)
		// Twenty calls in one write: a SET-like call, a NULL, and one
		// whose wait fails, in turn.
		var batch []byte
		for xid := uint32(1); xid <= 20; xid++ {
			proc := []uint32{1, procNull, 2, 1}[xid%4]
			msg := testCall(xid, 1, proc)
			batch = append(batch, MarkRecord(append(make([]byte, RecordHeaderLen), msg...))...)
		}
		s.write(t, batch)
		for xid := uint32(1); xid <= 20; xid++ {
			var want []byte
			switch []uint32{1, procNull, 2, 1}[xid%4] {
			case 1:
				want = xdr.AppendUint32(AppendSuccess(nil, xid), xid)
			case procNull:
				want = AppendSuccess(nil, xid)
			case 2:
				want = AppendAccepted(nil, xid, SystemErr)
			}
			expectReply(t, s, want)
		}
		mu.Lock()
		if waits != 15 {
			t.Errorf("%s: %d waits ran, want 15", tr.network, waits)
		}
		// The calls arrived in one segment: the first wait sees all 15
		// handled. A slow machine may split the read, so allow a second
		// batch, never one wait per call.
		if len(seenAtFirstWait) > 2 || seenAtFirstWait[len(seenAtFirstWait)-1] != 15 {
			t.Errorf("%s: waits ran after %v calls were handled; pipelined calls did not share them", tr.network, seenAtFirstWait)
		}
		mu.Unlock()
	}
}
