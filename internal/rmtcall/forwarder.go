package rmtcall

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Defaults of Config.
const (
	// DefaultMaxInFlight is rpcbind's NFORWARD.
	DefaultMaxInFlight = 64
	// DefaultTimeout frees a forward whose service has not answered. The
	// services are on this host and answer in microseconds; rpcbind keeps a
	// slot for 300 seconds, long enough for a silent service to hold the
	// whole table. libtirpc's rpc_broadcast retransmits after 4 seconds,
	// so a retransmission usually still finds its call in flight and is
	// not forwarded twice.
	DefaultTimeout = 5 * time.Second
	// DefaultRate and DefaultBurst: a broadcast from one client costs two
	// calls per interface (PMAP v2 and RPCBIND v3) each round, and NIS
	// clients rebind every few seconds; twenty at once and ten a second
	// serve them while holding a spoofed flood from one source to a
	// trickle.
	DefaultRate  = 10
	DefaultBurst = 20
	// DefaultMaxSources bounds the rate limiter's buckets.
	DefaultMaxSources = 4096
	// DefaultMaxReplyRatio bounds a reply to another host at twice the size
	// of its request. The envelope of a remote-call reply (header, the
	// merged address, the results' length) is never more than the
	// request's, and a NULL call over IPv6 with the longest address comes
	// to 1.6 times its request; twice leaves room for small results, such
	// as those of the discovery calls (NULL, YPPROC_DOMAIN), and keeps the
	// reflection factor far below the 7 to 28 of a DUMP.
	DefaultMaxReplyRatio = 2
)

// maxDatagram is the largest UDP payload a forwarding socket reads.
const maxDatagram = 65535

// Config sets the Forwarder's limits; zero fields take the defaults.
type Config struct {
	// MaxInFlight bounds the calls waiting for their service's reply; when
	// the table is full the oldest call is dropped to make room.
	MaxInFlight int
	// Timeout is how long a call waits for its reply.
	Timeout time.Duration
	// Rate and Burst are each source's token bucket (see rpc.SourceLimiter).
	// Callers on the loopback address are not limited: they can call the
	// services directly.
	Rate  float64
	Burst int
	// MaxSources bounds the sources the rate limiter tracks.
	MaxSources int
	// MaxReplyRatio: a reply to a caller that is not on the loopback
	// address is dropped when it is larger than this multiple of the
	// caller's request.
	MaxReplyRatio float64
	// Now is the rate limiter's clock; tests replace it.
	Now func() time.Time
	// Observer, if set, is told of every call as it enters and leaves the
	// table and of every call dropped, for metrics.
	Observer Observer
}

// Observer learns what the Forwarder does; *metrics.Metrics is one. Its
// methods are called with the table locked and must be cheap.
type Observer interface {
	// ForwardStarted and ForwardDone bracket each call's time in the
	// table, however it leaves: answered, evicted, expired or closed.
	ForwardStarted()
	ForwardDone()
	// Reject reports a call dropped: rpc.RefusedForwardRateLimited,
	// rpc.RefusedForwardsFull or rpc.RefusedForwardExpired.
	Reject(reason rpc.Reason)
}

// nopObserver is the Observer of a Config without one.
type nopObserver struct{}

func (nopObserver) ForwardStarted()   {}
func (nopObserver) ForwardDone()      {}
func (nopObserver) Reject(rpc.Reason) {}

