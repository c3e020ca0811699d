package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/portmapd/portmapd/rpc"
)

// The call machinery every RPC client of this module is built on: Client
// below, rpcinfo's libtirpc emulation (portmapd info), the load generator
// and the liveness checker. A call goes out as bytes the caller built
// (rpc.AppendCall and the arguments, after rpc.RecordHeaderLen bytes of
// room for a record mark, so that a stream sends it in one write without
// copying), and the reply comes back in the transport's own buffer, valid
// until the next call: a client in a loop allocates nothing per call.
// Which reply belongs to the call is the caller's to say (accept), since
// clients differ there: libtirpc skips what it cannot decode, a load
// generator treats anything out of order as an error.

// ErrSend wraps the error of a call that could not be sent, which
// libtirpc reports apart from one whose reply did not come
// (RPC_CANTSEND, RPC_CANTRECV).
var ErrSend = errors.New("send")

// Stream carries calls as records on a connected stream (TCP or a local
// socket), as libtirpc's clnt_vc does. The connection's deadline is the
// caller's to set.
type Stream struct {
	conn net.Conn
	rr   *rpc.RecordReader
}

// NewStream reads replies of at most maxReply bytes from conn.
func NewStream(conn net.Conn, maxReply int) *Stream {
	return &Stream{conn: conn, rr: rpc.NewRecordReader(conn, maxReply)}
}

// Conn returns the stream's connection.
func (s *Stream) Conn() net.Conn { return s.conn }

// RecordReader returns the reader of replies, for its limits.
func (s *Stream) RecordReader() *rpc.RecordReader { return s.rr }

// RoundTrip sends call (after its record-mark room) as one record and
// returns the first record accept takes; the ones it refuses are skipped.
func (s *Stream) RoundTrip(call []byte, accept func(reply []byte) bool) ([]byte, error) {
	if _, err := s.conn.Write(rpc.MarkRecord(call)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSend, err)
	}
	for {
		rec, err := s.rr.Next()
		if err != nil {
			return nil, err
		}
		if accept(rec) {
			return rec, nil
		}
	}
}

// Retry is a datagram call's schedule: how long it may take, and how long
// to wait for the reply before sending the call again.
type Retry struct {
	// Total bounds the whole call.
	Total time.Duration
	// Wait is the first interval before a retransmission, growing by
	// Grow (when above 1) up to MaxWait. A Wait of Total or more sends
	// the call once.
	Wait, MaxWait time.Duration
	Grow          int
	// StrayCosts is libtirpc's clnt_dg accounting: every wake-up without
	// the reply (a stray datagram, another call's reply) costs the whole
	// interval and sends the call again, so a flood of junk ends the call
	// early instead of prolonging it. Otherwise strays are read past
	// until the interval ends.
	StrayCosts bool
}

// Datagram carries calls in datagrams over UDP, retransmitting them on
// a Retry schedule, as libtirpc's clnt_dg does. Its socket may be
// connected or not, in which case a reply from any address
// counts, as in libtirpc.
type Datagram struct {
	conn *net.UDPConn
	to   netip.AddrPort
	in   []byte
}

// NewDatagram sends on conn to to (the zero AddrPort: conn is connected) and reads
// replies of at most maxReply bytes; a longer one is cut, as libtirpc
// cuts what does not fit its buffer.
func NewDatagram(conn *net.UDPConn, to netip.AddrPort, maxReply int) *Datagram {
	return &Datagram{conn: conn, to: to, in: make([]byte, maxReply)}
}

// Conn returns the datagram socket.
func (d *Datagram) Conn() *net.UDPConn { return d.conn }

// SetPeer moves an unconnected client to another address
// (CLSET_SVC_ADDR).
func (d *Datagram) SetPeer(to netip.AddrPort) { d.to = to }

// Peer is the address calls go to (invalid: the connected peer).
func (d *Datagram) Peer() netip.AddrPort { return d.to }

// RoundTrip sends call (after its record-mark room) on r's schedule and
// returns the first datagram accept takes. It gives up with
// os.ErrDeadlineExceeded when r.Total has passed, or with ctx's error
// when ctx ends first (a context that can end should also move the
// socket's deadline, which is what wakes a pending read).
func (d *Datagram) RoundTrip(ctx context.Context, call []byte, r Retry, accept func(reply []byte) bool) ([]byte, error) {
	msg := call[rpc.RecordHeaderLen:]
	budget, wait := r.Total, r.Wait
	if wait <= 0 {
		wait = budget
	}
	for budget > 0 {
		var err error
		if d.to.IsValid() {
			_, err = d.conn.WriteToUDPAddrPort(msg, d.to)
		} else {
			_, err = d.conn.Write(msg)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSend, err)
		}
		tv := min(budget, wait)
		d.conn.SetReadDeadline(time.Now().Add(tv))
		// A cancellation that came before the line above had its past
		// deadline overwritten; look again.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for {
			n, _, err := d.conn.ReadFromUDPAddrPort(d.in)
			if err != nil {
				if !isTimeout(err) {
					return nil, err
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				break
			}
			if accept(d.in[:n]) {
				return d.in[:n], nil
			}
			if r.StrayCosts {
				break
			}
		}
		budget -= tv
		if r.Grow > 1 {
			wait = min(wait*time.Duration(r.Grow), max(r.MaxWait, r.Wait))
		}
	}
	return nil, os.ErrDeadlineExceeded
}

// ReplyTo is the accept of a client that takes the reply with xid and
// skips anything else.
func ReplyTo(xid uint32) func([]byte) bool {
	return func(b []byte) bool { return len(b) >= 4 && replyXID(b) == xid }
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
