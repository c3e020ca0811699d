package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/xdr"
)

// The test program: two versions, so that a third gets PROG_MISMATCH {1, 3}.
const (
	testProg    = 0x20000099
	testVersLow = 1
	testVersHi  = 3

	procNull      = 0
	procAdd       = 1 // two uint32 in, their sum out
	procWhoami    = 2 // what the server knows about the caller
	procNil       = 3 // registered as nil: PROC_UNAVAIL
	procWrapped   = 4 // GARBAGE_ARGS wrapped in context
	procTooWeak   = 5
	procNoReply   = 6
	procFail      = 7 // an unexpected error: SYSTEM_ERR
	procBig       = 8 // a reply larger than a datagram may be
	procDefer     = 9 // answers later through a Responder
	procWrapAuth  = 10
	procMismatch  = 11 // the handler itself reports PROG_MISMATCH {7, 9}
	procArgLen    = 12 // the length of the arguments it got
	bigReplyBytes = 10000
)

// testMux serves the test program.
func testMux() *Mux {
	add := func(w *Reply, c *Call) error {
		var d xdr.Decoder
		d.Reset(c.Args)
		a, err1 := d.Uint32()
		b, err2 := d.Uint32()
		if err1 != nil || err2 != nil {
			return ErrGarbageArgs
		}
		w.Body = xdr.AppendUint32(w.Body, a+b)
		return nil
	}
	procs := []Handler{
		procNull: HandlerFunc(func(w *Reply, c *Call) error { return nil }),
		procAdd:  HandlerFunc(add),
		procWhoami: HandlerFunc(func(w *Reply, c *Call) error {
			res := xdr.AppendInt32(w.Body, int32(c.UID()))
			res = xdr.AppendString(res, c.Netid)
			res = xdr.AppendString(res, addrString(c.Local))
			res = xdr.AppendString(res, addrString(c.Remote))
			uid := int32(-1)
			if c.AuthSys != nil {
				uid = int32(c.AuthSys.UID)
			}
			w.Body = xdr.AppendInt32(res, uid)
			return nil
		}),
		procNil: nil,
		procWrapped: HandlerFunc(func(w *Reply, c *Call) error {
			return fmt.Errorf("decode test args: %w", ErrGarbageArgs)
		}),
		procTooWeak: HandlerFunc(func(w *Reply, c *Call) error { return ErrAuthTooWeak }),
		procNoReply: HandlerFunc(func(w *Reply, c *Call) error { return ErrNoReply }),
		procFail: HandlerFunc(func(w *Reply, c *Call) error {
			w.Body = append(w.Body, "half a result"...)
			return errors.New("boom")
		}),
		procBig: HandlerFunc(func(w *Reply, c *Call) error {
			w.Body = xdr.AppendOpaque(w.Body, make([]byte, bigReplyBytes))
			return nil
		}),
		procDefer: HandlerFunc(func(w *Reply, c *Call) error {
			r := c.Defer()
			if r == nil {
				w.Body = xdr.AppendUint32(w.Body, 0)
				return nil
			}
			reply := xdr.AppendUint32(AppendSuccess(nil, c.XID), 42)
			go r.Respond(reply)
			return ErrNoReply
		}),
		procWrapAuth: HandlerFunc(func(w *Reply, c *Call) error {
			return fmt.Errorf("set from %v: %w", c.Remote, ErrAuthTooWeak)
		}),
		procArgLen: HandlerFunc(func(w *Reply, c *Call) error {
			w.Body = xdr.AppendUint32(w.Body, uint32(len(c.Args)))
			return nil
		}),
		procMismatch: HandlerFunc(func(w *Reply, c *Call) error {
			return fmt.Errorf("forwarding: %w", &ProgMismatchError{Low: 7, High: 9})
		}),
	}
	m := NewMux()
	m.Handle(testProg, testVersLow, procs)
	m.Handle(testProg, testVersHi, procs)
	return m
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// whoami is the decoded result of procWhoami.
type whoami struct {
	uid                  int32
	netid, local, remote string
	authUID              int32
}

func parseWhoami(t *testing.T, reply []byte) whoami {
	t.Helper()
	d := xdr.NewDecoder(reply)
	if _, err := d.FixedOpaque(len(AppendSuccess(nil, 0))); err != nil {
		t.Fatalf("short reply %x", reply)
	}
	var w whoami
	var errs [5]error
	w.uid, errs[0] = d.Int32()
	w.netid, errs[1] = d.String(64)
	w.local, errs[2] = d.String(64)
	w.remote, errs[3] = d.String(64)
	w.authUID, errs[4] = d.Int32()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("whoami reply %x: %v", reply, err)
	}
	return w
}