func (c *Config) fill() {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.MaxSources <= 0 {
		c.MaxSources = DefaultMaxSources
	}
	if c.MaxReplyRatio <= 0 {
		c.MaxReplyRatio = DefaultMaxReplyRatio
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

// Request is one remote call to forward.
type Request struct {
	// Caller and XID identify the caller's call; Version (2, 3 or 4) and
	// Proc (CALLIT or INDIRECT) are the portmapper procedure it called.
	Caller  netip.AddrPort
	XID     uint32
	Version uint32
	Proc    uint32
	// AuthSys is the caller's AUTH_SYS credential, passed on; nil sends
	// AUTH_NONE.
	AuthSys *rpc.AuthSysParams
	// Size is the length of the caller's request, which bounds the reply
	// to a caller that is not local.
	Size int
	// Call is what to forward, and to where.
	Call pmap.RemoteCall
	// Reply sends the answer to the caller.
	Reply rpc.Responder
}

// Counters are what the Forwarder has done since it started.
type Counters struct {
	Forwarded    uint64 // calls sent to a service
	Replied      uint64 // results relayed to a caller
	ErrorReplies uint64 // services' error replies (SYSTEM_ERR to INDIRECT callers)
	Duplicates   uint64 // retransmissions of a call in flight, not sent again
	RateLimited  uint64 // calls refused by the caller's token bucket
	Evicted      uint64 // calls dropped from a full table
	Expired      uint64 // calls whose service did not answer in time
	TooLarge     uint64 // replies dropped as larger than allowed
	Stray        uint64 // datagrams on a forwarding socket that matched no call
	SendFailed   uint64 // calls that could not be sent
	InFlight     int    // calls waiting for their reply now
}

// Forwarder forwards remote calls over one UDP socket per address family,
// bound to an ephemeral port of the loopback address, and matches the
// replies that come back to the calls by xid. It implements
// pmap.Forwarder.
type Forwarder struct {
	cfg     Config
	log     *zap.Logger
	limiter *rpc.SourceLimiter
	v4, v6  *net.UDPConn
	bufs    sync.Pool
	wg      sync.WaitGroup

	mu     sync.Mutex
	byXID  map[uint32]*entry
	byCall map[callKey]*entry
	// head is the oldest call in flight, tail the newest: every call has
	// the same timeout, so this is also the order in which they expire.
	head, tail *entry
	inFlight   int
	timer      *time.Timer
	armed      bool
	closed     bool
	rng        *rand.ChaCha8

	forwarded, replied, errorReplies, duplicates, rateLimited atomic.Uint64
	evicted, expired, tooLarge, stray, sendFailed             atomic.Uint64
}

// callKey is what makes a retransmission the same call, as rpcbind's
// forward_register compares: caller address, caller xid, portmapper
// version and procedure.
type callKey struct {
	caller        netip.AddrPort
	xid           uint32
	version, proc uint32
}

type entry struct {
	key      callKey
	xid      uint32 // of the forwarded call
	target   netip.AddrPort
	reply    rpc.Responder
	uaddr    string
	port     uint32
	indirect bool
	local    bool
	reqSize  int
	deadline time.Time

	prev, next *entry
}

// New opens the forwarding sockets and starts reading replies. An IPv6
// socket that cannot be opened (IPv6 disabled) leaves calls over udp6
// unforwarded, as rpcbind without a udp6 forwarding socket.
func New(cfg Config, log *zap.Logger) (*Forwarder, error) {
	cfg.fill()
	if log == nil {
		log = zap.NewNop()
	}
	var seed [32]byte
	crand.Read(seed[:])
	f := &Forwarder{
		cfg:     cfg,
		log:     log,
		limiter: &rpc.SourceLimiter{Rate: cfg.Rate, Burst: float64(cfg.Burst), MaxSources: cfg.MaxSources, Now: cfg.Now},
		byXID:   make(map[uint32]*entry, cfg.MaxInFlight),
		byCall:  make(map[callKey]*entry, cfg.MaxInFlight),
		// xids come from a CSPRNG so that nobody who sees one forward can
		// predict the next and answer it in the service's place.
		rng: rand.NewChaCha8(seed),
	}
	f.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	f.timer = time.AfterFunc(time.Hour, f.expire)
	f.timer.Stop()
	var err error
	if f.v4, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		return nil, fmt.Errorf("remote calls: forwarding socket on 127.0.0.1: %w", err)
	}
	if f.v6, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		log.Warn("remote calls over udp6 will not be forwarded: no IPv6 loopback socket", zap.Error(err))
		f.v6 = nil
	}
	for _, c := range []*net.UDPConn{f.v4, f.v6} {
		if c != nil {
			f.wg.Add(1)
			go f.read(c)
		}
	}
	return f, nil
}

