package rpc

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// ServeStream serves calls on connections accepted from l, whose transport
// is netid ("tcp", "tcp6" or "local"), until l is closed or Shutdown is
// called. Each connection is served by one goroutine, one call at a time
// and in order, so a client may pipeline calls.
func (s *Server) ServeStream(l net.Listener, netid string) error {
	s.init()
	s.mu.Lock()
	if s.isClosing() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	if fastListener(l) {
		return s.serveFast(l, netid)
	}

	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// Out of descriptors (EMFILE, ENFILE) or a transient error:
			// wait a little, growing, instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if ce := s.Log.Check(zap.WarnLevel, "accept failed; backing off"); ce != nil {
				ce.Write(zap.String("netid", netid), zap.Duration("backoff", backoff), zap.Error(err))
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		st, ok := s.track(conn)
		if !ok {
			if ce := s.Log.Check(zap.InfoLevel, "too many connections; closing a new one"); ce != nil {
				ce.Write(zap.String("netid", netid), zap.Stringer("remote", conn.RemoteAddr()))
			}
			conn.Close()
			continue
		}
		go s.serveConn(conn, st, netid)
	}
}

// connState is what the server knows of an open connection, for choosing
// one to evict.
type connState struct {
	host       netip.Addr // counted against MaxConnsPerHost; invalid if exempt
	lastActive atomic.Int64
	busy       atomic.Bool // serving a call: not to be evicted
}

// track adds conn to the open connections. At MaxConns it makes room by
// closing the connection that has been idle the longest, so that a flood
// of idle or stalled connections (CVE-2021-46828) cannot lock out
// well-behaved clients; a host over MaxConnsPerHost is refused instead.
func (s *Server) track(conn net.Conn) (*connState, bool) {
	var remote netip.Addr
	if tc, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		remote = tc.AddrPort().Addr()
	}
	return s.trackState(conn, &connState{}, remote, false)
}

// trackState is track for a connection whose state the caller holds
// (the fast path keeps it in its rawConn, one allocation for both), whose
// remote address is known (invalid on the local socket) and which starts
// busy or not.
func (s *Server) trackState(conn net.Conn, st *connState, remote netip.Addr, busy bool) (*connState, bool) {
	st.busy.Store(busy)
	st.lastActive.Store(time.Now().UnixNano())
	if a := remote.Unmap(); a.IsValid() && !a.IsLoopback() {
		st.host = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosing() {
		return nil, false
	}
	if st.host.IsValid() && s.MaxConnsPerHost > 0 && s.perHost[st.host] >= s.MaxConnsPerHost {
		s.Counters.ConnsRefused.Add(1)
		s.observeReject(RefusedTooManyConns)
		return nil, false
	}
	if len(s.conns) >= s.MaxConns && !s.evictLocked() {
		s.Counters.ConnsRefused.Add(1)
		s.observeReject(RefusedTooManyConns)
		return nil, false
	}
	s.conns[conn] = st
	if st.host.IsValid() {
		s.perHost[st.host]++
	}
	s.wg.Add(1)
	return st, true
}

// evictLocked closes the idle connection whose last activity is oldest.
// Its goroutine sees the closed connection and untracks it; it leaves the
// table here at once, so the new connection can take its place.
func (s *Server) evictLocked() bool {
	var victim net.Conn
	var vs *connState
	for c, st := range s.conns {
		if st.busy.Load() {
			continue
		}
		if vs == nil || st.lastActive.Load() < vs.lastActive.Load() {
			victim, vs = c, st
		}
	}
	if victim == nil {
		return false
	}
	s.forgetLocked(victim, vs)
	victim.Close()
	s.Counters.ConnsEvicted.Add(1)
	s.observeReject(RefusedEvicted)
	return true
}

func (s *Server) forgetLocked(conn net.Conn, st *connState) {
	if _, ok := s.conns[conn]; !ok {
		return
	}
	delete(s.conns, conn)
	if st.host.IsValid() {
		if s.perHost[st.host]--; s.perHost[st.host] <= 0 {
			delete(s.perHost, st.host)
		}
	}
}

func (s *Server) untrack(conn net.Conn, st *connState) {
	conn.Close()
	s.mu.Lock()
	s.forgetLocked(conn, st)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) serveConn(conn net.Conn, st *connState, netid string) {
	defer s.untrack(conn, st)
	if s.Observer != nil {
		if _, fast := conn.(*rawConn); !fast { // counted when accepted
			s.Observer.ConnOpened(netid)
		}
		defer s.Observer.ConnClosed(netid)
	}
	c := Call{Netid: netid, uid: -1}
	switch conn := conn.(type) {
	case *rawConn:
		conn.fillCall(&c)
	case *net.TCPConn:
		c.Remote = conn.RemoteAddr().(*net.TCPAddr).AddrPort()
		c.Local = conn.LocalAddr().(*net.TCPAddr).AddrPort()
	case *net.UnixConn:
		c.uid = peerUID(conn)
	default:
		c.Remote, _ = netip.ParseAddrPort(conn.RemoteAddr().String())
		c.Local, _ = netip.ParseAddrPort(conn.LocalAddr().String())
	}
	c.unmapDualStack()
	base := c

	rr := s.newConnReader(conn)
	defer rr.Close()
	reads := lazyDeadline{set: conn.SetReadDeadline}
	writes := lazyDeadline{set: conn.SetWriteDeadline}
	rr.Started = func() { reads.extend(s, time.Now(), s.ReadTimeout) }
	batch := &streamBatch{rr: rr}
	var w Reply
	var out []byte // made with the first call: a connection that sends none holds none
	now := time.Now()
	for {
		if s.isClosing() {
			return
		}
		if batch.due() {
			writes.extend(s, time.Now(), s.ReadTimeout)
			if err := s.flushBatch(conn, batch); err != nil {
				s.logStreamEnd(&c, err)
				return
			}
		}
		reads.extend(s, now, s.IdleTimeout)
		msg, err := rr.Next()
		if err != nil {
			s.logStreamEnd(&c, err)
			return
		}
		c = base
		st.busy.Store(true)
		if out == nil {
			out = make([]byte, RecordHeaderLen, 4096)
		}
		ok := s.dispatch(&w, out[:RecordHeaderLen], msg, &c)
		now = time.Now()
		if !ok {
			// No reply: a call answered with silence, or a record that is
			// not a call. Its framing was sound, so the stream is still in
			// step and the calls after it are served (rpcbind closes the
			// stream for the latter). Only framing that cannot be trusted
			// ends a stream: Next's errors above.
			st.lastActive.Store(now.UnixNano())
			st.busy.Store(false)
			continue
		}
		if batch.holds(&w) {
			batch.add(&w, &c)
			st.lastActive.Store(now.UnixNano())
			st.busy.Store(false)
			continue
		}
		if w.After != nil && !s.await(w.After, c.Vers, c.Proc, c.Netid) {
			w = Reply{Body: AppendAccepted(w.Body[:RecordHeaderLen], c.XID, SystemErr)}
		}
		writes.extend(s, now, s.ReadTimeout)
		if err := writeReply(conn, w.Body, w.Tail); err != nil {
			s.logStreamEnd(&c, err)
			return
		}
		st.lastActive.Store(now.UnixNano())
		st.busy.Store(false)
		if cap(w.Body) > DefaultKeep {
			out = make([]byte, RecordHeaderLen, 4096)
		} else {
			out = w.Body
		}
	}
}

// newConnReader reads the records of a server's connection: no read
// buffer while it waits, unfinished records counted against the server's
// cap on such bytes, and closed if its record is evicted.
func (s *Server) newConnReader(conn net.Conn) *RecordReader {
	rr := NewRecordReader(conn, s.MaxRecord)
	rr.Keep = 0
	rr.budget = &s.budget
	rr.evict = func() { conn.Close() }
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rr.raw = newRawSource(rc)
		}
	}
	return rr
}

