package rpc

import (
	"errors"
	"net"
	"net/netip"

	"go.uber.org/zap"
)

// maxDatagram is the largest UDP payload; every reader owns one buffer of
// this size and one for its reply, so a packet's memory is never shared
// with the next read.
const maxDatagram = 65535

// ServeUDP serves calls arriving on a datagram socket whose transport is
// netid ("udp" or "udp6") until the socket is closed or Shutdown is called.
// When the socket is bound to a wildcard address, replies leave from the
// address each call arrived at, as clients expect them to.
func (s *Server) ServeUDP(conn *net.UDPConn, netid string) error {
	s.init()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.packets[conn] = struct{}{}
	s.wg.Add(s.UDPReaders)
	s.mu.Unlock()

	sock := &udpSocket{conn: conn, netid: netid}
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	sock.port = local.Port()
	if local.Addr().IsUnspecified() {
		if err := enablePacketInfo(conn, local.Addr().Is6() && !local.Addr().Is4In6()); err != nil {
			s.Log.Warn("cannot learn datagram destination addresses; replies may leave from another address",
				zap.String("netid", netid), zap.Error(err))
		} else {
			sock.pktinfo = true
		}
	}
	errc := make(chan error, s.UDPReaders)
	for range s.UDPReaders {
		go func() {
			defer s.wg.Done()
			errc <- s.readUDP(sock)
		}()
	}
	err := <-errc
	for range s.UDPReaders - 1 {
		<-errc
	}
	return err
}

type udpSocket struct {
	conn    *net.UDPConn
	netid   string
	port    uint16
	pktinfo bool
}

func (s *Server) readUDP(sock *udpSocket) error {
	buf := make([]byte, maxDatagram)
	out := make([]byte, 0, maxDatagram)
	oob := make([]byte, 128)
	woob := make([]byte, 0, 64)
	var c Call
	for {
		n, oobn, _, from, err := sock.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			s.Log.Warn("datagram read failed", zap.String("netid", sock.netid), zap.Error(err))
			continue
		}
		c = Call{Netid: sock.netid, Remote: from, UID: -1, udp: sock}
		if sock.pktinfo {
			var dst netip.Addr
			dst, c.replyFrom, c.ifindex = parsePacketInfo(oob[:oobn])
			if dst.IsValid() {
				c.Local = netip.AddrPortFrom(dst, sock.port)
			}
		}
		c.reqLen = n
		c.unmapDualStack()
		reply, ok := s.dispatch(out[:0], buf[:n], &c)
		if !ok {
			continue
		}
		if len(c.Tail) > 0 {
			// A datagram is one buffer; the tail fits the reader's
			// own, or the reply is refused as too large anyway.
			if len(reply)+len(c.Tail) > cap(out) {
				s.Counters.TooLarge.Add(1)
				s.observeReject(RefusedTooLarge)
				continue
			}
			reply = append(reply, c.Tail...)
		}
		s.sendUDP(sock, reply, n, from, c.replyFrom, c.ifindex, woob)
	}
}

// sendUDP sends a reply to a request of reqLen bytes, unless the guards
// against reflection refuse it.
func (s *Server) sendUDP(sock *udpSocket, reply []byte, reqLen int, to netip.AddrPort, from netip.Addr, ifindex int, oob []byte) {
	if ok, why := s.allowReply(to, reqLen, len(reply)); !ok {
		if ce := s.Log.Check(zap.InfoLevel, why); ce != nil {
			ce.Write(zap.String("netid", sock.netid), zap.Stringer("remote", to),
				zap.Int("request", reqLen), zap.Int("reply", len(reply)))
		}
		return
	}
	if sock.pktinfo && from.IsValid() {
		oob = appendPacketInfo(oob[:0], from, ifindex)
	} else {
		oob = oob[:0]
	}
	if _, _, err := sock.conn.WriteMsgUDPAddrPort(reply, oob, to); err != nil {
		if ce := s.Log.Check(zap.InfoLevel, "datagram reply failed"); ce != nil {
			ce.Write(zap.String("netid", sock.netid), zap.Stringer("remote", to), zap.Error(err))
		}
	}
}

// udpResponder sends a late reply from the address the call arrived at.
type udpResponder struct {
	srv     *Server
	sock    *udpSocket
	to      netip.AddrPort
	from    netip.Addr
	ifindex int
	reqLen  int
}

func (r *udpResponder) Respond(reply []byte) error {
	r.srv.sendUDP(r.sock, reply, r.reqLen, r.to, r.from, r.ifindex, make([]byte, 0, 64))
	return nil
}

// Defer returns a Responder for answering this call after its handler has
// returned ErrNoReply, or nil on a stream, where late replies are not
// supported.
func (c *Call) Defer(s *Server) Responder {
	if c.udp == nil {
		return nil
	}
	return &udpResponder{srv: s, sock: c.udp, to: c.Remote, from: c.replyFrom, ifindex: c.ifindex, reqLen: c.reqLen}
}
