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
// Loopback sources are exempt: they cannot be forged from outside.

// Counters count what the server refused to send or serve, by reason.
type Counters struct {
	Undecodable   atomic.Uint64 // messages that were not calls
	TooLarge      atomic.Uint64 // replies over MaxUDPReply
	Amplification atomic.Uint64 // replies over MaxAmplification × request
	RateLimited   atomic.Uint64 // replies over a source's rate
	ConnsRefused  atomic.Uint64 // connections over MaxConnsPerHost
	ConnsEvicted  atomic.Uint64 // idle connections closed for new ones
}

// isLoopback reports a source that cannot be spoofed from the network.
func isLoopback(a netip.Addr) bool { return a.Unmap().IsLoopback() }

// SourceLimiter is a token bucket per source address. It holds at most
// MaxSources buckets; when full, buckets idle for a full refill are
// forgotten, and if none is, the new source shares no bucket and is
// refused, so a flood of forged sources cannot grow memory.
type SourceLimiter struct {
	// Rate is the tokens added per second, Burst the bucket's size.
	Rate, Burst float64
	MaxSources  int
	// Now returns the time; tests replace it.
	Now func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewSourceLimiter returns a limiter of rate per second and burst.
func NewSourceLimiter(rate, burst float64) *SourceLimiter {
	return &SourceLimiter{Rate: rate, Burst: burst, MaxSources: 65536, Now: time.Now,
		buckets: make(map[netip.Addr]*bucket)}
}

// Allow takes a token from a's bucket, reporting whether there was one.
func (l *SourceLimiter) Allow(a netip.Addr) bool {
	now := l.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[a]
	if b == nil {
		if len(l.buckets) >= l.MaxSources && !l.sweep(now) {
			return false
		}
		b = &bucket{tokens: l.Burst, last: now}
		l.buckets[a] = b
	}
	b.tokens = min(l.Burst, b.tokens+now.Sub(b.last).Seconds()*l.Rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets buckets that have refilled completely, which are the same
// as new ones; it reports whether it made room.
func (l *SourceLimiter) sweep(now time.Time) bool {
	full := time.Duration(l.Burst / l.Rate * float64(time.Second))
	for a, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, a)
		}
	}
	return len(l.buckets) < l.MaxSources
}

// Len reports how many sources are tracked.
func (l *SourceLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// allowReply applies the datagram guards to a reply of replyLen bytes to a
// request of reqLen bytes from to, counting what it refuses.
func (s *Server) allowReply(to netip.AddrPort, reqLen, replyLen int) (ok bool, why string) {
	if replyLen > s.MaxUDPReply {
		s.Counters.TooLarge.Add(1)
		s.observeReject(RefusedTooLarge)
		return false, "reply too large for a datagram; not sent"
	}
	if isLoopback(to.Addr()) {
		return true, ""
	}
	if s.MaxAmplification > 0 && float64(replyLen) > s.MaxAmplification*float64(reqLen) {
		s.Counters.Amplification.Add(1)
		s.observeReject(RefusedAmplification)
		return false, "reply to a non-local source larger than its request allows; not sent"
	}
	if s.ReplyLimiter != nil && !s.ReplyLimiter.Allow(to.Addr()) {
		s.Counters.RateLimited.Add(1)
		s.observeReject(RefusedRateLimited)
		return false, "source over its reply rate; not sent"
	}
	return true, ""
}
