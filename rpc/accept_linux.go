package rpc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The fast accept path. Most stream connections to a portmapper carry one
// call: mount.nfs, the kernel's rpcbind client, rpcinfo and libtirpc's
// rpcb_getaddr connect, ask once, read the answer and close. Through the
// net package each costs a score of system calls (accept4, getsockname,
// five setsockopts for no-delay and keep-alive, epoll_ctl twice, a read
// that finds nothing yet, and the wake-ups of a goroutine parked on it),
// and on a virtual machine a system call is most of the price of a call.
//
// So each such listener gets an event loop of its own (a tail): one
// goroutine on one epoll set that holds the listener and the connections
// waiting for their client. It accepts with accept4 and, when the call has
// already arrived (the daemon's TCP listeners defer accepting until it
// has, TCP_DEFER_ACCEPT, see ListenStream), reads it, answers it and writes
// the reply on the spot, through the descriptor, before any timer, buffer,
// poller registration or goroutine exists for the connection. The
// connection then waits in the tail's epoll set for the client's next
// move, with the idle timeout kept as a queue (every connection in it has
// the same span). When the client closes, as nearly all do, the tail
// closes the descriptor: six system calls for the connection, and no
// goroutine woken for it. A first call that has not arrived is waited for
// in the tail too. A connection that sends another call, a first call in
// fragments or larger than a small buffer, or that asks for a DUMP, is
// handed to the ordinary per-connection goroutine (serveConn) with what
// was read, and from then on is served as before.

// fastListener reports whether the fast path knows l's connections.
func fastListener(l net.Listener) bool {
	switch l.(type) {
	case *net.TCPListener, *net.UnixListener:
		return true
	}
	return false
}

// firstReadSize bounds the first call the accepting goroutine answers
// itself; a larger one goes to the connection's goroutine.
const firstReadSize = 2048

// serveFast serves the connections of l, one of the listeners
// fastListener knows, from tails, one for each CPU the runtime uses (at
// most maxTails): each is an event loop on an epoll set of its own that
// accepts from l, so that a storm on one listener is served on every CPU,
// as a goroutine per connection would be. ServeStream's goroutine becomes
// the first one's event loop.
func (s *Server) serveFast(l net.Listener, netid string) error {
	raw, err := l.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var local netip.AddrPort
	if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		// Bound to one address: every connection arrives there, and
		// getsockname need not say so each time.
		local = ta.AddrPort()
	}
	tails := make([]*tail, min(runtime.GOMAXPROCS(0), maxTails))
	defer func() {
		for _, t := range tails {
			if t != nil {
				t.close()
			}
		}
	}()
	for i := range tails {
		if tails[i], err = newListenerTail(s, raw, netid, local); err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			return err
		}
	}
	// Shutdown closes the listeners it holds: this one must stop the
	// tails as well.
	s.mu.Lock()
	delete(s.listeners, l)
	s.listeners[&tailListener{Listener: l, tails: tails}] = struct{}{}
	closing := s.isClosing()
	s.mu.Unlock()
	if closing {
		return ErrServerClosed
	}
	var wg sync.WaitGroup
	for _, t := range tails[1:] {
		wg.Go(t.run)
	}
	tails[0].run()
	wg.Wait()
	return ErrServerClosed
}

// maxTails bounds the event loops of one listener.
const maxTails = 4

// newListenerTail makes a tail that accepts from the listener raw is of.
// Every tail of a listener watches it with EPOLLEXCLUSIVE, so that a
// connection wakes one of them, not all.
func newListenerTail(s *Server, raw syscall.RawConn, netid string, local netip.AddrPort) (*tail, error) {
	t, err := newTail(s)
	if err != nil {
		return nil, err
	}
	t.listener = raw
	t.acceptFn = t.acceptAll
	t.acceptor = &acceptor{worker: worker{s: s, tail: t}, netid: netid, local: local}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE}
	setEventID(&ev, listenID)
	// Inside Control: Shutdown may be closing the listener already.
	var cerr error
	if err := raw.Control(func(fd uintptr) { cerr = unix.EpollCtl(t.ep, unix.EPOLL_CTL_ADD, int(fd), &ev) }); err != nil {
		t.close()
		return nil, err
	}
	if cerr != nil {
		t.close()
		return nil, os.NewSyscallError("epoll_ctl", cerr)
	}
	return t, nil
}

