package rpc

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"go.uber.org/zap"
)

// maxDatagram is the largest UDP payload: every reply is given this much
// room before it is built.
const maxDatagram = 65535

// maxCallDatagram is how much of a datagram a call is read from, as
// rpcbind's receive buffer (RPC_MAXDATASIZE): the kernel drops the rest,
// and a call cut short gets GARBAGE_ARGS, as from rpcbind. No portmapper
// call needs more.
const maxCallDatagram = 9000

// ServeUDP serves calls arriving on a datagram socket whose transport is
// netid ("udp" or "udp6") until the socket is closed or Shutdown is called.
// When the socket is bound to a wildcard address, replies leave from the
// address each call arrived at, as clients expect them to.
//
// One goroutine reads the socket, many datagrams per system call, and
// answers them together; a reply that must wait (Reply.After) waits on a
// goroutine of its own.
func (s *Server) ServeUDP(conn *net.UDPConn, netid string) error {
	s.init()
	s.mu.Lock()
	if s.isClosing() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.packets[conn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	sock := &udpSocket{srv: s, conn: conn, netid: netid}
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { sock.family, ferr = socketFamily(fd) }); err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	sock.port = local.Port()
	// Every socket learns the interface of each datagram, which tells a
	// local caller from a remote one; a wildcard socket also replies from
	// the address each call arrived at.
	if err := enablePacketInfo(conn, sock.family == syscall.AF_INET6); err != nil {
		if local.Addr().IsUnspecified() {
			s.Log.Warn("cannot learn datagram destination addresses; replies may leave from another address",
				zap.String("netid", netid), zap.Error(err))
		}
	} else {
		sock.ifinfo = true
		sock.pktinfo = local.Addr().IsUnspecified()
	}
	return s.readUDP(newUDPReader(sock, raw))
}

type udpSocket struct {
	srv     *Server
	conn    *net.UDPConn
	netid   string
	family  int // AF_INET or AF_INET6
	port    uint16
	pktinfo bool // replies leave from the address each call arrived at
	ifinfo  bool // the kernel reports each datagram's interface
}

// udpReader is the one reader of a datagram socket. Its system calls go
// through the socket's RawConn, so that an empty socket parks the goroutine
// in the runtime's poller like any other read; the functions handed to
// RawConn are made once, so that a read allocates nothing.
type udpReader struct {
	sock  *udpSocket
	raw   syscall.RawConn
	batch *udpBatch
	to    [udpBatchSize]netip.AddrPort // where each queued reply goes, for logs
	reply Reply                        // the reply being built, in outBuf

	n, first        int
	errno           syscall.Errno
	readFn, writeFn func(fd uintptr) bool
}

func newUDPReader(sock *udpSocket, raw syscall.RawConn) *udpReader {
	r := &udpReader{sock: sock, raw: raw, batch: newUDPBatch()}
	r.readFn = func(fd uintptr) bool {
		r.n, r.errno = r.batch.recvmmsg(fd)
		return r.errno != syscall.EAGAIN
	}
	r.writeFn = func(fd uintptr) bool {
		r.n, r.errno = r.batch.sendmmsg(fd, r.first)
		return r.errno != syscall.EAGAIN
	}
	return r
}

// recv waits for datagrams and returns how many the batch holds.
func (r *udpReader) recv() (int, error) {
	if err := r.raw.Read(r.readFn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	return r.n, nil
}

func (s *Server) readUDP(r *udpReader) error {
	var c Call
	for {
		n, err := r.recv()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			s.Log.Warn("datagram read failed", zap.String("netid", r.sock.netid), zap.Error(err))
			continue
		}
		for i := range n {
			if !r.batch.room() {
				s.flushUDP(r)
			}
			s.serveDatagram(r, i, &c)
		}
		s.flushUDP(r)
	}
}