func testCall(xid, vers, proc uint32, args ...uint32) []byte {
	return append(AppendCall(nil, xid, testProg, vers, proc, OpaqueAuth{}), words(args...)...)
}

// testServer is a Server listening on loopback UDP and TCP and on a unix
// socket in a temporary directory.
type testServer struct {
	*Server
	udp      *net.UDPConn
	tcp      net.Listener
	unixPath string
	unix     net.Listener
	done     chan error
	serving  int
	shutdown bool
}

// startServer serves s on every transport until the test ends; fields of
// s left zero get short test defaults where the real ones would slow the
// tests down.
func startServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	ts := &testServer{Server: s, done: make(chan error, 3)}
	if s.Handler == nil {
		s.Handler = testMux()
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.udp = pc.(*net.UDPConn)
	if ts.tcp, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ts.unixPath = filepath.Join(t.TempDir(), "rpcbind.sock")
	if ts.unix, err = net.Listen("unix", ts.unixPath); err != nil {
		t.Fatal(err)
	}
	ts.serving = 3
	go func() { ts.done <- s.ServeUDP(ts.udp, NetidUDP) }()
	go func() { ts.done <- s.ServeStream(ts.tcp, NetidTCP) }()
	go func() { ts.done <- s.ServeStream(ts.unix, NetidLocal) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down and checks that every Serve method returned
// ErrServerClosed.
func (ts *testServer) stop(t *testing.T) time.Duration {
	t.Helper()
	if ts.shutdown {
		return 0
	}
	ts.shutdown = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	took := time.Since(start)
	for range ts.serving {
		select {
		case err := <-ts.done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a Serve method did not return after Shutdown")
		}
	}
	return took
}

// A client sends calls over one transport and reads the replies.
type client interface {
	send(t *testing.T, msg []byte)
	// recv returns the next reply, or an error when none came in time.
	recv(t *testing.T, wait time.Duration) ([]byte, error)
	close()
}

type udpClient struct {
	conn *net.UDPConn
	buf  []byte
}

func dialUDP(t *testing.T, addr net.Addr) *udpClient {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{conn: c, buf: make([]byte, 65536)}
}

func (c *udpClient) send(t *testing.T, msg []byte) {
	t.Helper()
	if _, err := c.conn.Write(msg); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (c *udpClient) recv(t *testing.T, wait time.Duration) ([]byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := c.conn.Read(c.buf)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(c.buf[:n]), nil
}

func (c *udpClient) close() { c.conn.Close() }

type streamClient struct {
	conn net.Conn
	rr   *RecordReader
}

func dialStream(t *testing.T, network, addr string) *streamClient {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &streamClient{conn: c, rr: NewRecordReader(c, 1<<20)}
}

func (c *streamClient) send(t *testing.T, msg []byte) {
	t.Helper()
	if err := WriteRecord(c.conn, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (c *streamClient) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (c *streamClient) recv(t *testing.T, wait time.Duration) ([]byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(wait))
	rec, err := c.rr.Next()
	return bytes.Clone(rec), err
}

func (c *streamClient) close() { c.conn.Close() }

// expectClosed waits for the server to close the connection.
func (c *streamClient) expectClosed(t *testing.T, wait time.Duration) {
	t.Helper()
	rec, err := c.recv(t, wait)
	if err == nil {
		t.Fatalf("got a reply %x, want the connection closed", rec)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", wait)
	}
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("err = %v, want EOF or ECONNRESET", err)
	}
}

func (ts *testServer) clients(t *testing.T) map[string]client {
	return map[string]client{
		"udp":   dialUDP(t, ts.udp.LocalAddr()),
		"tcp":   dialStream(t, "tcp", ts.tcp.Addr().String()),
		"local": dialStream(t, "unix", ts.unixPath),
	}
}

const (
	replyWait   = 5 * time.Second
	silenceWait = 150 * time.Millisecond
)

// expectReply reads the next reply and compares it byte for byte.
func expectReply(t *testing.T, c client, want []byte) []byte {
	t.Helper()
	got, err := c.recv(t, replyWait)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	if want != nil && !bytes.Equal(got, want) {
		t.Fatalf("reply\n got  %x\n want %x", got, want)
	}
	return got
}

// expectSilence checks that msg gets no answer: a NULL call sent after it
// must be the next thing answered, and nothing may follow.
func expectSilence(t *testing.T, c client, msg []byte) {
	t.Helper()
	c.send(t, msg)
	c.send(t, testCall(0x5117, 1, procNull))
	got := expectReply(t, c, nil)
	if !bytes.Equal(got, AppendSuccess(nil, 0x5117)) {
		t.Fatalf("got %x, want no reply to the message and then the NULL reply", got)
	}
	if got, err := c.recv(t, silenceWait); err == nil {
		t.Fatalf("unexpected reply %x", got)
	}
}

func TestServerAnswers(t *testing.T) {
	ts := startServer(t, &Server{MaxUDPReply: DefaultMaxUDPReply})
	const x = 0x0c0ffee0
	badAuthSys := words(1, 300) // a machine name of 300 bytes
	badAuthSys = append(badAuthSys, make([]byte, 300)...)
	badAuthSys = append(badAuthSys, words(0, 0, 0)...)
	authSys := hexBytes(t, authSysBody)
	rpcv3 := rawCall{xid: x, rpcvers: 3, prog: testProg, vers: 1}.bytes()

	tests := []struct {
		name string
		msg  []byte
		want []byte // nil: no reply at all
	}{
		{"NULL answers SUCCESS with no results", testCall(x, 1, procNull), AppendSuccess(nil, x)},
		{"a procedure's results follow SUCCESS", testCall(x, 3, procAdd, 2, 3), xdr.AppendUint32(AppendSuccess(nil, x), 5)},
		{"an AUTH_SYS credential is accepted",
			append(AppendCall(nil, x, testProg, 1, procAdd, OpaqueAuth{AuthSys, authSys}), words(40, 2)...),
			xdr.AppendUint32(AppendSuccess(nil, x), 42)},
		{"an unknown program is PROG_UNAVAIL", append(AppendCall(nil, x, testProg+1, 1, 0, OpaqueAuth{}), 1, 2, 3, 4),
			AppendAccepted(nil, x, ProgUnavail)},
		{"an unknown version is PROG_MISMATCH with the range served", testCall(x, 2, procNull),
			AppendProgMismatch(nil, x, testVersLow, testVersHi)},
		{"a version above the range is PROG_MISMATCH too", testCall(x, 4, procNull),
			AppendProgMismatch(nil, x, testVersLow, testVersHi)},
		{"a handler's own PROG_MISMATCH keeps its range", testCall(x, 1, procMismatch),
			AppendProgMismatch(nil, x, 7, 9)},
		{"a procedure registered as nil is PROC_UNAVAIL", testCall(x, 1, procNil), AppendAccepted(nil, x, ProcUnavail)},
		{"a procedure past the table is PROC_UNAVAIL", testCall(x, 1, 99), AppendAccepted(nil, x, ProcUnavail)},
		{"procedure 2^32-1 is PROC_UNAVAIL", testCall(x, 1, 0xffffffff), AppendAccepted(nil, x, ProcUnavail)},
		{"arguments that do not decode are GARBAGE_ARGS", testCall(x, 1, procAdd, 2), AppendAccepted(nil, x, GarbageArgs)},
		{"GARBAGE_ARGS wrapped with context", testCall(x, 1, procWrapped), AppendAccepted(nil, x, GarbageArgs)},
		{"rpcvers 3 is RPC_MISMATCH 2..2", rpcv3, AppendRPCMismatch(nil, x, 2, 2)},
		{"a malformed AUTH_SYS is AUTH_BADCRED", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{AuthSys, badAuthSys}),
			AppendAuthError(nil, x, AuthBadCred)},
		{"an empty AUTH_SYS body is AUTH_BADCRED", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{AuthSys, nil}),
			AppendAuthError(nil, x, AuthBadCred)},
		{"AUTH_SHORT is AUTH_REJECTEDCRED", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{AuthShort, []byte{1, 2, 3, 4}}),
			AppendAuthError(nil, x, AuthRejectedCred)},
		{"RPCSEC_GSS is AUTH_BADCRED, as from rpcbind", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{RPCSecGSS, make([]byte, 20)}),
			AppendAuthError(nil, x, AuthBadCred)},
		{"AUTH_DH is AUTH_FAILED, as from rpcbind", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{AuthDH, make([]byte, 8)}),
			AppendAuthError(nil, x, AuthFailed)},
		{"AUTH_TLS is AUTH_REJECTEDCRED", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{7, nil}),
			AppendAuthError(nil, x, AuthRejectedCred)},
		{"an unknown flavour is AUTH_REJECTEDCRED", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{0xffffffff, nil}),
			AppendAuthError(nil, x, AuthRejectedCred)},
		{"an AUTH_SYS body longer than its fields is accepted",
			append(AppendCall(nil, x, testProg, 1, procAdd, OpaqueAuth{AuthSys, append(authSys, 1, 2, 3, 4, 5)}), words(40, 2)...),
			xdr.AppendUint32(AppendSuccess(nil, x), 42)},
		{"a handler's refusal is AUTH_TOOWEAK", testCall(x, 1, procTooWeak), AppendAuthError(nil, x, AuthTooWeak)},
		{"a wrapped refusal is AUTH_TOOWEAK", testCall(x, 1, procWrapAuth), AppendAuthError(nil, x, AuthTooWeak)},
		{"an unexpected handler error is SYSTEM_ERR without partial results", testCall(x, 1, procFail),
			AppendAccepted(nil, x, SystemErr)},
		{"a REPLY gets no reply", rawCall{xid: x, mtype: MsgReply, rpcvers: 2}.bytes(), nil},
		{"a message shorter than a call header gets no reply", words(x, 0), nil},
		{"a call header cut inside the credential gets no reply", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{AuthSys, authSys})[:40], nil},
		{"a credential over 400 bytes gets no reply", AppendCall(nil, x, testProg, 1, 0, OpaqueAuth{AuthSys, make([]byte, 404)}), nil},
		{"an empty message gets no reply", []byte{}, nil},
		{"a handler returning ErrNoReply is silent", testCall(x, 1, procNoReply), nil},
	}
	// Messages that are not decodable calls: a stream that carries one
	// gets no reply and stays open, its framing being sound (rpcbind
	// closes it): the call after it is answered.
	garbage := map[string]bool{
		"a REPLY gets no reply":                                 true,
		"a message shorter than a call header gets no reply":    true,
		"a call header cut inside the credential gets no reply": true,
		"a credential over 400 bytes gets no reply":             true,
		"an empty message gets no reply":                        true,
	}
	for name, c := range ts.clients(t) {
		t.Run(name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if garbage[tt.name] && name != "udp" {
						network, addr := "tcp", ts.tcp.Addr().String()
						if name == "local" {
							network, addr = "unix", ts.unixPath
						}
						sc := dialStream(t, network, addr)
						sc.send(t, tt.msg)
						sc.send(t, testCall(x+1, 1, procNull))
						expectReply(t, sc, AppendSuccess(nil, x+1))
						return
					}
					if tt.want == nil {
						expectSilence(t, c, tt.msg)
						return
					}
					c.send(t, tt.msg)
					expectReply(t, c, tt.want)
				})
			}
		})
	}
}