// accepted is a connection accept4 returned.
type accepted struct {
	fd     int
	remote netip.AddrPort
}

// tailListener is a fast listener as Shutdown sees it: closing it stops
// its tails too.
type tailListener struct {
	net.Listener
	tails []*tail
}

func (l *tailListener) Close() error {
	for _, t := range l.tails {
		t.stop()
	}
	return l.Listener.Close()
}

// acceptBatch accepts the connections waiting on the listener, a bounded
// number at a time so that the tail's other connections are not starved.
// It reports false once the listener is closed.
func (t *tail) acceptBatch() bool {
	// Control holds the listener open while it runs, and Close waits for
	// it: the connections are served after it returns, since serving may
	// wait for Shutdown, which may be closing the listener.
	t.batch, t.aerr = t.batch[:0], nil
	err := t.listener.Control(t.acceptFn)
	aerr := t.aerr
	for _, c := range t.batch {
		t.acceptor.serve(c.fd, c.remote)
	}
	if err != nil {
		return false
	}
	if aerr != nil {
		// Out of descriptors (EMFILE, ENFILE) or a transient error: wait
		// a little, growing, instead of spinning on the listener.
		t.backoff = min(max(2*t.backoff, 5*time.Millisecond), time.Second)
		if ce := t.s.Log.Check(zap.WarnLevel, "accept failed; backing off"); ce != nil {
			ce.Write(zap.String("netid", t.acceptor.netid), zap.Duration("backoff", t.backoff), zap.Error(aerr))
		}
		time.Sleep(t.backoff)
	} else {
		t.backoff = 0
	}
	return true
}

// acceptAll accepts from the listener's descriptor into t.batch, up to its
// capacity, leaving an error that is not the queue running dry in t.aerr.
// The peer's address is read into the tail's own buffer: accept4 through
// x/sys/unix allocates two for every connection.
func (t *tail) acceptAll(fd uintptr) {
	for len(t.batch) < cap(t.batch) {
		n := uint32(syscall.SizeofSockaddrInet6) // a local peer's is cut short: it is not read
		nfd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&t.peer)), uintptr(unsafe.Pointer(&n)),
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case 0:
			t.batch = append(t.batch, accepted{int(nfd), sockaddrAddrPort(&t.peer, n)})
			continue
		case unix.EAGAIN:
			return
		case unix.ECONNABORTED, unix.EINTR:
			continue // the client gave up before it was accepted
		}
		t.aerr = errno
		return
	}
}

// newConn returns a connection to fill in, reused if one is free.
func (t *tail) newConn() *rawConn {
	if n := len(t.free); n > 0 {
		rc := t.free[n-1]
		t.free[n-1] = nil
		t.free = t.free[:n-1]
		return rc
	}
	return new(rawConn)
}

// maxFreeConns bounds what a tail keeps for reuse after a storm (about
// 256 KiB).
const maxFreeConns = 1024

// recycle takes back a connection the loop dropped, from which it never
// escaped to a goroutine of its own (promote) or a late reply: only the
// server's tables held it, and untracking took it out of them under the
// server's lock, which every other holder (eviction, Shutdown) holds too.
func (t *tail) recycle(rc *rawConn) {
	if len(t.free) < maxFreeConns {
		*rc = rawConn{}
		t.free = append(t.free, rc)
	}
}

// netPort reads a port kept in network byte order in a uint16.
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// acceptor is the accepting goroutine's state.
type acceptor struct {
	worker
	netid string
	local netip.AddrPort // the listener's address, if it has one
	in    [firstReadSize]byte
}