// serveDatagram dispatches the i-th datagram of the batch and queues its
// reply, unless it gets none.
func (s *Server) serveDatagram(r *udpReader, i int, c *Call) {
	b, sock := r.batch, r.sock
	msg, from, oob := b.datagram(i)
	*c = Call{Netid: sock.netid, Remote: from, uid: -1, udp: sock, reqLen: len(msg)}
	if sock.ifinfo {
		dst, replyFrom, ifindex := parsePacketInfo(oob)
		c.ifindex = ifindex
		if sock.pktinfo {
			c.replyFrom = replyFrom
			if dst.IsValid() {
				c.Local = netip.AddrPortFrom(dst, sock.port)
			}
		}
	}
	c.unmapDualStack()
	start := len(b.outBuf)
	w := &r.reply
	if !s.dispatch(w, b.outBuf[start:start], msg, c) {
		return
	}
	if w.After != nil {
		// A change on its way to the disk: the datagrams read with this
		// one are not held behind it.
		s.replyLater(c.Defer(), w.Body, w.Tail, w.After, c)
		return
	}
	reply := w.Body
	size := len(reply) + len(w.Tail)
	if size <= maxDatagram {
		// Otherwise no datagram carries it (and the room left for it is
		// exceeded): the guards below refuse it whole.
		reply = append(reply, w.Tail...)
	}
	switch s.replyAllowed(sock, from, c.ifindex, len(msg), size) {
	case replyDrop:
		return
	case replySystemErr:
		reply = AppendAccepted(b.outBuf[start:start], c.XID, SystemErr)
	}
	// room() left maxDatagram bytes, so the reply is still in outBuf.
	b.outBuf = b.outBuf[:start+len(reply)]
	r.to[b.queued] = from
	b.queue(reply, from, c.replyFrom, c.ifindex, sock.family)
}

// flushUDP sends the queued replies. A reply the kernel refuses (no route,
// a firewall) is logged and skipped; the others still go.
func (s *Server) flushUDP(r *udpReader) {
	b := r.batch
	for r.first = 0; r.first < b.queued; {
		if err := r.raw.Write(r.writeFn); err != nil {
			break // the socket is closing
		}
		if r.errno != 0 {
			if ce := s.Log.Check(zap.InfoLevel, "datagram reply failed"); ce != nil {
				ce.Write(zap.String("netid", r.sock.netid), zap.Stringer("remote", r.to[r.first]), zap.Error(r.errno))
			}
			r.first++
			continue
		}
		r.first += r.n
	}
	b.reset()
}

// replyAllowed applies the guards against reflection to a reply of
// replyLen bytes to a request of reqLen, logging (sampled) what it refuses.
func (s *Server) replyAllowed(sock *udpSocket, to netip.AddrPort, ifindex, reqLen, replyLen int) replyVerdict {
	v, why := s.allowReply(to, ifindex, reqLen, replyLen)
	if v != replySend {
		if ce := s.Log.Check(zap.InfoLevel, why); ce != nil {
			ce.Write(zap.String("netid", sock.netid), zap.Stringer("remote", to),
				zap.Int("request", reqLen), zap.Int("reply", replyLen))
		}
	}
	return v
}

// sendUDP sends one late reply to a request of reqLen bytes, unless the
// guards against reflection refuse it.
func (s *Server) sendUDP(sock *udpSocket, reply []byte, reqLen int, to netip.AddrPort, from netip.Addr, ifindex int) {
	switch s.replyAllowed(sock, to, ifindex, reqLen, len(reply)) {
	case replyDrop:
		return
	case replySystemErr:
		reply = AppendAccepted(nil, binary.BigEndian.Uint32(reply), SystemErr)
	}
	var oob []byte
	if sock.pktinfo && from.IsValid() {
		oob = appendPacketInfo(make([]byte, 0, sendOOBSize), from, ifindex)
	}
	if _, _, err := sock.conn.WriteMsgUDPAddrPort(reply, oob, to); err != nil {
		if ce := s.Log.Check(zap.InfoLevel, "datagram reply failed"); ce != nil {
			ce.Write(zap.String("netid", sock.netid), zap.Stringer("remote", to), zap.Error(err))
		}
	}
}

// udpResponder sends a late reply from the address the call arrived at.
type udpResponder struct {
	sock    *udpSocket
	to      netip.AddrPort
	from    netip.Addr
	ifindex int
	reqLen  int
}

func (r *udpResponder) Respond(reply []byte) error {
	r.sock.srv.sendUDP(r.sock, reply, r.reqLen, r.to, r.from, r.ifindex)
	return nil
}

// Defer returns a Responder for answering this call after its handler has
// returned ErrNoReply, or nil on a stream, where late replies are not
// supported.
func (c *Call) Defer() Responder {
	if c.udp == nil {
		return nil
	}
	return &udpResponder{sock: c.udp, to: c.Remote, from: c.replyFrom, ifindex: c.ifindex, reqLen: c.reqLen}
}