// Handlers learn the transport, the addresses and, on the local socket,
// the caller's uid from SO_PEERCRED.
func TestServerCallerIdentity(t *testing.T) {
	ts := startServer(t, &Server{})
	cred := AppendAuthSys(nil, &AuthSysParams{MachineName: []byte("h"), UID: 4242})
	msg := AppendCall(nil, 1, testProg, 1, procWhoami, OpaqueAuth{AuthSys, cred})
	clients := ts.clients(t)

	for name, c := range clients {
		c.send(t, msg)
		w := parseWhoami(t, expectReply(t, c, nil))
		if w.netid != name || w.authUID != 4242 {
			t.Errorf("%s: netid %q, AUTH_SYS uid %d; want %q, 4242", name, w.netid, w.authUID, name)
		}
		switch name {
		case "local":
			if w.uid != int32(os.Getuid()) || w.local != "" || w.remote != "" {
				t.Errorf("local: uid %d, addresses %q %q; want uid %d and no addresses", w.uid, w.local, w.remote, os.Getuid())
			}
		case "tcp":
			conn := c.(*streamClient).conn
			if w.uid != -1 || w.local != conn.RemoteAddr().String() || w.remote != conn.LocalAddr().String() {
				t.Errorf("tcp: uid %d, local %q, remote %q; want -1, %v, %v", w.uid, w.local, w.remote,
					conn.RemoteAddr(), conn.LocalAddr())
			}
		case "udp":
			conn := c.(*udpClient).conn
			// The socket is bound to 127.0.0.1, so the kernel is not asked
			// for the destination; Local stays empty.
			if w.uid != -1 || w.remote != conn.LocalAddr().String() {
				t.Errorf("udp: uid %d, remote %q; want -1, %v", w.uid, w.remote, conn.LocalAddr())
			}
		}
	}

	// A call without AUTH_SYS has no credential to show.
	c := clients["local"]
	c.send(t, testCall(2, 1, procWhoami))
	if w := parseWhoami(t, expectReply(t, c, nil)); w.authUID != -1 {
		t.Errorf("AUTH_NONE call: AuthSys uid %d, want none", w.authUID)
	}
}