// worker answers a connection's first call in place, on the accepting
// goroutine or on the tail's; out is its reply buffer, reply the reply
// being built in it and call the call being answered, all reused
// (dispatch keeps none of them).
type worker struct {
	s     *Server
	tail  *tail
	out   []byte
	reply Reply
	call  Call
}

// serve takes a newly accepted connection through its first call.
func (a *acceptor) serve(fd int, remote netip.AddrPort) {
	s := a.s
	rc := a.tail.newConn()
	rc.fd, rc.netid, rc.uid, rc.remote = fd, a.netid, uidUnasked, remote
	if a.netid != NetidLocal {
		// Invalid on a wildcard listener: nothing served reads it, and
		// getsockname would cost every connection a system call.
		rc.local = a.local
	}
	if _, ok := s.trackState(rc, &rc.state, remote.Addr(), true); !ok {
		if ce := s.Log.Check(zap.InfoLevel, "too many connections; closing a new one"); ce != nil {
			ce.Write(zap.String("netid", a.netid), zap.Stringer("remote", rc.remote))
		}
		rawClose(fd)
		return
	}
	if s.Observer != nil {
		s.Observer.ConnOpened(a.netid)
	}
	n, errno := rawRead(fd, a.in[:])
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		// Nothing yet (the local socket, or a TCP listener without
		// deferred accept): the tail waits for it.
		a.toTail(rc, true)
	case errno != 0 || n == 0:
		a.discard(rc)
	default:
		a.answer(rc, a.in[:n])
	}
}

// answer serves the first call of a connection it owns (busy, in no
// tail), data being all that has been read of it.
func (w *worker) answer(rc *rawConn, data []byte) {
	s := w.s
	msg, whole := singleRecord(data)
	if !whole || len(data) == firstReadSize {
		// A call in fragments, larger than the buffer, not all there yet,
		// or followed by more: the general reader takes it from here.
		w.promote(rc, data, nil, nil)
		return
	}
	c := &w.call
	rc.fillCall(c)
	r := &w.reply
	send := s.dispatch(r, append(w.out[:0], 0, 0, 0, 0), msg, c)
	if cap(r.Body) <= DefaultKeep {
		w.out = r.Body[:0]
	}
	switch {
	case !send:
		// Silence, or a record that is not a call: its framing was
		// sound, so the connection stays (serveConn does the same).
		w.toTail(rc, false)
	case r.After != nil:
		// A change waiting for the disk: the reply is sent by a
		// goroutine of its own, so that the accepting goroutine does not
		// wait (and changes arriving on many new connections still reach
		// the disk together).
		s.replyLater(&fastResponder{w: w, rc: rc}, r.Body[RecordHeaderLen:], r.Tail, r.After, c)
	case len(r.Tail) > 0:
		// A cached DUMP: written by the connection's goroutine, which
		// may wait for a slow reader; this one may not.
		w.promote(rc, nil, append([]byte(nil), r.Body...), r.Tail)
	default:
		if err := rc.writeRecord(r.Body); err != nil {
			s.logStreamEnd(c, err)
			w.drop(rc)
			return
		}
		w.toTail(rc, false)
	}
}

// fastResponder sends the late reply of a first call.
type fastResponder struct {
	w  *worker
	rc *rawConn
}

// Respond writes reply (without its record mark) and leaves the
// connection to the tail. It runs on the goroutine replyLater started.
func (r *fastResponder) Respond(reply []byte) error {
	b := make([]byte, RecordHeaderLen, RecordHeaderLen+len(reply))
	if err := r.rc.writeRecord(append(b, reply...)); err != nil {
		r.w.drop(r.rc)
		return err
	}
	r.w.toTail(r.rc, false)
	// The tail may be asleep without a timeout: its queue changed.
	r.w.tail.signal()
	return nil
}