// lazyDeadline keeps one of a connection's deadlines at a span from now
// without a timer update on every call: a deadline set less than a
// sixteenth of its span ago, for the same span, is left as it is. A
// client that pipelines calls then costs one update a few seconds rather
// than three a call, and a deadline is never more than a sixteenth
// short of its span.
type lazyDeadline struct {
	set  func(time.Time) error
	span time.Duration // span of the deadline set; 0 before the first
	at   time.Time     // when it was set
}

// extend sets the deadline to span after now unless it was set for span
// recently. Shutdown wakes connections by putting their deadlines in the
// past; checking for it after setting keeps a deadline set concurrently
// with Shutdown from undoing that (if closing is still false here,
// Shutdown's own deadline comes later), and a deadline left alone keeps
// Shutdown's.
func (l *lazyDeadline) extend(s *Server, now time.Time, span time.Duration) {
	if span == l.span && now.Sub(l.at) < span/16 {
		return
	}
	_ = l.set(now.Add(span)) // fails only on a closed connection
	l.span, l.at = span, now
	if s.isClosing() {
		_ = l.set(pastDeadline)
	}
}

func (s *Server) logStreamEnd(c *Call, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && s.isClosing() {
		return
	}
	if ce := s.Log.Check(zap.InfoLevel, "closing connection"); ce != nil {
		ce.Write(zap.String("netid", c.Netid), zap.Stringer("remote", c.Remote), zap.Error(err))
	}
}

// peerUID returns the uid of the process at the other end of a local
// socket, or -1 when the kernel does not say.
func peerUID(conn *net.UnixConn) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	_ = rc.Control(func(fd uintptr) { uid = socketPeerUID(int(fd)) }) // a closed connection keeps uid -1
	return uid
}

// writeReply sends reply, whose first bytes are reserved for the record
// mark, followed by tail as one record; the tail is not copied.
func writeReply(conn net.Conn, reply, tail []byte) error {
	markRecord(reply, tail)
	if len(tail) == 0 {
		_, err := conn.Write(reply)
		return err
	}
	if rc, ok := conn.(*rawConn); ok {
		return rc.writeBuffers(reply, tail)
	}
	bufs := net.Buffers{reply, tail}
	_, err := bufs.WriteTo(conn)
	return err
}