// A reply too large for a datagram is not sent; a local caller, who is owed
// an answer and whose reply cannot be reflected, gets SYSTEM_ERR instead,
// as from rpcbind (rpcinfo -m over UDP then fails at once rather than
// waiting out its timeout).
func TestServerUDPReplyTooLarge(t *testing.T) {
	ts := startServer(t, &Server{MaxUDPReply: 8800})
	u := dialUDP(t, ts.udp.LocalAddr())
	u.send(t, testCall(1, 1, procBig))
	expectReply(t, u, AppendAccepted(nil, 1, SystemErr))

	// The same call over a stream is answered in full.
	s := dialStream(t, "tcp", ts.tcp.Addr().String())
	s.send(t, testCall(2, 1, procBig))
	if got := expectReply(t, s, nil); len(got) != 24+4+bigReplyBytes {
		t.Errorf("stream reply of %d bytes, want %d", len(got), 24+4+bigReplyBytes)
	}
}

func TestServerDeferredReply(t *testing.T) {
	ts := startServer(t, &Server{})
	u := dialUDP(t, ts.udp.LocalAddr())
	u.send(t, testCall(77, 1, procDefer))
	expectReply(t, u, xdr.AppendUint32(AppendSuccess(nil, 77), 42))

	// Streams do not support late replies: Defer says so with nil.
	s := dialStream(t, "tcp", ts.tcp.Addr().String())
	s.send(t, testCall(78, 1, procDefer))
	expectReply(t, s, xdr.AppendUint32(AppendSuccess(nil, 78), 0))
}