// writeRecord writes reply, whose first bytes are reserved for the
// record mark, in one non-blocking write.
func (rc *rawConn) writeRecord(reply []byte) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.closed {
		return net.ErrClosed
	}
	n, errno := rawWrite(rc.fd, MarkRecord(reply))
	if errno == unix.EAGAIN || (errno == 0 && n < len(reply)) {
		// A fresh socket's buffer holds any reply that is not a DUMP;
		// a client whose socket does not take one is not waited for.
		return errors.New("reply did not fit the socket buffer")
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// singleRecord returns the message of b if b is exactly one record of one
// (last) fragment.
func singleRecord(b []byte) ([]byte, bool) {
	if len(b) < RecordHeaderLen {
		return nil, false
	}
	mark := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if mark&lastFragment == 0 || int(mark&^lastFragment) != len(b)-RecordHeaderLen {
		return nil, false
	}
	return b[RecordHeaderLen:], true
}

// drop closes and untracks a connection it owns.
func (w *worker) drop(rc *rawConn) {
	if w.s.Observer != nil {
		w.s.Observer.ConnClosed(rc.netid)
	}
	w.s.untrack(rc, &rc.state)
}

// discard drops a connection the loop owns and gives it back to the
// loop's free list: only on the loop's goroutine, and only for a
// connection that never left the loop (see recycle).
func (w *worker) discard(rc *rawConn) {
	w.drop(rc)
	w.tail.recycle(rc)
}

// toTail leaves a connection it owns to wait for its client, unless the
// server is stopping; first says its first call has not come yet.
func (w *worker) toTail(rc *rawConn, first bool) {
	rc.state.lastActive.Store(time.Now().UnixNano())
	rc.state.busy.Store(false)
	if w.s.isClosing() || !w.tail.add(rc, first) {
		w.drop(rc)
	}
}

// promote hands a connection it owns to a goroutine of its own, served by
// serveConn: pending is what was read of it so far, reply and tail a reply
// still to be written.
func (w *worker) promote(rc *rawConn, pending, reply, tail []byte) {
	rc.mu.Lock()
	err := rc.promoteLocked(pending)
	rc.mu.Unlock()
	if err != nil {
		w.drop(rc)
		return
	}
	s := w.s
	go func() {
		if reply != nil {
			// Written as serveConn writes, with its write deadline.
			_ = rc.SetWriteDeadline(time.Now().Add(s.ReadTimeout)) // promoted: it cannot fail
			if err := writeReply(rc, reply, tail); err != nil {
				w.drop(rc)
				return
			}
		}
		rc.state.lastActive.Store(time.Now().UnixNano())
		rc.state.busy.Store(false)
		s.serveConn(rc, &rc.state, rc.netid)
	}()
}

// rawConn is an accepted connection that the fast path serves by its
// descriptor until it is promoted: then an *os.File, registered with the
// runtime's poller, carries it, with deadlines, and rawConn is the net.Conn
// serveConn sees.
type rawConn struct {
	fd     int
	netid  string
	remote netip.AddrPort
	local  netip.AddrPort

	mu sync.Mutex
	// uid is the caller's uid on the local socket once asked (see
	// peerUID), uidUnasked before.
	uid    int
	closed bool
	file   atomic.Pointer[os.File] // set once promoted
	// pending is what the fast path read before promoting; Read returns
	// it first. Only the connection's goroutine touches it.
	pending []byte
	// tail is the tail that watches the connection, nil outside it.
	tail *tail
	id   uint64
	// first, while the connection is in the tail, says that its first
	// call has not come yet.
	first bool
	// state is the connection as the server tracks it: kept here so
	// that a connection costs one allocation.
	state connState
}

// fillCall makes c the Call of a message on this connection, before
// decoding; in place, since a Call is large and the loop's stack is kept
// small.
func (rc *rawConn) fillCall(c *Call) {
	*c = Call{Netid: rc.netid, uid: -1, Remote: rc.remote, Local: rc.local}
	if rc.netid == NetidLocal {
		c.peer = rc
	}
	c.unmapDualStack()
}

// uidUnasked marks a local connection whose caller's uid has not been
// asked for yet.
const uidUnasked = -2

// peerUID returns the uid of the process at the other end of a local
// connection (SO_PEERCRED), asking the kernel the first time only; -1 when
// it does not say, or when the connection was closed before anyone
// asked: its descriptor may be another connection's by then.
func (rc *rawConn) peerUID() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.uid != uidUnasked {
		return rc.uid
	}
	rc.uid = -1
	if !rc.closed {
		rc.uid = socketPeerUID(rc.fd)
	}
	return rc.uid
}

