package rpc

import (
	"errors"
	"net/netip"

	"github.com/portmapd/portmapd/xdr"
)

// Transport names (netids, RFC 5665) of the transports a Server serves.
const (
	NetidUDP   = "udp"
	NetidTCP   = "tcp"
	NetidUDP6  = "udp6"
	NetidTCP6  = "tcp6"
	NetidLocal = "local"
)

// Call is one decoded call as a handler sees it. Everything in it, Args
// included, is valid only until the handler returns.
type Call struct {
	CallHeader
	// Args are the call's arguments, still XDR-encoded.
	Args []byte
	// Netid names the transport the call arrived on.
	Netid string
	// Remote is the caller's address; it is invalid on the local socket.
	Remote netip.AddrPort
	// Local is the address the call arrived at; it is invalid on the local
	// socket, when the kernel did not say, and on a stream accepted on a
	// wildcard address by the fast path (asking would cost each
	// connection a system call, for a field nothing served reads).
	Local netip.AddrPort
	// uid is the caller's uid on the local socket, -1 elsewhere (see UID);
	// peer, when set, is the local connection to ask it of.
	uid  int
	peer uidAsker
	// AuthSys is the parsed credential when Cred.Flavor is AUTH_SYS.
	AuthSys *AuthSysParams

	authSys AuthSysParams
	udp     *udpSocket
	// garbage is set when the message was not a decodable call.
	garbage bool
	// padded is set when the call carried padding that was not zero.
	padded bool
	// reqLen is the size of the datagram that carried the call.
	reqLen int
	// replyFrom is the address a datagram reply leaves from; it differs
	// from Local when the call was broadcast.
	replyFrom netip.Addr
	ifindex   int
}

// uidAsker is a local connection that asks the kernel for its caller's
// uid only when a procedure needs it.
type uidAsker interface{ peerUID() int }

// UID returns the caller's uid on the local socket (SO_PEERCRED), and -1
// elsewhere or when the kernel does not say. A connection served by the
// fast path asks the kernel here, the first time a procedure needs it
// (SET and UNSET record and check owners), rather than when it is
// accepted: a lookup, most of what the local socket carries, then costs
// no system call for it. The answer is the same either way, since the
// kernel keeps the credentials the caller connected with.
func (c *Call) UID() int {
	if c.peer != nil {
		c.uid, c.peer = c.peer.peerUID(), nil
	}
	return c.uid
}

// SetUID sets the caller's uid, for a call that reaches a handler by
// another way than this package's transports (tests, say).
func (c *Call) SetUID(uid int) {
	c.uid, c.peer = uid, nil
}

// NotePadding records that the decoder of the call's arguments read
// padding that was not zero, so that the server counts the call; the
// arguments are served as usual, as libtirpc serves them.
func (c *Call) NotePadding(d *xdr.Decoder) {
	c.padded = c.padded || d.NonZeroPadding()
}

// Padded reports whether the call carried padding that was not zero.
func (c *Call) Padded() bool { return c.padded }

// Responder sends a complete reply message to a caller after its handler
// has returned. Implementations copy what they need.
type Responder interface {
	Respond(reply []byte) error
}

// Reply is what a handler writes for a call that is answered, in the
// manner of a ResponseWriter: the server builds a new one for each call,
// holding a SUCCESS reply header and nothing else, and sends what the
// handler left in it. Nothing of the reply is kept in the Call. It is
// written through a pointer rather than returned: a value this size is
// copied through memory at every call boundary (the Mux, HandlerFunc,
// wrappers), which doubled the cost of dispatching a GETPORT.
type Reply struct {
	// Body is the reply message: the SUCCESS header, to which the handler
	// appends the call's results.
	Body []byte
	// Tail, if set, is sent after Body without being copied into it: a
	// large reply that does not change between calls (DUMP) is written
	// straight from its cache. Its bytes must not change afterwards.
	Tail []byte
	// After, if set, runs before the reply is sent; if it fails, the
	// caller gets SYSTEM_ERR instead. A change that must reach the disk
	// first (warm start) waits in it. On a datagram socket it runs on a
	// goroutine of its own, so that the calls read with this one are not
	// held behind it; on a stream the calls already buffered behind it
	// are handled first, then the waits run in turn and the replies leave
	// in order (batch.go), so that pipelined changes share one write to
	// disk.
	After func() error
}

// Handler serves calls. ServeRPC appends the call's results to w.Body,
// which already holds a SUCCESS reply header, and may set w's Tail and
// After. An error instead makes the server answer as the error says (see
// the sentinel errors, ProgMismatchError and AuthErr, which may be
// wrapped), and nothing the handler wrote in w is sent; any other error is
// SYSTEM_ERR. w and c are valid only until ServeRPC returns.
//
// ErrNoReply answers with silence. A handler that answers later, after
// it has returned (a remote call forwarded to a service), takes a
// Responder with Call.Defer first and returns ErrNoReply: the server then
// sends nothing for the call, and the Responder is the only way its
// answer leaves.
type Handler interface {
	ServeRPC(w *Reply, c *Call) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w *Reply, c *Call) error

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(w *Reply, c *Call) error { return f(w, c) }

// Errors a Handler returns to choose the reply.
var (
	ErrNoReply     = errors.New("rpc: no reply")
	ErrProgUnavail = errors.New("rpc: program unavailable")
	ErrProcUnavail = errors.New("rpc: procedure unavailable")
	ErrGarbageArgs = errors.New("rpc: arguments do not decode")
	ErrSystem      = errors.New("rpc: system error")
	// ErrAuthTooWeak refuses a call from a caller not allowed to make it.
	ErrAuthTooWeak = AuthErr(AuthTooWeak)
)

// ProgMismatchError answers PROG_MISMATCH with the supported range.
type ProgMismatchError struct{ Low, High uint32 }

func (e *ProgMismatchError) Error() string { return "rpc: program version mismatch" }

// AuthErr is an error that answers AUTH_ERROR with its status.
type AuthErr AuthStat

func (e AuthErr) Error() string { return "rpc: authentication error" }

// unmapDualStack makes a call from an IPv4 address that arrived on a
// dual-stack IPv6 socket (systemd's BindIPv6Only=both) look as it would on
// an IPv4 socket: netid "udp" or "tcp" and a plain IPv4 address, so that
// lookups by the arrival transport and address merging stay right.
func (c *Call) unmapDualStack() {
	if !c.Remote.Addr().Is4In6() {
		return
	}
	switch c.Netid {
	case NetidUDP6:
		c.Netid = NetidUDP
	case NetidTCP6:
		c.Netid = NetidTCP
	default:
		return
	}
	c.Remote = netip.AddrPortFrom(c.Remote.Addr().Unmap(), c.Remote.Port())
	c.Local = netip.AddrPortFrom(c.Local.Addr().Unmap(), c.Local.Port())
}
