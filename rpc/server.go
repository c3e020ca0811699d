package rpc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/xdr"
)

// Defaults for the Server's limits.
const (
	// DefaultMaxRecord is the largest portmapper call: rpcbind caps a
	// record at RPC_MAXDATASIZE (9,000 bytes), what a CALLIT with its
	// largest arguments needs, and closes the connection past it.
	DefaultMaxRecord = 9000
	// DefaultMaxPartial caps the bytes held for unfinished records across
	// all connections: about 29 records of the largest size at once, which
	// a legitimate client holds unfinished only while its segments travel.
	DefaultMaxPartial  = 256 << 10
	DefaultMaxUDPReply = 8800 // UDPMSGSIZE: what libtirpc clients receive
	DefaultIdleTimeout = 2 * time.Minute
	DefaultReadTimeout = 10 * time.Second
	DefaultMaxConns    = 1024
)

// Server serves RPC calls on datagram and stream sockets. Its exported
// fields are read when serving starts and must not change afterwards.
type Server struct {
	Handler Handler
	Log     *zap.Logger
	// LogCalls logs every call at info level (the logger samples).
	LogCalls bool
	// MaxRecord bounds one call on a stream, all fragments together; a
	// connection that sends more is closed.
	MaxRecord int
	// MaxPartial bounds the bytes held for unfinished records across all
	// connections; past it the record that started first is evicted and
	// its connection closed.
	MaxPartial int
	// MaxUDPReply bounds a datagram reply; a larger one is not sent and
	// the client is expected to retry over a stream.
	MaxUDPReply int
	// IdleTimeout closes a connection that sends nothing for this long;
	// ReadTimeout closes one that starts a record and does not finish it.
	IdleTimeout time.Duration
	ReadTimeout time.Duration
	// MaxConns bounds the open stream connections of all listeners.
	MaxConns int
	// MaxConnsPerHost bounds the connections from one remote address;
	// local and loopback callers are exempt. 0 means no bound.
	MaxConnsPerHost int
	// MaxAmplification, when positive, drops a datagram reply to a
	// non-loopback source that is more than this many times larger than
	// the request, whatever the procedure.
	MaxAmplification float64
	// ReplyLimiter, if set, rate-limits datagram replies per non-loopback
	// source.
	ReplyLimiter *SourceLimiter
	// Counters count refusals by reason.
	Counters Counters
	// Observer, if set, is told about every call and connection.
	Observer Observer

	mu sync.Mutex
	// closing is set under mu, so that nothing is tracked after Shutdown
	// has walked the tables, and read without it on every stream call.
	closing   atomic.Bool
	listeners map[net.Listener]struct{}
	packets   map[net.PacketConn]struct{}
	conns     map[net.Conn]*connState
	perHost   map[netip.Addr]int
	hosts     hostAddrs
	budget    recordBudget
	wg        sync.WaitGroup
	once      sync.Once
}

// pastDeadline is a deadline that has passed: setting it wakes blocked
// reads and writes at once.
var pastDeadline = time.Unix(1, 0)

// ErrServerClosed is returned by the Serve methods after Shutdown.
var ErrServerClosed = errors.New("rpc: server closed")

func (s *Server) init() {
	s.once.Do(func() {
		if s.Log == nil {
			s.Log = zap.NewNop()
		}
		if s.MaxRecord <= 0 {
			s.MaxRecord = DefaultMaxRecord
		}
		if s.MaxPartial <= 0 {
			s.MaxPartial = DefaultMaxPartial
		}
		s.budget.max = s.MaxPartial
		s.budget.onEvict = func() {
			s.Counters.RecordsEvicted.Add(1)
			s.observeReject(RefusedEvicted)
		}
		if s.MaxUDPReply <= 0 {
			s.MaxUDPReply = DefaultMaxUDPReply
		}
		if s.IdleTimeout <= 0 {
			s.IdleTimeout = DefaultIdleTimeout
		}
		if s.ReadTimeout <= 0 {
			s.ReadTimeout = DefaultReadTimeout
		}
		if s.MaxConns <= 0 {
			s.MaxConns = DefaultMaxConns
		}
		s.listeners = make(map[net.Listener]struct{})
		s.packets = make(map[net.PacketConn]struct{})
		s.conns = make(map[net.Conn]*connState)
		s.perHost = make(map[netip.Addr]int)
	})
}