// promoteLocked registers the descriptor with the runtime's poller, with
// rc.mu held. TCP gets no-delay as the net package would set it: a
// connection that carries more than one call may pipeline them.
func (rc *rawConn) promoteLocked(pending []byte) error {
	if rc.closed {
		return net.ErrClosed
	}
	if rc.netid != NetidLocal {
		_ = unix.SetsockoptInt(rc.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // an optimisation only
	}
	f := os.NewFile(uintptr(rc.fd), "")
	if f == nil {
		return errors.New("bad descriptor")
	}
	if len(pending) > 0 {
		rc.pending = append([]byte(nil), pending...)
	}
	rc.file.Store(f)
	return nil
}

func (rc *rawConn) Read(b []byte) (int, error) {
	if len(rc.pending) > 0 {
		n := copy(b, rc.pending)
		rc.pending = rc.pending[n:]
		return n, nil
	}
	f := rc.file.Load()
	if f == nil {
		return 0, net.ErrClosed
	}
	n, err := f.Read(b)
	return n, fileErr(err)
}

func (rc *rawConn) Write(b []byte) (int, error) {
	f := rc.file.Load()
	if f == nil {
		return 0, net.ErrClosed
	}
	n, err := f.Write(b)
	return n, fileErr(err)
}

// fileErr gives an os.File's errors the meaning a net.Conn's have for
// serveConn: a closed connection is net.ErrClosed.
func fileErr(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writeBuffers writes reply and then tail in one writev where the
// socket takes them, waiting for it in the runtime's poller otherwise, as
// a net.Conn writes net.Buffers: two writes would cost a system call and a
// segment more for every DUMP.
func (rc *rawConn) writeBuffers(reply, tail []byte) error {
	f := rc.file.Load()
	if f == nil {
		return net.ErrClosed
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	iov := [][]byte{reply, tail}
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		for len(iov) > 0 {
			n, err := unix.Writev(int(fd), iov)
			if err == unix.EAGAIN {
				return false
			}
			if err != nil {
				werr = err
				return true
			}
			for n > 0 && len(iov) > 0 {
				k := min(n, len(iov[0]))
				iov[0], n = iov[0][k:], n-k
				if len(iov[0]) == 0 {
					iov = iov[1:]
				}
			}
		}
		return true
	})
	if err != nil {
		return fileErr(err)
	}
	return werr
}

// Close closes the connection wherever it is: in the tail it also tells
// the tail, which untracks it.
func (rc *rawConn) Close() error {
	rc.mu.Lock()
	if rc.closed {
		rc.mu.Unlock()
		return nil
	}
	rc.closed = true
	t := rc.tail
	rc.tail = nil
	var err error
	if f := rc.file.Load(); f != nil {
		err = f.Close()
	} else {
		err = unix.Close(rc.fd)
	}
	rc.mu.Unlock()
	if t != nil {
		t.closedOutside(rc)
	}
	return err
}

// SetDeadline and the others act on a promoted connection. One in the
// tail has no deadline to move: Shutdown's deadline in the past closes it.
func (rc *rawConn) SetDeadline(d time.Time) error {
	if f := rc.file.Load(); f != nil {
		return f.SetDeadline(d)
	}
	if !d.After(pastDeadline) {
		rc.mu.Lock()
		inTail := rc.tail != nil
		rc.mu.Unlock()
		if inTail {
			rc.Close()
		}
	}
	return nil
}

func (rc *rawConn) SetReadDeadline(d time.Time) error {
	if f := rc.file.Load(); f != nil {
		return f.SetReadDeadline(d)
	}
	return nil
}

func (rc *rawConn) SetWriteDeadline(d time.Time) error {
	if f := rc.file.Load(); f != nil {
		return f.SetWriteDeadline(d)
	}
	return nil
}

func (rc *rawConn) LocalAddr() net.Addr {
	if rc.netid == NetidLocal {
		return &net.UnixAddr{Net: "unix"}
	}
	local := rc.local
	if !local.IsValid() {
		// Accepted on a wildcard address: asked only now.
		var sa syscall.RawSockaddrInet6
		n := uint32(syscall.SizeofSockaddrInet6)
		if _, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(rc.fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n))); errno == 0 {
			local = sockaddrAddrPort(&sa, n)
		}
	}
	return net.TCPAddrFromAddrPort(local)
}

