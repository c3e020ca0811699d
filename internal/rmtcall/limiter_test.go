package rmtcall

import (
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(rate float64, burst, sources int) (*Limiter, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_000_000, 0)}
	return &Limiter{Rate: rate, Burst: burst, MaxSources: sources, Now: c.now}, c
}

func allowed(l *Limiter, a string, n int) int {
	got := 0
	for range n {
		if l.Allow(netip.MustParseAddr(a)) {
			got++
		}
	}
	return got
}

// A source may make Burst calls at once, then Rate a second; tokens do not
// pile up beyond Burst.
func TestBucketAllowsBurstThenRate(t *testing.T) {
	l, clock := newLimiter(2, 5, 16)
	if got := allowed(l, "10.0.0.2", 10); got != 5 {
		t.Errorf("%d of 10 at once, want the burst of 5", got)
	}
	clock.advance(time.Second)
	if got := allowed(l, "10.0.0.2", 10); got != 2 {
		t.Errorf("%d after a second, want 2", got)
	}
	clock.advance(500 * time.Millisecond)
	if got := allowed(l, "10.0.0.2", 10); got != 1 {
		t.Errorf("%d after half a second, want 1", got)
	}
	clock.advance(time.Hour)
	if got := allowed(l, "10.0.0.2", 10); got != 5 {
		t.Errorf("%d after an hour, want no more than the burst of 5", got)
	}
}

// A clock that steps back neither adds nor takes tokens.
func TestBucketSurvivesAClockStepBack(t *testing.T) {
	l, clock := newLimiter(1, 2, 16)
	allowed(l, "10.0.0.2", 2)
	clock.advance(-time.Hour)
	if got := allowed(l, "10.0.0.2", 2); got != 0 {
		t.Errorf("%d allowed after the clock stepped back, want 0", got)
	}
	clock.advance(time.Hour + time.Second)
	if got := allowed(l, "10.0.0.2", 2); got != 1 {
		t.Errorf("%d allowed a second later, want 1", got)
	}
}

// Sources are IPv4 addresses and IPv6 /64 prefixes; an IPv4-mapped
// address is its IPv4 address.
func TestSourcesAreAddressesAndIPv6Prefixes(t *testing.T) {
	l, _ := newLimiter(1, 1, 16)
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.2", true},
		{"10.0.0.3", true},
		{"::ffff:10.0.0.2", false},
		{"2001:db8:1:2::1", true},
		{"2001:db8:1:2:ffff::9", false},
		{"2001:db8:1:3::1", true},
		{"fe80::1%eth0", true},
		{"fe80::2%eth1", false},
	} {
		if got := l.Allow(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%s: allowed %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// At most MaxSources buckets exist. When the table is full, refilled
// buckets are swept out, at most once per refill period; until then new
// sources are refused.
func TestSourcesAreBounded(t *testing.T) {
	l, clock := newLimiter(1, 2, 100) // refill period: 2 s
	addr := func(i int) string { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String() }
	for i := range 100 {
		if allowed(l, addr(i), 1) != 1 {
			t.Fatalf("source %d refused", i)
		}
	}
	if got := allowed(l, addr(100), 1); got != 0 {
		t.Error("a new source was let in beyond MaxSources while every bucket is in use")
	}
	if n := l.Sources(); n != 100 {
		t.Errorf("%d sources, want 100", n)
	}
	clock.advance(time.Second) // a sweep now would free nothing: none refilled
	if got := allowed(l, addr(101), 1); got != 0 {
		t.Error("new source let in before any bucket refilled")
	}
	clock.advance(1500 * time.Millisecond) // every bucket refilled, one period since the last sweep
	if got := allowed(l, addr(102), 1); got != 1 {
		t.Error("new source refused after the old buckets refilled")
	}
	if n := l.Sources(); n != 1 {
		t.Errorf("%d sources after the sweep, want 1", n)
	}
}

// A flood of new sources while the table is full costs one sweep per
// refill period, not one per call.
func TestSweepsAreThrottled(t *testing.T) {
	l, clock := newLimiter(1, 1000, 10) // refill period: 1000 s
	for i := range 10 {
		allowed(l, netip.AddrFrom4([4]byte{10, 2, 0, byte(i)}).String(), 1)
	}
	clock.advance(time.Second)
	allowed(l, "10.3.0.1", 1) // sweeps, frees nothing
	sweptAt := l.lastSweep
	for i := range 1000 {
		clock.advance(time.Millisecond)
		allowed(l, netip.AddrFrom4([4]byte{10, 4, byte(i >> 8), byte(i)}).String(), 1)
	}
	if l.lastSweep != sweptAt {
		t.Errorf("swept again at %v, within the refill period of the sweep at %v", l.lastSweep, sweptAt)
	}
}