// Shutdown stops the server: it closes every socket, which ends blocked
// reads at once, and waits for the goroutines serving them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for p := range s.packets {
		p.Close()
	}
	for c := range s.conns {
		// A deadline in the past wakes the reader, or a writer blocked on
		// a client that does not read; the goroutine then closes its
		// connection itself.
		c.SetDeadline(pastDeadline)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) isClosing() bool { return s.closing.Load() }

// dispatch decodes one message and builds its reply in w, whose Body
// starts with out: what the handler wrote, or else the reply its error
// asks for, made whole each time. It reports false when nothing is to be
// sent (Body is then out): a message whose header does not parse gets no
// reply, since any answer to garbage can be used to amplify, and is marked
// in c as garbage. A reply with a wait (After) is the transport's to send
// once the wait returns (await): its outcome is not observed here.
func (s *Server) dispatch(w *Reply, out, msg []byte, c *Call) bool {
	var d xdr.Decoder
	d.Reset(msg)
	h, err := ParseCall(&d)
	if err != nil {
		if ce := s.Log.Check(zap.InfoLevel, "dropped undecodable message"); ce != nil {
			ce.Write(zap.String("netid", c.Netid), zap.Stringer("remote", c.Remote),
				zap.Int("bytes", len(msg)), zap.Error(err))
		}
		c.garbage = true
		s.Counters.Undecodable.Add(1)
		s.observeReject(RefusedUndecodable)
		*w = Reply{Body: out}
		return false
	}
	c.CallHeader = h
	if s.LogCalls {
		if ce := s.Log.Check(zap.InfoLevel, "call"); ce != nil {
			ce.Write(zap.Uint32("xid", h.XID), zap.Uint32("prog", h.Prog), zap.Uint32("vers", h.Vers),
				zap.Uint32("proc", h.Proc), zap.String("netid", c.Netid), zap.Stringer("remote", c.Remote))
		}
	}
	if h.RPCVers != Version {
		s.observeCall(c, OutcomeRPCMismatch)
		s.logRefused(c, "rpc version mismatch")
		*w = Reply{Body: AppendRPCMismatch(out, h.XID, Version, Version)}
		return true
	}
	c.padded = d.NonZeroPadding()
	switch h.Cred.Flavor {
	case AuthNone:
	case AuthSys:
		p, padded, err := parseAuthSys(h.Cred.Body)
		if err != nil {
			s.observeCall(c, OutcomeAuthError)
			s.logRefused(c, "bad AUTH_SYS credential")
			if c.padded {
				s.countPadding()
			}
			*w = Reply{Body: AppendAuthError(out, h.XID, AuthBadCred)}
			return true
		}
		c.padded = c.padded || padded
		c.authSys = p
		c.AuthSys = &c.authSys
	default:
		s.observeCall(c, OutcomeAuthError)
		s.logRefused(c, "unsupported credential flavour")
		if c.padded {
			s.countPadding()
		}
		*w = Reply{Body: AppendAuthError(out, h.XID, unsupportedFlavor(h.Cred.Flavor))}
		return true
	}
	c.Args = d.Rest()
	*w = Reply{Body: AppendSuccess(out, h.XID)}
	err = s.Handler.ServeRPC(w, c)
	if c.padded {
		s.countPadding()
	}
	if err != nil {
		body, send, outcome := s.errorReply(out, c, err)
		*w = Reply{Body: body}
		s.observeCall(c, outcome)
		return send
	}
	if w.After == nil {
		s.observeCall(c, OutcomeSuccess)
	}
	return true
}

// unsupportedFlavor is the AUTH_ERROR status rpcbind 1.2.6 (libtirpc's
// _authenticate) answers a credential flavour it does not serve with:
// AUTH_DH fails in libtirpc's DES stub and RPCSEC_GSS in its GSS code,
// which take any such credential as bad; every other flavour, AUTH_SHORT
// in a call included, is rejected. Clients print and retry on these.
func unsupportedFlavor(flavor uint32) AuthStat {
	switch flavor {
	case AuthDH:
		return AuthFailed
	case RPCSecGSS:
		return AuthBadCred
	}
	return AuthRejectedCred
}