// A client may write several calls at once; each is answered, in order.
func TestServerStreamPipelining(t *testing.T) {
	ts := startServer(t, &Server{})
	for _, network := range []string{"tcp", "unix"} {
		addr := ts.tcp.Addr().String()
		if network == "unix" {
			addr = ts.unixPath
		}
		c := dialStream(t, network, addr)
		var batch []byte
		var want [][]byte
		for i := range uint32(20) {
			var msg []byte
			switch i % 4 {
			case 0, 1:
				msg = testCall(i, 1, procAdd, i, 1000)
				want = append(want, xdr.AppendUint32(AppendSuccess(nil, i), i+1000))
			case 2:
				msg = testCall(i, 2, procNull)
				want = append(want, AppendProgMismatch(nil, i, testVersLow, testVersHi))
			case 3:
				// A handler that answers nothing: skipped in the
				// sequence of replies.
				msg = testCall(i, 1, procNoReply)
			}
			batch = append(batch, MarkRecord(append(make([]byte, RecordHeaderLen), msg...))...)
		}
		c.write(t, batch)
		for _, w := range want {
			expectReply(t, c, w)
		}
		if got, err := c.recv(t, silenceWait); err == nil {
			t.Errorf("%s: unexpected extra reply %x", network, got)
		}
	}
}

// A call split into fragments, and each fragment split across writes, is
// reassembled before it is served.
func TestServerMultiFragmentCall(t *testing.T) {
	ts := startServer(t, &Server{})
	msg := append(AppendCall(nil, 9, testProg, 1, procAdd, OpaqueAuth{AuthSys, hexBytes(t, authSysBody)}), words(20, 22)...)
	want := xdr.AppendUint32(AppendSuccess(nil, 9), 42)

	// Fragments of 1, 2, 3, ... bytes, cutting words and the credential.
	var rec []byte
	for off, size := 0, 1; off < len(msg); off, size = off+size, size+1 {
		end := min(off+size, len(msg))
		rec = append(rec, frag(end == len(msg), string(msg[off:end]))...)
	}

	c := dialStream(t, "tcp", ts.tcp.Addr().String())
	c.write(t, rec)
	expectReply(t, c, want)

	// The same record trickled in pieces of 3 bytes.
	for off := 0; off < len(rec); off += 3 {
		c.write(t, rec[off:min(off+3, len(rec))])
		time.Sleep(time.Millisecond)
	}
	expectReply(t, c, want)
}