// Close closes the forwarding sockets and forgets every call in flight.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.timer.Stop()
	for f.head != nil {
		f.remove(f.head)
	}
	f.mu.Unlock()
	for _, c := range []*net.UDPConn{f.v4, f.v6} {
		if c != nil {
			c.Close()
		}
	}
	f.wg.Wait()
	return nil
}

// Addrs returns the forwarding sockets' addresses (the IPv6 one invalid
// when there is none): services see forwarded calls come from there.
func (f *Forwarder) Addrs() (v4, v6 netip.AddrPort) {
	v4 = f.v4.LocalAddr().(*net.UDPAddr).AddrPort()
	if f.v6 != nil {
		v6 = f.v6.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return v4, v6
}

// Counters reports what the forwarder has done.
func (f *Forwarder) Counters() Counters {
	f.mu.Lock()
	n := f.inFlight
	f.mu.Unlock()
	return Counters{
		Forwarded:    f.forwarded.Load(),
		Replied:      f.replied.Load(),
		ErrorReplies: f.errorReplies.Load(),
		Duplicates:   f.duplicates.Load(),
		RateLimited:  f.rateLimited.Load(),
		Evicted:      f.evicted.Load(),
		Expired:      f.expired.Load(),
		TooLarge:     f.tooLarge.Load(),
		Stray:        f.stray.Load(),
		SendFailed:   f.sendFailed.Load(),
		InFlight:     n,
	}
}

// Sources reports how many sources the rate limiter tracks.
func (f *Forwarder) Sources() int { return f.limiter.Len() }

// Forward implements pmap.Forwarder: it sends r on for the datagram call
// c and answers c's caller when the service replies.
func (f *Forwarder) Forward(c *rpc.Call, r pmap.RemoteCall) error {
	reply := c.Defer()
	if reply == nil {
		return rpc.ErrNoReply // a stream: rpcbind forwards datagrams only
	}
	return f.Send(&Request{
		Caller:  c.Remote,
		XID:     c.XID,
		Version: c.Vers,
		Proc:    c.Proc,
		AuthSys: c.AuthSys,
		Size:    callSize(c),
		Call:    r,
		Reply:   reply,
	})
}

// callSize is the length of c's message: the header up to the verifier,
// then the arguments.
func callSize(c *rpc.Call) int {
	padded := func(n int) int { return n + xdr.Pad(n) }
	return 6*4 + 8 + padded(len(c.Cred.Body)) + 8 + padded(len(c.Verf.Body)) + len(c.Args)
}

// Send forwards req. It returns nil when the call went out, rpc.ErrNoReply
// when it was dropped on purpose (over the caller's rate, or a
// retransmission of a call in flight) and rpc.ErrSystem, which INDIRECT
// reports, when it cannot be sent.
func (f *Forwarder) Send(req *Request) error {
	conn := f.v4
	if !req.Call.Target.Addr().Is4() {
		conn = f.v6
	}
	if conn == nil {
		return rpc.ErrSystem
	}
	caller := req.Caller.Addr().Unmap()
	local := caller.IsLoopback()
	if !local && !f.limiter.Allow(caller) {
		f.rateLimited.Add(1)
		f.cfg.Observer.Reject(rpc.RefusedForwardRateLimited)
		if ce := f.log.Check(zap.InfoLevel, "remote call over its source's rate; dropped"); ce != nil {
			ce.Write(zap.Stringer("remote", req.Caller))
		}
		return rpc.ErrNoReply
	}
	key := callKey{caller: req.Caller, xid: req.XID, version: req.Version, proc: req.Proc}

	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return rpc.ErrSystem
	}
	if f.byCall[key] != nil {
		f.mu.Unlock()
		f.duplicates.Add(1)
		return rpc.ErrNoReply
	}
	evicted := f.inFlight >= f.cfg.MaxInFlight
	if evicted {
		f.remove(f.head)
		f.evicted.Add(1)
		f.cfg.Observer.Reject(rpc.RefusedForwardsFull)
	}
	e := &entry{
		key:      key,
		xid:      f.newXID(),
		target:   req.Call.Target,
		reply:    req.Reply,
		uaddr:    string(req.Call.Uaddr),
		port:     req.Call.Port,
		indirect: req.Call.Indirect,
		local:    local,
		reqSize:  req.Size,
		deadline: time.Now().Add(f.cfg.Timeout),
	}
	f.insert(e)
	xid, inFlight := e.xid, f.inFlight
	f.mu.Unlock()
	if evicted {
		if ce := f.log.Check(zap.InfoLevel, "remote-call table full; dropped the oldest call in flight"); ce != nil {
			ce.Write(zap.Int("in_flight", inFlight), zap.Int("max", f.cfg.MaxInFlight))
		}
	}

	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	msg := appendForward((*bp)[:0], xid, req)
	*bp = msg[:0]
	if _, err := conn.WriteToUDPAddrPort(msg, req.Call.Target); err != nil {
		f.mu.Lock()
		if f.byXID[xid] == e {
			f.remove(e)
		}
		f.mu.Unlock()
		f.sendFailed.Add(1)
		if ce := f.log.Check(zap.InfoLevel, "cannot forward a remote call"); ce != nil {
			ce.Write(zap.Stringer("service", req.Call.Target), zap.Error(err))
		}
		return rpc.ErrSystem
	}
	f.forwarded.Add(1)
	if ce := f.log.Check(zap.DebugLevel, "forwarded a remote call"); ce != nil {
		ce.Write(zap.Stringer("remote", req.Caller), zap.Uint32("prog", req.Call.Prog),
			zap.Uint32("vers", req.Call.Vers), zap.Uint32("proc", req.Call.Proc),
			zap.Stringer("service", req.Call.Target), zap.Int("in_flight", inFlight))
	}
	return nil
}