// countPadding counts a call that carried padding that was not zero.
func (s *Server) countPadding() {
	s.Counters.NonZeroPadding.Add(1)
	if po, ok := s.Observer.(PaddingObserver); ok {
		po.NonZeroPadding()
	}
}

// replyLater sends the reply of a call that waits (Reply.After) on a
// goroutine of its own, once the wait returns, or SYSTEM_ERR if it fails:
// a datagram's, so that the calls read with it are not held behind it, or
// the fast accept path's, so that the accepting goroutine does not wait.
// msg is the reply message, without a record mark; it and tail are copied
// before the call's buffers are reused.
func (s *Server) replyLater(to Responder, msg, tail []byte, wait func() error, c *Call) {
	reply := make([]byte, 0, len(msg)+len(tail))
	reply = append(append(reply, msg...), tail...)
	xid, vers, proc, netid := c.XID, c.Vers, c.Proc, c.Netid
	s.wg.Add(1) // the reader's own count keeps the group open
	go func() {
		defer s.wg.Done()
		if !s.await(wait, vers, proc, netid) {
			reply = AppendAccepted(reply[:0], xid, SystemErr)
		}
		_ = to.Respond(reply) // a responder drops what it cannot send itself
	}()
}

// await runs the wait of a reply that has one (Reply.After) and observes
// the call's outcome, which dispatch left to it. It reports false when the
// wait failed: the caller is to be answered SYSTEM_ERR instead, since a
// change that did not reach the disk must not be believed (the wait has
// logged why).
func (s *Server) await(wait func() error, vers, proc uint32, netid string) bool {
	ok := wait() == nil
	if s.Observer != nil {
		outcome := OutcomeSuccess
		if !ok {
			outcome = OutcomeSystemErr
		}
		s.Observer.Call(vers, proc, netid, outcome)
	}
	return ok
}

// errorReply builds the reply a handler's error asks for.
func (s *Server) errorReply(out []byte, c *Call, err error) ([]byte, bool, Outcome) {
	h := &c.CallHeader
	// errors.Is, not ==: handlers wrap the sentinels with context.
	switch {
	case errors.Is(err, ErrNoReply):
		return out, false, OutcomeNoReply
	case errors.Is(err, ErrProgUnavail):
		return AppendAccepted(out, h.XID, ProgUnavail), true, OutcomeProgUnavail
	case errors.Is(err, ErrProcUnavail):
		return AppendAccepted(out, h.XID, ProcUnavail), true, OutcomeProcUnavail
	case errors.Is(err, ErrGarbageArgs):
		s.logRefused(c, "garbage arguments")
		return AppendAccepted(out, h.XID, GarbageArgs), true, OutcomeGarbageArgs
	case errors.Is(err, ErrSystem):
		// A deliberate SYSTEM_ERR (an INDIRECT that is not forwarded, a
		// change that could not be persisted, already logged): any host
		// can cause the first, so it is logged sampled, not as a warning.
		s.logRefused(c, "system error")
		return AppendAccepted(out, h.XID, SystemErr), true, OutcomeSystemErr
	}
	var pm *ProgMismatchError
	if errors.As(err, &pm) {
		return AppendProgMismatch(out, h.XID, pm.Low, pm.High), true, OutcomeProgMismatch
	}
	var ae AuthErr
	if errors.As(err, &ae) {
		s.logRefused(c, "refused by access control")
		return AppendAuthError(out, h.XID, AuthStat(ae)), true, OutcomeAuthError
	}
	s.Log.Warn("call failed", zap.Uint32("prog", h.Prog), zap.Uint32("vers", h.Vers),
		zap.Uint32("proc", h.Proc), zap.Error(err))
	return AppendAccepted(out, h.XID, SystemErr), true, OutcomeSystemErr
}

func (s *Server) logRefused(c *Call, why string) {
	if ce := s.Log.Check(zap.InfoLevel, why); ce != nil {
		ce.Write(zap.String("netid", c.Netid), zap.Stringer("remote", c.Remote),
			zap.Uint32("prog", c.Prog), zap.Uint32("vers", c.Vers), zap.Uint32("proc", c.Proc))
	}
}