func TestServerRecordCap(t *testing.T) {
	const max = 1024
	ts := startServer(t, &Server{MaxRecord: max})

	t.Run("a call of exactly the cap is served", func(t *testing.T) {
		c := dialStream(t, "tcp", ts.tcp.Addr().String())
		msg := testCall(1, 1, procNull)
		msg = append(msg, make([]byte, max-len(msg))...)
		c.send(t, msg)
		expectReply(t, c, AppendSuccess(nil, 1))
	})
	t.Run("a header over the cap closes the connection", func(t *testing.T) {
		c := dialStream(t, "tcp", ts.tcp.Addr().String())
		c.write(t, append(words(lastFragment|(max+1)), testCall(2, 1, procNull)...))
		c.expectClosed(t, replyWait)
	})
	t.Run("fragments over the cap together close the connection", func(t *testing.T) {
		c := dialStream(t, "unix", ts.unixPath)
		c.write(t, frag(false, strings.Repeat("a", 600)))
		c.write(t, frag(true, strings.Repeat("b", 600)))
		c.expectClosed(t, replyWait)
	})
	t.Run("a header claiming 2 GB closes the connection", func(t *testing.T) {
		c := dialStream(t, "tcp", ts.tcp.Addr().String())
		c.write(t, words(0xffffffff))
		c.expectClosed(t, replyWait)
	})
}

func TestServerIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	ts := startServer(t, &Server{IdleTimeout: idle, ReadTimeout: 10 * time.Second})

	// A connection that sends nothing is closed after IdleTimeout.
	c := dialStream(t, "tcp", ts.tcp.Addr().String())
	start := time.Now()
	c.expectClosed(t, 5*time.Second)
	if took := time.Since(start); took < idle/2 {
		t.Errorf("closed after %v, before the idle timeout of %v", took, idle)
	}

	// Each call starts the idle time afresh.
	c = dialStream(t, "unix", ts.unixPath)
	for i := range uint32(6) {
		time.Sleep(idle / 2)
		c.send(t, testCall(i, 1, procNull))
		expectReply(t, c, AppendSuccess(nil, i))
	}
}

func TestServerReadTimeout(t *testing.T) {
	const read = 200 * time.Millisecond
	ts := startServer(t, &Server{IdleTimeout: time.Minute, ReadTimeout: read})

	// A record started and not finished: closed after ReadTimeout, long
	// before the idle timeout.
	c := dialStream(t, "tcp", ts.tcp.Addr().String())
	start := time.Now()
	c.write(t, append(words(lastFragment|40), 1, 2, 3))
	c.expectClosed(t, 5*time.Second)
	// expectClosed waited at most 5 s, far less than the idle timeout.
	if took := time.Since(start); took < read/2 {
		t.Errorf("closed after %v, before the read timeout of %v", took, read)
	}

	// A stall inside a record mark counts as well.
	c = dialStream(t, "unix", ts.unixPath)
	c.write(t, frag(false, "abcd"))
	c.write(t, []byte{0x80, 0})
	c.expectClosed(t, 5*time.Second)
}

// A deadline is moved at most once a sixteenth of its span while its span
// stays the same, at once when the span changes, and Shutdown's deadline
// in the past is never undone.
func TestLazyDeadline(t *testing.T) {
	var set []time.Time
	l := lazyDeadline{set: func(d time.Time) error { set = append(set, d); return nil }}
	s := &Server{}
	const span = 16 * time.Second
	t0 := time.Unix(1000, 0)
	steps := []struct {
		now  time.Time
		span time.Duration
		want time.Time // zero: left as it was
	}{
		{t0, span, t0.Add(span)},
		{t0.Add(span/16 - 1), span, time.Time{}},
		{t0.Add(span / 16), span, t0.Add(span/16 + span)},
		{t0.Add(span / 16), time.Second, t0.Add(span/16 + time.Second)},
		{t0.Add(span / 16), span, t0.Add(span/16 + span)},
	}
	for i, st := range steps {
		set = set[:0]
		l.extend(s, st.now, st.span)
		switch {
		case st.want.IsZero() && len(set) != 0:
			t.Errorf("step %d: set %v, want it left alone", i, set)
		case !st.want.IsZero() && (len(set) != 1 || !set[0].Equal(st.want)):
			t.Errorf("step %d: set %v, want [%v]", i, set, st.want)
		}
	}
	s.closing.Store(true)
	set = set[:0]
	l.extend(s, t0.Add(span), span)
	if len(set) != 2 || !set[1].Equal(pastDeadline) {
		t.Errorf("while closing: set %v, want a deadline then %v", set, pastDeadline)
	}
}