func (rc *rawConn) RemoteAddr() net.Addr {
	if rc.netid == NetidLocal {
		return &net.UnixAddr{Net: "unix"}
	}
	return net.TCPAddrFromAddrPort(rc.remote)
}

// tail watches answered connections for their client's next move. Lock
// order: tail.mu before rawConn.mu.
type tail struct {
	s        *Server
	ep       int
	wake     int             // eventfd: closedOutside, stop, a late reply
	listener syscall.RawConn // accepted from on the loop's own thread
	acceptor *acceptor
	backoff  time.Duration
	batch    []accepted
	acceptFn func(fd uintptr) // acceptAll, bound once
	aerr     error            // what acceptAll stopped at
	// peer is what accept4 fills, on the loop's goroutine.
	peer syscall.RawSockaddrInet6
	// events and in are the loop's epoll and read buffers: kept off its
	// stack, which then stays small enough never to be grown (growing a
	// stack walks the binary's tables, which a daemon trimmed for idle
	// memory would fault back in).
	events [128]unix.EpollEvent
	in     [firstReadSize]byte
	// free holds connections the loop closed and untracked, which no
	// one else can still hold, for the next ones it accepts: a storm of
	// connections then allocates nothing, and the collector stays idle.
	free []*rawConn

	mu      sync.Mutex
	conns   map[uint64]*rawConn
	queue   []tailDeadline // in the order added, so in deadline order
	closed  []*rawConn     // closed by someone else, to untrack
	stopped bool
	nextID  uint64
}

// queueSlack is how many entries of connections gone the deadline queue
// may hold beyond twice those in the tail before it is compacted: each
// compaction scans the queue, at most three lookups for each connection
// added.
const queueSlack = 64

type tailDeadline struct {
	id uint64
	at int64 // UnixNano
}

// IDs of the epoll events that are not connections.
const (
	wakeID   = 0 // the eventfd
	listenID = 1 // the listener
)

// listenerCheck is how often an idle tail checks that its listener is
// still open: the daemon closes a listener of an address that went away
// itself, which an epoll set does not report.
const listenerCheck = 10 * time.Second

func newTail(s *Server) (*tail, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, wakeID)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &tail{s: s, ep: ep, wake: wake, conns: make(map[uint64]*rawConn), nextID: listenID + 1,
		batch: make([]accepted, 0, 64)}, nil
}

func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// add puts a connection in the tail. It reports false if the tail is
// stopping or the descriptor cannot be watched; the caller still owns the
// connection then.
func (t *tail) add(rc *rawConn, first bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	id := t.nextID
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP}
	setEventID(&ev, id)
	rc.mu.Lock()
	if rc.closed {
		rc.mu.Unlock()
		return false
	}
	if err := rawEpollCtl(t.ep, unix.EPOLL_CTL_ADD, rc.fd, &ev); err != nil {
		rc.mu.Unlock()
		return false
	}
	rc.tail, rc.id, rc.first = t, id, first
	rc.mu.Unlock()
	t.nextID++
	t.conns[id] = rc
	if len(t.queue) > 2*len(t.conns)+queueSlack {
		// Connections leave long before their idle deadline: drop the
		// queue's entries of those gone, so that it stays the size of
		// what the tail holds. In place: a storm's queue then stops
		// growing once it holds twice the storm's connections, instead
		// of leaving a trail of outgrown arrays to the collector.
		live := t.queue[:0]
		for _, d := range t.queue {
			if t.conns[d.id] != nil {
				live = append(live, d)
			}
		}
		clear(t.queue[len(live):])
		t.queue = live
	}
	t.queue = append(t.queue, tailDeadline{id: id, at: time.Now().Add(t.s.IdleTimeout).UnixNano()})
	return true
}