// InFlight reports how many calls wait for their reply.
func (f *Forwarder) InFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight
}

// appendForward encodes the call to the service: a fresh xid, the
// caller's procedure and arguments, and its credential rebuilt from the
// parsed one, so that only well-formed AUTH_SYS bytes are passed on. As
// rpcbind (authunix_create) does, the stamp is the current time.
func appendForward(b []byte, xid uint32, req *Request) []byte {
	cred := rpc.OpaqueAuth{Flavor: rpc.AuthNone}
	var body [rpc.MaxAuthBytes]byte
	if req.AuthSys != nil {
		p := *req.AuthSys
		p.Stamp = uint32(time.Now().Unix())
		cred = rpc.OpaqueAuth{Flavor: rpc.AuthSys, Body: rpc.AppendAuthSys(body[:0], &p)}
	}
	b = rpc.AppendCall(b, xid, req.Call.Prog, req.Call.Vers, req.Call.Proc, cred)
	// The arguments go out as they came, padded as rpcbind's xdr_opaque
	// pads them: they are the procedure's own XDR, not a counted opaque.
	return xdr.AppendFixedOpaque(b, req.Call.Args)
}

// newXID picks an xid no call in flight uses, never 0. f.mu is held.
func (f *Forwarder) newXID() uint32 {
	for {
		x := uint32(f.rng.Uint64())
		if x != 0 && f.byXID[x] == nil {
			return x
		}
	}
}

// insert adds e as the newest call and arms the timer. f.mu is held.
func (f *Forwarder) insert(e *entry) {
	f.byXID[e.xid] = e
	f.byCall[e.key] = e
	e.prev = f.tail
	if f.tail != nil {
		f.tail.next = e
	} else {
		f.head = e
	}
	f.tail = e
	f.inFlight++
	f.cfg.Observer.ForwardStarted()
	if !f.armed {
		f.armed = true
		f.timer.Reset(time.Until(e.deadline))
	}
}

// remove forgets e. f.mu is held.
func (f *Forwarder) remove(e *entry) {
	delete(f.byXID, e.xid)
	delete(f.byCall, e.key)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		f.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		f.tail = e.prev
	}
	e.prev, e.next = nil, nil
	f.inFlight--
	f.cfg.Observer.ForwardDone()
}