// At MaxConns a new connection takes the place of the one idle the
// longest, so a crowd of idle connections cannot lock clients out.
func TestServerMaxConnsEvictsTheLongestIdle(t *testing.T) {
	ts := startServer(t, &Server{MaxConns: 2})
	// One connection on each listener: the cap counts them together. a is
	// used first, so it is the longest idle.
	a := dialStream(t, "tcp", ts.tcp.Addr().String())
	b := dialStream(t, "unix", ts.unixPath)
	for _, c := range []*streamClient{a, b} {
		c.send(t, testCall(1, 1, procNull))
		expectReply(t, c, AppendSuccess(nil, 1))
		time.Sleep(5 * time.Millisecond)
	}
	c := dialStream(t, "tcp", ts.tcp.Addr().String())
	c.send(t, testCall(2, 1, procNull))
	expectReply(t, c, AppendSuccess(nil, 2))
	a.expectClosed(t, replyWait)
	// b was not evicted.
	b.send(t, testCall(3, 1, procNull))
	expectReply(t, b, AppendSuccess(nil, 3))
	if n := ts.Counters.ConnsEvicted.Load(); n != 1 {
		t.Errorf("ConnsEvicted = %d, want 1", n)
	}
}

// udpProbe sends WHOAMI from an unconnected socket to dst and returns the
// reply and the address it came from.
func udpProbe(t *testing.T, conn *net.UDPConn, dst netip.AddrPort) (whoami, netip.AddrPort) {
	t.Helper()
	if _, err := conn.WriteToUDPAddrPort(testCall(5, 1, procWhoami), dst); err != nil {
		t.Fatalf("send to %v: %v", dst, err)
	}
	buf := make([]byte, 2048)
	conn.SetReadDeadline(time.Now().Add(replyWait))
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no reply to a call sent to %v: %v", dst, err)
	}
	return parseWhoami(t, buf[:n]), from
}

// serveUDPOn serves the test program on a datagram socket of its own.
func serveUDPOn(t *testing.T, network, addr string) (*net.UDPConn, *Server) {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	s := &Server{}
	s.Handler = testMux()
	conn := pc.(*net.UDPConn)
	done := make(chan error, 1)
	go func() { done <- s.ServeUDP(conn, NetidUDP) }()
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeUDP: %v", err)
		}
	})
	return conn, s
}

// A server bound to 0.0.0.0 answers from the address each call was sent to;
// clients drop replies from anywhere else. Linux routes all of 127/8 to lo,
// so 127.0.0.2 is a second local address without any setup.
func TestServerUDPReplySource(t *testing.T) {
	conn, _ := serveUDPOn(t, "udp4", "0.0.0.0:0")
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, a := range []string{"127.0.0.1", "127.0.0.2", "127.1.2.3"} {
		dst := netip.AddrPortFrom(netip.MustParseAddr(a), port)
		w, from := udpProbe(t, cl, dst)
		if from != dst {
			t.Errorf("call to %v answered from %v", dst, from)
		}
		if w.local != dst.String() {
			t.Errorf("call to %v: the handler saw Local %q", dst, w.local)
		}
	}
}

// A broadcast call is answered from the address of the interface it came
// in on: a broadcast address cannot be a source.
func TestServerUDPBroadcastReplySource(t *testing.T) {
	conn, _ := serveUDPOn(t, "udp4", "0.0.0.0:0")
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rc, err := cl.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	})
	if serr != nil {
		t.Fatal(serr)
	}
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.255.255.255"), port)
	w, from := udpProbe(t, cl, dst)
	if from.Addr() != netip.MustParseAddr("127.0.0.1") || from.Port() != port {
		t.Errorf("broadcast answered from %v, want 127.0.0.1:%d", from, port)
	}
	if w.local != dst.String() {
		t.Errorf("the handler saw Local %q, want the broadcast address %v", w.local, dst)
	}
}

