package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// DefaultSocket is the local socket's path.
const DefaultSocket = "/run/rpcbind.sock"

// DefaultAbstractSocket is the local socket's name in the abstract
// namespace, which libtirpc 1.3.5+ and Linux 5.19+ try first: it belongs
// to the network namespace, so it reaches this namespace's portmapper
// even where /run is shared with another one. For Dial, "@" stands for
// the leading NUL byte.
const DefaultAbstractSocket = "@" + DefaultSocket

// maxReply bounds a reply the client accepts: a DUMP of 100,000 entries
// fits, a hostile server's 2 GB record does not. A datagram holds at most
// maxDatagram.
const (
	maxReply    = 16 << 20
	maxDatagram = 65536
)

// Client is a connection to a portmapper. It is safe for concurrent use;
// calls are made one at a time.
type Client struct {
	// Timeout bounds each call when the context has no deadline.
	Timeout time.Duration

	mu     sync.Mutex
	conn   net.Conn
	stream *Stream   // nil over UDP
	dgram  *Datagram // nil over a stream
	xid    uint32
	buf    []byte
	// broken is the error that cut a stream in the middle of a call.
	// The rest of a late reply may still arrive, or half of one have
	// been read, so the stream cannot be read as records any more.
	broken error
}

// ErrBroken wraps the error of a call after which a stream connection
// is no longer usable; dial again.
var ErrBroken = errors.New("connection unusable after an earlier call failed")

// Dial connects to the portmapper at address over network: "unix" with a
// socket path, or "tcp"/"udp" with host:port.
func Dial(ctx context.Context, network, address string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c := &Client{Timeout: 5 * time.Second, conn: conn, xid: rand.Uint32()}
	if uc, ok := conn.(*net.UDPConn); ok {
		c.dgram = NewDatagram(uc, netip.AddrPort{}, maxDatagram)
	} else {
		c.stream = NewStream(conn, maxReply)
	}
	return c, nil
}

// DialLocal connects to the local portmapper as libtirpc 1.3.5 does: the
// abstract socket if something listens there, else the socket path, else
// TCP to 127.0.0.1:111.
func DialLocal(ctx context.Context) (*Client, error) {
	var errs []error
	for _, a := range [][2]string{{"unix", DefaultAbstractSocket}, {"unix", DefaultSocket}, {"tcp", "127.0.0.1:111"}} {
		c, err := Dial(ctx, a[0], a[1])
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no local portmapper: %w", errors.Join(errs...))
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call makes one call to the portmapper (program 100000) and hands the
// results to decode. A reply that is not SUCCESS is a *rpc.ReplyError.
func (c *Client) Call(ctx context.Context, vers, proc uint32, args []byte, decode func(*xdr.Decoder) error) error {
	return c.CallProgram(ctx, pmap.Program, vers, proc, args, decode)
}

// CallProgram makes one call to any program over the connection.
func (c *Client) CallProgram(ctx context.Context, prog, vers, proc uint32, args []byte, decode func(*xdr.Decoder) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	c.xid++
	xid := c.xid
	deadline, fromCtx := ctx.Deadline()
	if !fromCtx {
		deadline = time.Now().Add(c.Timeout)
	}
	c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	msg := append(c.buf[:0], make([]byte, rpc.RecordHeaderLen)...) // the record mark's room
	msg = rpc.AppendCall(msg, xid, prog, vers, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
	msg = append(msg, args...)
	c.buf = msg
	var reply []byte
	var err error
	if c.stream != nil {
		reply, err = c.stream.RoundTrip(msg, ReplyTo(xid))
	} else {
		// Over UDP the call is sent again at a growing interval until
		// the deadline or until ctx is done.
		reply, err = c.dgram.RoundTrip(ctx, msg, Retry{Total: time.Until(deadline),
			Wait: 250 * time.Millisecond, MaxWait: 2 * time.Second, Grow: 2}, ReplyTo(xid))
	}
	if err != nil {
		if c.stream != nil {
			c.broken = err
			c.conn.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The socket's deadline is the context's, and may pass a moment
		// before the context says so.
		var ne net.Error
		if fromCtx && errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return err
	}
	d := xdr.NewDecoder(reply)
	if _, err := rpc.ParseReply(d); err != nil {
		return err
	}
	if decode == nil {
		return nil
	}
	if err := decode(d); err != nil {
		return fmt.Errorf("decode results of procedure %d: %w", proc, err)
	}
	return nil
}

func replyXID(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
