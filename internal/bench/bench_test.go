package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/internal/netns"
	"github.com/portmapd/portmapd/pmap"
)

func TestPercentileIsNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"no samples give zero", nil, 0.5, 0},
		{"one sample is every percentile", ms(7), 0.999, 7 * time.Millisecond},
		{"median of an odd count is the middle", ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"median of an even count is the lower middle", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 1..100 is 99", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p99.9 of 100 samples is the largest", ms(hundred...), 0.999, 100 * time.Millisecond},
		{"p100 is the largest", ms(1, 5, 9), 1, 9 * time.Millisecond},
		{"a tiny p is the smallest", ms(3, 5, 9), 0.0001, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeMergesClientsWithoutReorderingThem(t *testing.T) {
	a := []time.Duration{5, 1, 3}
	b := []time.Duration{4, 2}
	l := summarize([][]time.Duration{a, b, nil})
	if l.P50 != 3 || l.Max != 5 || l.P99 != 5 {
		t.Errorf("summarize = %+v, want p50 3, p99 5, max 5", l)
	}
	if !slices.Equal(a, []time.Duration{5, 1, 3}) {
		t.Errorf("client samples were sorted in place: %v", a)
	}
	if l := summarize(nil); l != (Latencies{}) {
		t.Errorf("summarize(nil) = %+v, want zero", l)
	}
}

func TestParseStatCPUCountsFieldsFromTheLastParen(t *testing.T) {
	// A command name may hold spaces and parentheses: "(a) b) c".
	line := "4242 ((a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 12345 1000000 200 18446744073709551615"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("cpu = %v, want %v (utime 250 + stime 75 ticks)", got, want)
	}
	for _, bad := range []string{"", "12 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s"} {
		if _, err := parseStatCPU([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("parseStatCPU(%q) = %v, want errProcFormat", bad, err)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tportmapd\nVmPeak:\t  20000 kB\nVmRSS:\t    8123 kB\nThreads:\t5\n"
	if got, err := parseStatusKB([]byte(status), "VmRSS:"); err != nil || got != 8123 {
		t.Errorf("VmRSS = %d, %v; want 8123", got, err)
	}
	if _, err := parseStatusKB([]byte("Name:\tx\n"), "VmRSS:"); !errors.Is(err, errProcFormat) {
		t.Errorf("missing VmRSS: %v, want errProcFormat", err)
	}
	if _, err := parseStatusKB([]byte("VmRSS:\t12 MB\n"), "VmRSS:"); !errors.Is(err, errProcFormat) {
		t.Errorf("VmRSS in MB: %v, want errProcFormat", err)
	}
}

func TestProcFiguresOfThisProcess(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn a few ticks' worth of CPU so that the counter must move.
	deadline := time.Now().Add(100 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU time did not grow over 100 ms of spinning: %v then %v", before, after)
	}
	rss, err := procRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("RSS = %d kB, %v", rss, err)
	}
	if _, err := loadAvg(); err != nil {
		t.Errorf("loadavg: %v", err)
	}
}

func TestUaddrPort(t *testing.T) {
	tests := []struct {
		in   string
		port uint32
		ok   bool
	}{
		{"0.0.0.0.0.111", 111, true},
		{"127.0.0.1.8.1", 2049, true},
		{"::1.255.255", 65535, true},
		{"0.0.0.0.1.256", 0, false},
		{"0.0.0.0.1.", 0, false},
		{"0.0.0.0.x.1", 0, false},
		{"111", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		port, ok := uaddrPort([]byte(tt.in))
		if port != tt.port || ok != tt.ok {
			t.Errorf("uaddrPort(%q) = %d, %v; want %d, %v", tt.in, port, ok, tt.port, tt.ok)
		}
	}
	if got := uaddrOf(2049); got != "0.0.0.0.8.1" {
		t.Errorf("uaddrOf(2049) = %q", got)
	}
}

func TestConfigCheckRefusesUnboundedOrBadRuns(t *testing.T) {
	mutate := map[string]func(*Config){
		"no clients":           func(c *Config) { c.Clients = 0 },
		"too many clients":     func(c *Config) { c.Clients = maxClients + 1 },
		"no duration bound":    func(c *Config) { c.Duration = 0 },
		"no count bound":       func(c *Config) { c.MaxRequests = 0 },
		"no request timeout":   func(c *Config) { c.Timeout = 0 },
		"percent over 100":     func(c *Config) { c.UnregisteredPercent = 101 },
		"fresh without time":   func(c *Config) { c.FreshDuration = 0 },
		"unknown load":         func(c *Config) { c.Loads = []string{"flood"} },
		"negative table":       func(c *Config) { c.Registrations = []int{-1} },
		"table past the range": func(c *Config) { c.Registrations = []int{progUnregistered - progRegistered + 1} },
	}
	for name, f := range mutate {
		cfg := DefaultConfig()
		f(&cfg)
		if err := cfg.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	def := DefaultConfig()
	if err := def.check(); err != nil {
		t.Errorf("default config refused: %v", err)
	}
}

// TestRunAgainstInProcessDaemon drives every load against a real
// portmapd on a high loopback port and checks that every answer was right
// and the daemon was left as found.
func TestRunAgainstInProcessDaemon(t *testing.T) {
	d, port, sock := inProcessDaemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	cfg := shortConfig()
	cfg.Name = "in-process"
	cfg.Address = "127.0.0.1:" + strconv.Itoa(port)
	cfg.Socket = sock
	cfg.Pid = os.Getpid() // the daemon is this process
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Phases) != 2 {
		t.Fatalf("%d phases, want 2", len(res.Phases))
	}
	for _, ph := range res.Phases {
		if ph.Registered != ph.Registrations || ph.RegisterError != "" {
			t.Errorf("registered %d of %d: %s", ph.Registered, ph.Registrations, ph.RegisterError)
		}
		if len(ph.Loads) != len(Loads) {
			t.Errorf("%d regs: %d loads, want %d", ph.Registrations, len(ph.Loads), len(Loads))
		}
		for _, l := range ph.Loads {
			checkLoad(t, l, cfg)
		}
	}
	if res.Fresh == nil {
		t.Fatal("no fresh-lookups result")
	}
	checkLoad(t, *res.Fresh, cfg)
	for _, m := range d.Registry.Mappings() {
		if m.Prog >= progRegistered && m.Prog < 0x40000000 {
			t.Errorf("left in a daemon the run did not start: %+v", m)
		}
	}
	if len(res.StartupUs) != 0 {
		t.Errorf("startup times %v for a daemon the run did not start", res.StartupUs)
	}
}

func checkLoad(t *testing.T, l LoadResult, cfg Config) {
	t.Helper()
	if l.Requests == 0 || l.Errors != 0 {
		t.Errorf("%s at %d regs: %d requests, %d errors (%s)", l.Name, l.Registrations, l.Requests, l.Errors, l.FirstError)
	}
	bound := cfg.MaxRequests
	if l.Name == LoadFresh {
		bound = cfg.FreshLookups
	}
	if l.Requests > int64(bound) {
		t.Errorf("%s: %d requests, over the bound %d", l.Name, l.Requests, cfg.MaxRequests)
	}
	if l.P50us <= 0 || l.P50us > l.P99us || l.P99us > l.P999us || l.P999us > l.MaxUs {
		t.Errorf("%s: percentiles out of order: %+v", l.Name, l)
	}
	if l.PerSecond <= 0 || l.RSSAfterKB <= 0 {
		t.Errorf("%s: rate %.0f/s, RSS %d kB", l.Name, l.PerSecond, l.RSSAfterKB)
	}
}

// TestWrongAnswersCountAsErrors claims more registrations than the daemon
// holds: the lookups of the missing ones must come back as errors, not as
// fast answers.
func TestWrongAnswersCountAsErrors(t *testing.T) {
	d, port, sock := inProcessDaemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	cfg := shortConfig()
	cfg.Address = "127.0.0.1:" + strconv.Itoa(port)
	cfg.UnregisteredPercent = 0
	if _, err := changeRange(ctx, "unix", sock, pmap.ProcSet, 0, 10, time.Second); err != nil {
		t.Fatal(err)
	}
	env := &loadEnv{cfg: &cfg, regs: 20, fresh: new(atomic.Uint32)}
	for _, name := range []string{LoadGetportUDP, LoadGetaddrUDP, LoadDumpTCP} {
		l, err := runLoad(ctx, env, name, 100*time.Millisecond, 400, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.Errors == 0 || !strings.Contains(l.FirstError, "wrong answer") {
			t.Errorf("%s: %d errors of %d (%q); want wrong answers", name, l.Errors, l.Requests, l.FirstError)
		}
	}
}

// TestTimeoutsAreErrorsAndBounded points the clients at a socket that
// reads calls and never answers: every request times out and counts as an
// error, and the load still ends on time.
func TestTimeoutsAreErrorsAndBounded(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg := shortConfig()
	cfg.Address = silent.LocalAddr().String()
	cfg.Timeout = 50 * time.Millisecond
	env := &loadEnv{cfg: &cfg, fresh: new(atomic.Uint32)}
	start := time.Now()
	l, err := runLoad(context.Background(), env, LoadGetportUDP, 200*time.Millisecond, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Requests == 0 || l.Errors != l.Requests || !strings.Contains(l.FirstError, "timeout") {
		t.Errorf("%d errors of %d requests (%q); want all timed out", l.Errors, l.Requests, l.FirstError)
	}
	// Timed-out requests count in the percentiles at the time they took.
	if l.P50us < us(cfg.Timeout) {
		t.Errorf("p50 %.0f µs, below the %v timeout", l.P50us, cfg.Timeout)
	}
	if took := time.Since(start); took > 200*time.Millisecond+cfg.Timeout+time.Second {
		t.Errorf("a load bounded to 200 ms took %v", took)
	}
}

// TestRunSpawnsTheDaemon has Run start the daemon itself (this test
// binary as portmapd), time its start-up and read its CPU and RSS.
func TestRunSpawnsTheDaemon(t *testing.T) {
	port, sock := lendPort(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := shortConfig()
	cfg.Address = "127.0.0.1:" + strconv.Itoa(port)
	cfg.Socket = sock
	cfg.Daemon = []string{self}
	cfg.Registrations = []int{100}
	cfg.Loads = []string{LoadGetportUDP, LoadChurn}
	// Without warm start a restarted daemon comes back empty; the
	// measurement must say so rather than fail.
	cfg.WarmDaemon = []string{self}
	cfg.WarmRegistrations = 20
	cfg.Name = "spawned"
	cfg.Progress = t.Output()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// One start per table size, one for the fresh-lookups stream.
	if len(res.StartupUs) != 2 {
		t.Fatalf("startup times %v, want 2", res.StartupUs)
	}
	for _, us := range res.StartupUs {
		if us <= 0 || us > float64(readyTimeout/time.Microsecond) {
			t.Errorf("startup %v µs", us)
		}
	}
	ph := res.Phases[0]
	if ph.RSSIdleKB <= 0 || ph.RSSRegisteredKB <= 0 {
		t.Errorf("RSS idle %d kB, registered %d kB", ph.RSSIdleKB, ph.RSSRegisteredKB)
	}
	for _, l := range ph.Loads {
		checkLoad(t, l, cfg)
	}
	if res.Warm == nil || res.Warm.Restored != 0 || len(res.Warm.StartupUs) != cfg.WarmRestarts || slices.Min(res.Warm.StartupUs) <= 0 {
		t.Errorf("warm start of a daemon without it: %+v", res.Warm)
	}
	// The socket is gone with the daemon: nothing was left running.
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("local socket %s still there: a daemon was left running", sock)
	}
}

func TestSpawnReportsADaemonThatDies(t *testing.T) {
	port := daemontest.ClosedPort(t)
	p, started, err := spawn([]string{"sh", "-c", "echo no such luck >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = waitReady(context.Background(), p, started, "127.0.0.1:"+strconv.Itoa(port))
	if err == nil || !strings.Contains(err.Error(), "no such luck") {
		t.Errorf("waitReady = %v; want the daemon's exit with its output", err)
	}
}

func TestStopKillsADaemonThatIgnoresSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out stopTimeout")
	}
	p, _, err := spawn([]string{"sh", "-c", "trap '' TERM; sleep 60"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the shell install its trap
	start := time.Now()
	if err := stopDaemon(p); err == nil {
		t.Error("stop reported a clean exit of a daemon it had to kill")
	}
	if took := time.Since(start); took > stopTimeout+5*time.Second {
		t.Errorf("stop took %v", took)
	}
}

// TestRunInNamespace goes the whole way `bench compare` goes, as root:
// a namespace (netns), a daemon on port 111 and the local socket, JSON
// back. It measures this binary as portmapd and, when installed,
// Debian's rpcbind, whose answers then vouch for the checks.
func TestRunInNamespace(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	daemons := []string{"self"}
	if _, err := os.Stat("/usr/sbin/rpcbind"); err == nil {
		daemons = append(daemons, "/usr/sbin/rpcbind")
	}
	for _, dmn := range daemons {
		t.Run(dmn, func(t *testing.T) {
			t.Setenv(nsRunEnv, dmn)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var progress strings.Builder
			res, err := RunInNamespace(ctx, []string{self}, &progress)
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			cfg := shortConfig()
			if len(res.Phases) != len(cfg.Registrations) || len(res.StartupUs) == 0 {
				t.Fatalf("phases %d, startups %v\n%s", len(res.Phases), res.StartupUs, progress.String())
			}
			for _, ph := range res.Phases {
				for _, l := range ph.Loads {
					checkLoad(t, l, cfg)
				}
			}
			if dmn != "self" && (res.Warm == nil || res.Warm.Restored != 50) {
				t.Errorf("rpcbind -w restart: %+v, want 50 restored", res.Warm)
			}
		})
	}
}

// BenchmarkGetportRoundTrip is one client's GETPORT over UDP to an
// in-process portmapd: what a request costs the load generator and the
// daemon together, and proof that the client's steady state allocates
// nothing of its own.
func BenchmarkGetportRoundTrip(b *testing.B) {
	d, port, _ := inProcessDaemon(b)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	u, err := dialUDP("127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	c := &caller{t: u}
	defer u.close()
	for b.Loop() {
		if _, err := c.getport(progUnregistered); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAFailedWarmStartIsANote gives a warm-start command that cannot
// start, since another daemon holds its address: the rest of the run
// stands, and the table will say why.
func TestAFailedWarmStartIsANote(t *testing.T) {
	d, port, sock := inProcessDaemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	cfg := shortConfig()
	cfg.Address, cfg.Socket = "127.0.0.1:"+strconv.Itoa(port), sock
	cfg.Registrations, cfg.Loads, cfg.FreshLookups = []int{10}, []string{LoadGetportUDP}, 0
	cfg.WarmDaemon = []string{"sh", "-c", "echo 'unknown flag: --warm-start' >&2; exit 1"}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Phases) != 1 || res.Warm != nil {
		t.Fatalf("phases %d, warm %+v", len(res.Phases), res.Warm)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "already answers") {
		t.Errorf("notes %q; want the other daemon named", res.Notes)
	}
}
