package rmtcall

import (
	"net/netip"
	"sync"
	"time"
)

// Limiter is a token bucket per source: each source may make Burst calls
// at once and Rate calls a second after that. Sources are IPv4 addresses
// and IPv6 /64 prefixes, since a single IPv6 host usually owns a whole
// /64 and could otherwise start a fresh bucket with every address.
//
// At most MaxSources buckets exist. A bucket that has refilled is the same
// as no bucket, so such buckets are swept out when the table is full; the
// sweep runs at most once per refill period, and until it frees room new
// sources are refused, which bounds both memory and the work a flood of
// spoofed addresses can cause.
type Limiter struct {
	Rate       float64 // tokens added per second
	Burst      int     // bucket size
	MaxSources int
	// Now is the clock; tests replace it.
	Now func() time.Time

	mu        sync.Mutex
	buckets   map[netip.Prefix]bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Allow takes a token from a's bucket and reports whether there was one.
func (l *Limiter) Allow(a netip.Addr) bool {
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
		b = bucket{tokens: float64(l.Burst), last: now}
	}
	b = l.refill(b, now)
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.buckets[k] = b
	return allowed
}

// Sources reports how many buckets exist.
func (l *Limiter) Sources() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter) refill(b bucket, now time.Time) bucket {
	// A clock that steps back adds nothing rather than taking tokens.
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+d.Seconds()*l.Rate)
		b.last = now
	}
	return b
}

// sweep drops the buckets that have refilled, unless a sweep ran less than
// a refill period ago, and reports whether there is room now.
func (l *Limiter) sweep(now time.Time) bool {
	period := time.Duration(float64(l.Burst) / l.Rate * float64(time.Second))
	if !l.lastSweep.IsZero() && now.Sub(l.lastSweep) < period {
		return false
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if l.refill(b, now).tokens >= float64(l.Burst) {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < l.MaxSources
}

func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
