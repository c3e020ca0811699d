package rpc

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Guards against reflection: a portmapper answers small datagrams whose
// source address anyone can forge, so without limits it amplifies floods
// at third parties (a spoofed 80-byte DUMP returns up to 28 times more).
// Loopback sources are exempt: they cannot be forged from outside; so are
// programs of this host that call one of its own addresses (local.go).

// Counters count what the server refused to send or serve, by reason.
type Counters struct {
	Undecodable   atomic.Uint64 // messages that were not calls
	TooLarge      atomic.Uint64 // replies over MaxUDPReply
	Amplification atomic.Uint64 // replies over MaxAmplification × request
	RateLimited   atomic.Uint64 // replies over a source's rate
	ConnsRefused  atomic.Uint64 // connections over MaxConnsPerHost
	ConnsEvicted  atomic.Uint64 // idle connections closed for new ones
	// RecordsEvicted counts connections closed because their unfinished
	// record was the oldest when the cap on such bytes was reached.
	RecordsEvicted atomic.Uint64
	// NonZeroPadding counts calls served although their padding was not
	// zero (tolerated, as libtirpc tolerates it).
	NonZeroPadding atomic.Uint64
}

// isLoopback reports a source that cannot be spoofed from the network.
func isLoopback(a netip.Addr) bool { return a.Unmap().IsLoopback() }

// SourceLimiter is a token bucket per source: an IPv4 address (an
// IPv4-mapped one counts as its IPv4 address), or an IPv6 /64, which is
// what one host or site is given, so rotating addresses inside it buys a
// flooder nothing. It holds at most MaxSources buckets: when full, buckets
// that have refilled completely (the same as new ones) are swept out, at
// most once per refill period, so that a flood of forged sources costs
// neither memory nor a sweep per packet; until then new sources are
// refused.
type SourceLimiter struct {
	// Rate is the tokens added per second, Burst the bucket's size.
	Rate, Burst float64
	MaxSources  int
	// Now returns the time; tests replace it.
	Now func() time.Time

	mu        sync.Mutex
	buckets   map[netip.Prefix]bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// DefaultMaxSources is NewSourceLimiter's bound on tracked sources.
const DefaultMaxSources = 65536

// NewSourceLimiter returns a limiter of rate per second and burst.
func NewSourceLimiter(rate, burst float64) *SourceLimiter {
	return &SourceLimiter{Rate: rate, Burst: burst, MaxSources: DefaultMaxSources, Now: time.Now}
}

// Allow takes a token from a's bucket, reporting whether there was one.
func (l *SourceLimiter) Allow(a netip.Addr) bool {
	now := l.Now()
	k := sourceKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[k]
	if !ok {
		if l.buckets == nil {
			l.buckets = make(map[netip.Prefix]bucket)
		}
		if len(l.buckets) >= l.MaxSources && !l.sweep(now) {
			return false
		}
		b = bucket{tokens: l.Burst, last: now}
	}
	b = l.refill(b, now)
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.buckets[k] = b
	return allowed
}

// Len reports how many sources are tracked.
func (l *SourceLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *SourceLimiter) refill(b bucket, now time.Time) bucket {
	// A clock that steps back adds nothing rather than taking tokens.
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.Burst, b.tokens+d.Seconds()*l.Rate)
		b.last = now
	}
	return b
}

// sweep drops the buckets that have refilled, unless a sweep ran less than
// a refill period ago, and reports whether there is room now.
func (l *SourceLimiter) sweep(now time.Time) bool {
	period := time.Duration(l.Burst / l.Rate * float64(time.Second))
	if !l.lastSweep.IsZero() && now.Sub(l.lastSweep) < period {
		return false
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if l.refill(b, now).tokens >= l.Burst {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < l.MaxSources
}

// sourceKey is the bucket a source address counts against.
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// replyVerdict is what the datagram guards make of a reply.
type replyVerdict int

const (
	replySend replyVerdict = iota
	replyDrop
	// replySystemErr: too large for a datagram, to a local caller, who is
	// owed an answer: SYSTEM_ERR instead, as rpcbind answers.
	replySystemErr
)

// allowReply applies the datagram guards to a reply of replyLen bytes to a
// request of reqLen bytes from to, reported on interface ifindex (0 if
// unknown), counting what it refuses.
func (s *Server) allowReply(to netip.AddrPort, ifindex, reqLen, replyLen int) (replyVerdict, string) {
	if replyLen > s.MaxUDPReply {
		s.Counters.TooLarge.Add(1)
		s.observeReject(RefusedTooLarge)
		if s.hosts.localCaller(to.Addr(), ifindex) {
			return replySystemErr, "reply too large for a datagram; SYSTEM_ERR sent instead"
		}
		return replyDrop, "reply too large for a datagram; not sent"
	}
	if isLoopback(to.Addr()) {
		return replySend, ""
	}
	// Whether the caller is a program on this host that called one of its
	// own addresses is asked only when a guard would refuse the reply.
	if s.MaxAmplification > 0 && float64(replyLen) > s.MaxAmplification*float64(reqLen) {
		if s.hosts.localCaller(to.Addr(), ifindex) {
			return replySend, ""
		}
		s.Counters.Amplification.Add(1)
		s.observeReject(RefusedAmplification)
		return replyDrop, "reply to a non-local source larger than its request allows; not sent"
	}
	if s.ReplyLimiter != nil && !s.ReplyLimiter.Allow(to.Addr()) {
		if s.hosts.localCaller(to.Addr(), ifindex) {
			return replySend, ""
		}
		s.Counters.RateLimited.Add(1)
		s.observeReject(RefusedRateLimited)
		return replyDrop, "source over its reply rate; not sent"
	}
	return replySend, ""
}
