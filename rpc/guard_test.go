package rpc

import (
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestSourceLimiterRefillsAtItsRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewSourceLimiter(10, 5)
	l.Now = clk.now
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	for i := range 5 {
		if !l.Allow(a) {
			t.Fatalf("burst: call %d refused", i)
		}
	}
	if l.Allow(a) {
		t.Fatal("sixth call within the same instant allowed")
	}
	if !l.Allow(b) {
		t.Fatal("another source shares the first one's bucket")
	}
	clk.t = clk.t.Add(100 * time.Millisecond) // one token at 10/s
	if !l.Allow(a) || l.Allow(a) {
		t.Fatal("want exactly one token after 100 ms")
	}
	clk.t = clk.t.Add(time.Hour) // refill caps at the burst
	for range 5 {
		l.Allow(a)
	}
	if l.Allow(a) {
		t.Fatal("bucket grew past its burst")
	}
}

// A flood of forged sources cannot grow the limiter: at MaxSources, only
// buckets that refilled completely are forgotten to make room.
func TestSourceLimiterIsBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewSourceLimiter(1, 2)
	l.Now = clk.now
	l.MaxSources = 100
	for i := range 1000 {
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if l.Len() > 100 {
		t.Fatalf("%d sources tracked, cap 100", l.Len())
	}
	if l.Allow(netip.MustParseAddr("10.1.0.1")) {
		t.Fatal("a new source was given a bucket while all were in use")
	}
	clk.t = clk.t.Add(3 * time.Second)
	if !l.Allow(netip.MustParseAddr("10.1.0.1")) {
		t.Fatal("no room made after the buckets refilled")
	}
}

// A clock that steps back neither adds nor takes tokens.
func TestSourceLimiterSurvivesAClockStepBack(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewSourceLimiter(1, 2)
	l.Now = clk.now
	a := netip.MustParseAddr("10.0.0.2")
	l.Allow(a)
	l.Allow(a)
	clk.t = clk.t.Add(-time.Hour)
	if l.Allow(a) {
		t.Error("allowed after the clock stepped back, with the bucket empty")
	}
	clk.t = clk.t.Add(time.Hour + time.Second)
	if !l.Allow(a) || l.Allow(a) {
		t.Error("want exactly one token a second after the clock came back")
	}
}