// closedOutside is told of a connection in the tail that Close closed
// (an eviction, Shutdown): the tail untracks it.
func (t *tail) closedOutside(rc *rawConn) {
	t.mu.Lock()
	t.closed = append(t.closed, rc)
	t.mu.Unlock()
	t.signal()
}

func (t *tail) signal() {
	one := [8]byte{7: 1}
	// A full eventfd counter already says "wake up".
	_, _ = unix.Write(t.wake, one[:])
}

// stop makes the loop close every connection in the tail and return.
func (t *tail) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.signal()
}

// close releases the epoll set and the eventfd once the loop has returned.
func (t *tail) close() {
	unix.Close(t.ep)
	unix.Close(t.wake)
}

// yieldEvery is how long the event loop runs before it yields on its own.
const yieldEvery = 2 * time.Millisecond

// run is the event loop. It returns once stopped and empty.
func (t *tail) run() {
	presizeStack()
	defer shortenSlice()()
	w := &t.acceptor.worker
	events := t.events[:]
	buf := t.in[:]
	lastYield := time.Now()
	delisted := false
	for {
		timeout := int(listenerCheck / time.Millisecond)
		t.mu.Lock()
		if len(t.queue) > 0 {
			ms := (t.queue[0].at-time.Now().UnixNano())/int64(time.Millisecond) + 1
			timeout = int(min(max(ms, 0), int64(timeout)))
		}
		t.mu.Unlock()
		n, err := unix.EpollWait(t.ep, events, timeout)
		if n == 0 && err == nil && t.listener.Control(func(uintptr) {}) != nil {
			t.stop() // closed by its owner
		}
		if err != nil && err != unix.EINTR {
			t.s.Log.Error("tail of stream connections: epoll_wait", zap.Error(err))
			n = 0
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 && time.Since(lastYield) > yieldEvery {
			// Under a storm epoll_wait never blocks, and the runtime
			// would interrupt the loop with a signal every 10 ms, each
			// looking its stopping point up in the binary's tables.
			runtime.Gosched()
			lastYield = time.Now()
		}
		for i := range max(n, 0) {
			id := eventID(&events[i])
			switch id {
			case wakeID:
				var b [8]byte
				_, _ = unix.Read(t.wake, b[:]) // only emptied: the wake-up is what counts
			case listenID:
				if !t.stopping() && !t.acceptBatch() {
					t.stop()
				}
			default:
				t.ready(w, id, buf)
			}
		}
		t.expire(w)
		if t.stopping() && !delisted {
			// Level-triggered, a listener with connections waiting
			// would wake the loop at once, every time.
			// A listener closed meanwhile has left the set already.
			_ = t.listener.Control(func(fd uintptr) { _ = unix.EpollCtl(t.ep, unix.EPOLL_CTL_DEL, int(fd), nil) })
			delisted = true
		}
		if t.reap(w) {
			return
		}
	}
}

func (t *tail) stopping() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopped
}

// ready handles a connection whose client did something: closed it, as
// nearly all do, or sent a call.
func (t *tail) ready(w *worker, id uint64, buf []byte) {
	rc := t.owned(id)
	if rc == nil {
		return
	}
	n, errno := rawRead(rc.fd, buf)
	if errno == unix.EAGAIN || errno == unix.EINTR {
		rc.mu.Unlock()
		return
	}
	// The tail gives the connection up: closed, or a call to serve.
	rc.tail = nil
	closed := errno != 0 || n == 0
	if closed {
		rc.closed = true
		rawClose(rc.fd) // which also takes it out of the epoll set
	} else {
		// Failing, it would only wake the loop once more for nothing.
		_ = rawEpollCtl(t.ep, unix.EPOLL_CTL_DEL, rc.fd, nil)
	}
	rc.mu.Unlock()
	t.mu.Lock()
	delete(t.conns, id)
	t.mu.Unlock()
	switch {
	case closed:
		w.discard(rc)
	case rc.first:
		rc.state.busy.Store(true)
		w.answer(rc, buf[:n])
	default:
		rc.state.busy.Store(true)
		w.promote(rc, buf[:n], nil, nil)
	}
}