// expire runs on the timer: it frees the calls whose time is up, so that
// a silent service holds memory only for Timeout whether or not more
// calls arrive, and arms the timer for the next one.
func (f *Forwarder) expire() {
	now := time.Now()
	f.mu.Lock()
	n := 0
	for f.head != nil && !f.head.deadline.After(now) {
		f.remove(f.head)
		f.cfg.Observer.Reject(rpc.RefusedForwardExpired)
		n++
	}
	if f.head != nil && !f.closed {
		f.timer.Reset(f.head.deadline.Sub(now))
	} else {
		f.armed = false
	}
	inFlight := f.inFlight
	f.expired.Add(uint64(n))
	f.mu.Unlock()
	if n > 0 {
		if ce := f.log.Check(zap.DebugLevel, "remote calls timed out"); ce != nil {
			ce.Write(zap.Int("expired", n), zap.Int("in_flight", inFlight))
		}
	}
}

// read receives the services' replies on one forwarding socket. The
// buffers belong to this goroutine: a reply is relayed before the next
// read.
func (f *Forwarder) read(conn *net.UDPConn) {
	defer f.wg.Done()
	buf := make([]byte, maxDatagram)
	out := make([]byte, 0, maxDatagram+512)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if ce := f.log.Check(zap.InfoLevel, "forwarding socket read failed"); ce != nil {
				ce.Write(zap.Error(err))
			}
			continue
		}
		f.relay(out[:0], buf[:n], from)
	}
}

// relay answers the caller of the call that msg replies to. As rpcbind's
// handle_reply: a message that is not a reply is dropped; an error reply
// becomes SYSTEM_ERR for INDIRECT and silence for CALLIT and BCAST; the
// results of a successful one go back with the service's address (v3, v4)
// or port (v2).
func (f *Forwarder) relay(out, msg []byte, from netip.AddrPort) {
	var d xdr.Decoder
	d.Reset(msg)
	xid, perr := rpc.ParseReply(&d)
	f.mu.Lock()
	e := f.byXID[xid]
	// Only the service itself may answer: any local process can send to
	// this socket, and one that is not the service must neither answer a
	// caller nor cancel its call.
	if e == nil || from.Addr().Unmap() != e.target.Addr().Unmap() || from.Port() != e.target.Port() {
		f.mu.Unlock()
		f.stray.Add(1)
		return
	}
	f.remove(e)
	f.mu.Unlock()

	var re *rpc.ReplyError
	switch {
	case errors.As(perr, &re):
		f.errorReplies.Add(1)
		if e.indirect {
			f.respond(e, rpc.AppendAccepted(out, e.key.xid, rpc.SystemErr))
		}
		return
	case perr != nil:
		f.stray.Add(1)
		return
	}
	out = rpc.AppendSuccess(out, e.key.xid)
	if e.key.version == pmap.VersPMAP {
		out = pmap.AppendPortCallResult(out, &pmap.PortCallResult{Port: e.port, Results: d.Rest()})
	} else {
		out = pmap.AppendRmtcallResult(out, &pmap.RmtcallResult{Addr: e.uaddr, Results: d.Rest()})
	}
	if !e.local && float64(len(out)) > f.cfg.MaxReplyRatio*float64(e.reqSize) {
		f.tooLarge.Add(1)
		if ce := f.log.Check(zap.InfoLevel, "remote-call reply too large for a caller that is not local; dropped"); ce != nil {
			ce.Write(zap.Stringer("remote", e.key.caller), zap.Int("reply_bytes", len(out)),
				zap.Int("request_bytes", e.reqSize))
		}
		return
	}
	f.replied.Add(1)
	f.respond(e, out)
}

func (f *Forwarder) respond(e *entry, reply []byte) {
	if err := e.reply.Respond(reply); err != nil {
		if ce := f.log.Check(zap.InfoLevel, "cannot answer a remote call"); ce != nil {
			ce.Write(zap.Stringer("remote", e.key.caller), zap.Error(err))
		}
	}
}