// Sources are IPv4 addresses and IPv6 /64 prefixes; an IPv4-mapped
// address is its IPv4 address.
func TestSourceLimiterKeysIPv6ByPrefix(t *testing.T) {
	l := NewSourceLimiter(1, 1)
	l.Now = (&fakeClock{t: time.Unix(1000, 0)}).now
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

// A flood of new sources while the table is full costs one sweep per
// refill period, not one per packet.
func TestSourceLimiterSweepsOncePerRefill(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewSourceLimiter(1, 1000) // refill period: 1000 s
	l.Now = clk.now
	l.MaxSources = 10
	for i := range 10 {
		l.Allow(netip.AddrFrom4([4]byte{10, 2, 0, byte(i)}))
	}
	clk.t = clk.t.Add(time.Second)
	l.Allow(netip.MustParseAddr("10.3.0.1")) // sweeps the ten refilled buckets
	sweptAt := l.lastSweep
	admitted := 0
	for i := range 1000 {
		clk.t = clk.t.Add(time.Millisecond)
		if l.Allow(netip.AddrFrom4([4]byte{10, 4, byte(i >> 8), byte(i)})) {
			admitted++
		}
	}
	if admitted != 9 {
		t.Errorf("%d new sources admitted, want the 9 that fit beside 10.3.0.1", admitted)
	}
	if l.lastSweep != sweptAt {
		t.Errorf("swept again at %v, within the refill period of the sweep at %v", l.lastSweep, sweptAt)
	}
}

func TestAllowReplyGuards(t *testing.T) {
	remote := netip.MustParseAddrPort("192.0.2.7:700")
	local := netip.MustParseAddrPort("127.0.0.1:700")
	mapped := netip.MustParseAddrPort("[::ffff:127.0.0.1]:700")
	own := netip.MustParseAddrPort("198.51.100.1:700") // an address of this host
	const eth, eth2 = 2, 3                             // eth2 accepts local sources from outside
	s := &Server{MaxAmplification: 2, MaxUDPReply: 8800, ReplyLimiter: NewSourceLimiter(1, 1)}
	s.hosts.load = func() (map[netip.Addr]bool, map[int]bool) {
		return map[netip.Addr]bool{own.Addr(): true}, map[int]bool{eth2: true}
	}
	for _, tt := range []struct {
		name           string
		to             netip.AddrPort
		ifindex        int
		req, reply     int
		want           replyVerdict
		amp, rate, big uint64
	}{
		{"a reply within the multiple is sent", remote, eth, 100, 200, replySend, 0, 0, 0},
		{"a reply over the multiple to a remote source is dropped", remote, eth, 100, 201, replyDrop, 1, 0, 0},
		{"loopback is exempt from the multiple", local, loopbackIfindex, 40, 8000, replySend, 1, 0, 0},
		{"mapped loopback is exempt too", mapped, 0, 40, 8000, replySend, 1, 0, 0},
		{"the rate limit drops the second reply of the instant", remote, eth, 100, 100, replyDrop, 1, 1, 0},
		{"too large for a datagram, to a local caller: SYSTEM_ERR", local, loopbackIfindex, 40, 8801, replySystemErr, 1, 1, 1},
		{"too large for a datagram, to a remote caller: dropped", remote, eth, 40, 8801, replyDrop, 1, 1, 2},
		{"one of the host's addresses, sent on the host, is exempt", own, eth, 40, 8000, replySend, 1, 1, 2},
		{"and gets SYSTEM_ERR when too large", own, eth, 40, 9000, replySystemErr, 1, 1, 3},
		{"any source that arrived on loopback is exempt", remote, loopbackIfindex, 40, 8000, replySend, 1, 1, 3},
		{"the host's address from an interface with accept_local is guarded", own, eth2, 40, 8000, replyDrop, 2, 1, 3},
		{"the host's address on an unknown interface is guarded", own, 0, 40, 8000, replyDrop, 3, 1, 3},
	} {
		v, _ := s.allowReply(tt.to, tt.ifindex, tt.req, tt.reply)
		if v != tt.want {
			t.Errorf("%s: verdict %v, want %v", tt.name, v, tt.want)
		}
		if s.Counters.Amplification.Load() != tt.amp || s.Counters.RateLimited.Load() != tt.rate || s.Counters.TooLarge.Load() != tt.big {
			t.Errorf("%s: counters amp=%d rate=%d big=%d", tt.name, s.Counters.Amplification.Load(),
				s.Counters.RateLimited.Load(), s.Counters.TooLarge.Load())
		}
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// Thousands of idle and stalled connections (CVE-2021-46828) do not lock
// out a well-behaved client, and descriptors and goroutines return to
// their idle counts once the crowd is gone.
func TestServerSurvivesAConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	ts := startServer(t, &Server{MaxConns: 256, ReadTimeout: 300 * time.Millisecond})
	good := dialStream(t, "tcp", ts.tcp.Addr().String())
	good.send(t, testCall(1, 1, procNull))
	expectReply(t, good, AppendSuccess(nil, 1))
	// The local listener's event loops are set up asynchronously, and
	// counted too early the idle figures would miss some of them. Once it
	// has answered they are up: a listener's loops are all made before
	// any runs, and the others are started before the first.
	local := dialStream(t, "unix", ts.unixPath)
	local.send(t, testCall(3, 1, procNull))
	expectReply(t, local, AppendSuccess(nil, 3))
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	var crowd []*streamClient
	for i := range 3000 {
		network, addr := "tcp", ts.tcp.Addr().String()
		if i%3 == 0 {
			network, addr = "unix", ts.unixPath
		}
		c := dialStream(t, network, addr)
		if i%2 == 0 {
			c.write(t, []byte{0x80, 0, 0, 40, 0, 0}) // half a record, then nothing
		}
		crowd = append(crowd, c)
		if i%500 == 0 {
			fresh := dialStream(t, "tcp", ts.tcp.Addr().String())
			fresh.send(t, testCall(uint32(i), 1, procNull))
			expectReply(t, fresh, AppendSuccess(nil, uint32(i)))
			fresh.close()
		}
	}
	// The first client was idle all along and may have been evicted;
	// a new one is answered.
	late := dialStream(t, "tcp", ts.tcp.Addr().String())
	late.send(t, testCall(2, 1, procNull))
	expectReply(t, late, AppendSuccess(nil, 2))
	late.close()
	good.close()
	local.close()
	for _, c := range crowd {
		c.close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, g := openFDs(t), runtime.NumGoroutine()
		if f <= fds && g <= goroutines {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flood: %d descriptors (idle %d), %d goroutines (idle %d)", f, fds, g, goroutines)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ts.Counters.ConnsEvicted.Load() == 0 {
		t.Error("no connection was evicted; the cap did not bind")
	}
}

// A flood of garbage costs no allocations: the errors ParseCall returns
// are made in advance.
func TestGarbageDoesNotAllocate(t *testing.T) {
	s := &Server{Handler: NewMux()}
	s.init()
	out := make([]byte, 0, 1024)
	for _, msg := range [][]byte{
		{1, 2, 3},
		AppendCall(nil, 1, 2, 3, 4, OpaqueAuth{AuthSys, make([]byte, 8)})[:36],
		append(AppendCall(nil, 1, 2, 3, 4, OpaqueAuth{})[:24], 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff),
	} {
		var c Call
		var w Reply
		if n := testing.AllocsPerRun(100, func() {
			c = Call{}
			s.dispatch(&w, out[:0], msg, &c)
		}); n != 0 {
			t.Errorf("%x: %v allocs per garbage message", msg, n)
		}
		if !c.garbage {
			t.Errorf("%x: not treated as garbage", msg)
		}
	}
}