// owned returns connection id locked, or nil when the tail no longer
// holds it (Close has told the tail, which reaps it, or another event
// took it first).
func (t *tail) owned(id uint64) *rawConn {
	t.mu.Lock()
	rc := t.conns[id]
	t.mu.Unlock()
	if rc == nil {
		return nil
	}
	rc.mu.Lock()
	if rc.closed || rc.tail != t || rc.id != id {
		rc.mu.Unlock()
		return nil
	}
	return rc
}

// release takes connection id out of the tail and closes it, unless
// someone else did.
func (t *tail) release(w *worker, id uint64) {
	rc := t.owned(id)
	if rc == nil {
		return
	}
	rc.tail = nil
	rc.closed = true
	rawClose(rc.fd)
	rc.mu.Unlock()
	t.mu.Lock()
	delete(t.conns, id)
	t.mu.Unlock()
	w.discard(rc)
}

// expire closes the connections idle for IdleTimeout.
func (t *tail) expire(w *worker) {
	now := time.Now().UnixNano()
	for {
		t.mu.Lock()
		if len(t.queue) == 0 || t.queue[0].at > now {
			if len(t.queue) == 0 && cap(t.queue) > 1024 {
				t.queue = nil // let a storm's backing array go
			}
			t.mu.Unlock()
			return
		}
		id := t.queue[0].id
		t.queue = t.queue[1:]
		t.mu.Unlock()
		t.release(w, id)
	}
}

// reap untracks the connections closed from outside and, once the tail
// is stopping, closes all the others; it reports whether the tail is done.
func (t *tail) reap(w *worker) bool {
	t.mu.Lock()
	closed := t.closed
	t.closed = nil
	var reaped []*rawConn
	for _, rc := range closed {
		if t.conns[rc.id] == rc {
			delete(t.conns, rc.id)
			reaped = append(reaped, rc)
		}
	}
	stopped := t.stopped
	var all []uint64
	if stopped {
		for id := range t.conns {
			all = append(all, id)
		}
	}
	t.mu.Unlock()
	for _, rc := range reaped {
		w.discard(rc)
	}
	for _, id := range all {
		t.release(w, id)
	}
	// A connection closed from outside just now is still to be reaped:
	// its closedOutside wakes the tail again.
	t.mu.Lock()
	defer t.mu.Unlock()
	return stopped && len(t.conns) == 0
}

// deferAcceptSeconds is how long a TCP connection may wait for its first
// call before it is accepted all the same (TCP_DEFER_ACCEPT): every RPC
// client speaks first, so a connection is normally accepted with its call
// already there; one that stays silent is accepted after this and then
// meets IdleTimeout.
const deferAcceptSeconds = 5

// ListenStream listens on a TCP address as a portmapper should for the
// fast accept path: a connection is accepted once its first call has
// arrived (TCP_DEFER_ACCEPT), so that the accepting loop reads it at once
// instead of finding nothing and coming back. Keep-alive probes are off
// for any connection accepted through the net package instead (IdleTimeout
// closes dead connections).
//
// The socket is plain TCP, as rpcbind's is. Go (1.24 on) makes a
// listener MPTCP by default where the kernel has it; its clients here do
// not speak it (mount.nfs, the kernel, libtirpc), and every connection
// then falls back through MPTCP's accept: 2-5 per cent of a storm's
// calls/s on this project's 2-core machine.
func ListenStream(network, addr string) (net.Listener, error) {
	lc := net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSeconds)
			})
			if err == nil {
				err = serr
			}
			return os.NewSyscallError("setsockopt TCP_DEFER_ACCEPT", err)
		},
	}
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), network, addr)
}