func TestServerUDP6ReplySource(t *testing.T) {
	conn, _ := serveUDPOn(t, "udp6", "[::]:0")
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	cl, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skip(err)
	}
	defer cl.Close()
	dst := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	w, from := udpProbe(t, cl, dst)
	if from != dst || w.local != dst.String() {
		t.Errorf("call to %v answered from %v; handler saw Local %q", dst, from, w.local)
	}
}

// On a dual-stack socket IPv4 calls arrive as v4-mapped addresses and are
// answered from the one they were sent to.
func TestServerUDPDualStackReplySource(t *testing.T) {
	conn, _ := serveUDPOn(t, "udp", "[::]:0")
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)
	_, from := udpProbe(t, cl, dst)
	if from != dst {
		t.Errorf("call to %v answered from %v", dst, from)
	}
}

// waitGoroutines waits, boundedly, for the goroutine count to fall to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Shutdown closes the sockets and wakes idle connections at once instead of
// waiting for their timeouts, and leaves no goroutine behind.
func TestServerShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	ts := startServer(t, &Server{IdleTimeout: time.Minute, ReadTimeout: time.Minute})
	var open []*streamClient
	for i := range uint32(6) {
		network, addr := "tcp", ts.tcp.Addr().String()
		if i%2 == 1 {
			network, addr = "unix", ts.unixPath
		}
		c := dialStream(t, network, addr)
		c.send(t, testCall(i, 1, procNull))
		expectReply(t, c, AppendSuccess(nil, i))
		open = append(open, c)
	}
	// One connection stalls inside a record, one never sends anything.
	open[0].write(t, append(words(lastFragment|100), 1, 2))
	open = append(open, dialStream(t, "tcp", ts.tcp.Addr().String()))
	// One asks for 40 MB of replies and reads none, so that the server
	// blocks writing to it.
	greedy := dialStream(t, "unix", ts.unixPath)
	var calls []byte
	for i := range uint32(4000) {
		calls = append(calls, MarkRecord(append(make([]byte, RecordHeaderLen), testCall(i, 1, procBig)...))...)
	}
	go greedy.conn.Write(calls)
	time.Sleep(200 * time.Millisecond)
	u := dialUDP(t, ts.udp.LocalAddr())
	u.send(t, testCall(9, 1, procNull))
	expectReply(t, u, AppendSuccess(nil, 9))

	if took := ts.stop(t); took > time.Second {
		t.Errorf("Shutdown took %v with idle connections open", took)
	}
	for _, c := range open {
		c.expectClosed(t, replyWait)
	}
	waitGoroutines(t, before)

	// A closed server serves nothing more.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := ts.ServeUDP(pc.(*net.UDPConn), NetidUDP); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeUDP after Shutdown: %v", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := ts.ServeStream(l, NetidTCP); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeStream after Shutdown: %v", err)
	}
}

// Shutdown while connections are busy: a connection that is between calls
// when Shutdown runs must not push its deadline back into the future, or
// Shutdown waits for the idle timeout. The window is narrow; this test
// catches it only now and then (reliably with a sleep put into it).
func TestServerShutdownUnderLoad(t *testing.T) {
	for round := range 30 {
		ts := startServer(t, &Server{IdleTimeout: time.Minute, ReadTimeout: time.Minute})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 8 {
			network, addr := "tcp", ts.tcp.Addr().String()
			if i%2 == 1 {
				network, addr = "unix", ts.unixPath
			}
			c := dialStream(t, network, addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for xid := uint32(0); ; xid++ {
					select {
					case <-stop:
						return
					default:
					}
					if WriteRecord(c.conn, testCall(xid, 1, procNull)) != nil {
						return
					}
					c.conn.SetReadDeadline(time.Now().Add(replyWait))
					if _, err := c.rr.Next(); err != nil {
						return
					}
				}
			}()
		}
		// The clients stop as Shutdown starts, so the connections go idle
		// around the moment it sets their deadlines.
		time.Sleep(5 * time.Millisecond)
		close(stop)
		took := ts.stop(t)
		wg.Wait()
		if took > 2*time.Second {
			t.Fatalf("round %d: Shutdown took %v under load", round, took)
		}
	}
}
