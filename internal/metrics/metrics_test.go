package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portmapd/portmapd/rpc"
)

// values gathers metric name from m, keyed by its label values joined
// with "/" in label-name order (for calls: outcome/procedure/transport/
// version, as the registry sorts them).
func values(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	var b strings.Builder
	m.WritePrometheus(&b)
	out := map[string]float64{}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("malformed line %q", line)
		}
		metric, labels, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		var parts []string
		for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if _, v, ok := strings.Cut(kv, "="); ok {
				parts = append(parts, strings.Trim(v, `"`))
			}
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("malformed value in %q", line)
		}
		out[strings.Join(parts, "/")] = f
	}
	return out
}

func TestCallCountsUnderItsLabels(t *testing.T) {
	tests := []struct {
		name       string
		vers, proc uint32
		netid      string
		outc       rpc.Outcome
		key        string // outcome/procedure/transport/version
	}{
		{"v2 GETPORT over udp", 2, 3, "udp", rpc.OutcomeSuccess, "success/getport/udp/2"},
		{"v3 GETADDR over the local socket", 3, 3, "local", rpc.OutcomeSuccess, "success/getaddr/local/3"},
		{"netid unix is the local socket", 3, 1, "unix", rpc.OutcomeAuthError, "auth_error/set/local/3"},
		{"v4 procedure 5 is BCAST", 4, 5, "udp6", rpc.OutcomeNoReply, "no_reply/bcast/udp6/4"},
		{"v3 procedure 5 is CALLIT", 3, 5, "udp", rpc.OutcomeSuccess, "success/callit/udp/3"},
		{"v4 GETSTAT", 4, 12, "tcp6", rpc.OutcomeSuccess, "success/getstat/tcp6/4"},
		{"a v2 procedure beyond CALLIT", 2, 6, "tcp", rpc.OutcomeProcUnavail, "proc_unavail/other/tcp/2"},
		{"a huge procedure number", 4, 1 << 31, "tcp", rpc.OutcomeProcUnavail, "proc_unavail/other/tcp/4"},
		{"an unknown version", 7, 0, "udp", rpc.OutcomeProgMismatch, "prog_mismatch/other/udp/other"},
		{"version 1 (portmap before RFC 1833) too", 1, 3, "udp", rpc.OutcomeProgMismatch, "prog_mismatch/other/udp/other"},
		{"an unknown transport and outcome", 3, 0, "sctp", rpc.Outcome(200), "other/null/other/3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{NoRuntimeMetrics: true})
			m.Call(tt.vers, tt.proc, tt.netid, tt.outc)
			m.Call(tt.vers, tt.proc, tt.netid, tt.outc)
			got := values(t, m, "portmapd_calls_total")
			if got[tt.key] != 2 {
				t.Errorf("%s = %v, want 2", tt.key, got[tt.key])
			}
			total := 0.0
			for _, v := range got {
				total += v
			}
			if total != 2 {
				t.Errorf("%v calls counted in all, want 2", total)
			}
		})
	}
}

func TestSuccessSeriesExistFromTheStart(t *testing.T) {
	m := New(Options{NoRuntimeMetrics: true})
	got := values(t, m, "portmapd_calls_total")
	// 6 + 9 + 13 procedures, on 5 transports, outcome success, all zero:
	// rate() works from the first call, and nothing else is sent.
	if len(got) != 28*5 {
		t.Errorf("%d series at start, want %d", len(got), 28*5)
	}
	for k, v := range got {
		if !strings.HasPrefix(k, "success/") || v != 0 {
			t.Errorf("series %s = %v at start", k, v)
		}
	}
	if _, ok := got["success/getversaddr/tcp6/4"]; !ok {
		t.Error("no v4 GETVERSADDR series")
	}
}

func TestRejectionsAndGauges(t *testing.T) {
	regs := 7
	m := New(Options{NoRuntimeMetrics: true, Registrations: func() int { return regs }})
	m.Reject(rpc.RefusedNotLocal)
	m.Reject(rpc.RefusedNotLocal)
	m.Reject(rpc.RefusedForwardDenied)
	m.Reject(rpc.Reason(200))
	m.ConnOpened("tcp")
	m.ConnOpened("tcp")
	m.ConnOpened("local")
	m.ConnClosed("tcp")
	m.ForwardStarted()
	m.ForwardStarted()
	m.ForwardDone()
	m.NonZeroPadding()
	m.NonZeroPadding()

	if v := values(t, m, "portmapd_nonzero_padding_calls_total")[""]; v != 2 {
		t.Errorf("calls with non-zero padding = %v, want 2", v)
	}
	rej := values(t, m, "portmapd_rejections_total")
	if len(rej) != nReasons {
		t.Errorf("%d rejection series, want one per reason (%d): all exist from the start", len(rej), nReasons)
	}
	for reason, want := range map[string]float64{rpc.RefusedNotLocal.String(): 2, rpc.RefusedForwardDenied.String(): 1, "other": 1, rpc.RefusedTooLarge.String(): 0} {
		if rej[reason] != want {
			t.Errorf("rejections %s = %v, want %v", reason, rej[reason], want)
		}
	}
	conns := values(t, m, "portmapd_open_connections")
	for tr, want := range map[string]float64{"tcp": 1, "tcp6": 0, "local": 1} {
		if v, ok := conns[tr]; !ok || v != want {
			t.Errorf("open connections %s = %v (present %v), want %v", tr, v, ok, want)
		}
	}
	if len(conns) != 3 {
		t.Errorf("connection series %v, want the stream transports only", conns)
	}
	if v := values(t, m, "portmapd_forwards_in_flight")[""]; v != 1 {
		t.Errorf("forwards in flight = %v, want 1", v)
	}
	if v := values(t, m, "portmapd_registrations")[""]; v != 7 {
		t.Errorf("registrations = %v, want 7 (from the function)", v)
	}
	regs = 9
	if v := values(t, m, "portmapd_registrations")[""]; v != 9 {
		t.Errorf("registrations = %v, want 9: read at each scrape", v)
	}

	m2 := New(Options{NoRuntimeMetrics: true})
	m2.SetRegistrations(12)
	if v := values(t, m2, "portmapd_registrations")[""]; v != 12 {
		t.Errorf("registrations = %v, want 12 (set)", v)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Call(2, 3, "udp", rpc.OutcomeSuccess)
	m.Reject(rpc.RefusedNotLocal)
	m.ConnOpened("tcp")
	m.ConnClosed("tcp")
	m.ForwardStarted()
	m.ForwardDone()
	m.SetRegistrations(3)
}

func TestRecordingDoesNotAllocate(t *testing.T) {
	m := New(Options{NoRuntimeMetrics: true})
	var nilM *Metrics
	tests := []struct {
		name string
		f    func()
	}{
		{"Call", func() { m.Call(3, 3, "tcp6", rpc.OutcomeSuccess) }},
		{"Call with unknown labels", func() { m.Call(9, 99, "sctp", rpc.Outcome(99)) }},
		{"Reject", func() { m.Reject(rpc.RefusedForwardExpired) }},
		{"ConnOpened", func() { m.ConnOpened("local") }},
		{"ForwardStarted", func() { m.ForwardStarted() }},
		{"Call on nil", func() { nilM.Call(2, 3, "udp", rpc.OutcomeSuccess) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
			t.Errorf("%s: %v allocations per call", tt.name, n)
		}
	}
}

func TestConcurrentRecordingAndScraping(t *testing.T) {
	m := New(Options{NoRuntimeMetrics: true})
	const workers, each = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.Call(uint32(2+w%3), uint32(i%4), "udp", rpc.OutcomeSuccess)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			m.WritePrometheus(io.Discard)
		}
	})
	wg.Wait()
	total := 0.0
	for _, v := range values(t, m, "portmapd_calls_total") {
		total += v
	}
	if total != workers*each {
		t.Errorf("counted %v calls, want %d", total, workers*each)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr  string
		force bool
		ok    bool
	}{
		{"127.0.0.1:9111", false, true},
		{"127.1.2.3:9111", false, true},
		{"[::1]:9111", false, true},
		{"[::ffff:127.0.0.1]:9111", false, true},
		{"localhost:9111", false, true},
		{":9111", false, false},
		{"0.0.0.0:9111", false, false},
		{"[::]:9111", false, false},
		{"192.0.2.1:9111", false, false},
		{"metrics.example:9111", false, false},
		{"0.0.0.0:9111", true, true},
		{":9111", true, true},
		{"127.0.0.1", false, false}, // no port
	}
	for _, tt := range tests {
		err := CheckAddr(tt.addr, tt.force)
		if (err == nil) != tt.ok {
			t.Errorf("CheckAddr(%q, force=%v) = %v, want ok=%v", tt.addr, tt.force, err, tt.ok)
		}
		if err != nil && tt.addr != "127.0.0.1" && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckAddr(%q): %v does not wrap ErrNotLoopback", tt.addr, err)
		}
	}
}

func TestListenRefusesBeforeBinding(t *testing.T) {
	if l, err := Listen("0.0.0.0:0", false); err == nil {
		l.Close()
		t.Fatal("listened on every interface without force")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestScrapeOverHTTP(t *testing.T) {
	m := New(Options{Registrations: func() int { return 4 }})
	l, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()

	for range 3 {
		m.Call(2, 3, "udp", rpc.OutcomeSuccess)
	}
	m.Call(3, 1, "tcp", rpc.OutcomeAuthError)
	m.Reject(rpc.RefusedNotLocal)
	m.ConnOpened("tcp6")

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		"# TYPE portmapd_calls_total counter",
		`portmapd_calls_total{outcome="success",procedure="getport",transport="udp",version="2"} 3`,
		`portmapd_calls_total{outcome="auth_error",procedure="set",transport="tcp",version="3"} 1`,
		`portmapd_calls_total{outcome="success",procedure="getaddrlist",transport="udp6",version="4"} 0`,
		"portmapd_registrations 4",
		"go_goroutines ",    // runtime collector
		"process_open_fds ", // process collector
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, want := range []string{
		"# TYPE portmapd_open_connections gauge\n" +
			"portmapd_open_connections{transport=\"local\"} 0\n" +
			"portmapd_open_connections{transport=\"tcp\"} 0\n" +
			"portmapd_open_connections{transport=\"tcp6\"} 1\n",
		"# TYPE portmapd_forwards_in_flight gauge\nportmapd_forwards_in_flight 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks\n%s", want)
		}
	}

	if code, body := get(t, base+"/"); code != http.StatusOK || !strings.Contains(body, "/metrics") {
		t.Errorf("GET /: %d %q", code, body)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/: %d, want 404", code)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func BenchmarkCall(b *testing.B) {
	m := New(Options{NoRuntimeMetrics: true})
	b.ReportAllocs()
	for b.Loop() {
		m.Call(2, 3, "udp", rpc.OutcomeSuccess)
	}
}

func BenchmarkCallParallel(b *testing.B) {
	m := New(Options{NoRuntimeMetrics: true})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Call(4, 3, "tcp6", rpc.OutcomeSuccess)
		}
	})
}

func BenchmarkScrape(b *testing.B) {
	m := New(Options{NoRuntimeMetrics: true})
	for v := uint32(2); v <= 4; v++ {
		for p := range uint32(13) {
			m.Call(v, p, "udp", rpc.OutcomeProcUnavail)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		m.WritePrometheus(io.Discard)
	}
}

// The warm-start write failures counter is read at each scrape, and left
// out when the daemon has no warm start to fail.
func TestStateWriteFailures(t *testing.T) {
	failures := uint64(3)
	m := New(Options{NoRuntimeMetrics: true, StateWriteFailures: func() uint64 { return failures }})
	if got := values(t, m, "portmapd_state_write_failures_total"); got[""] != 3 {
		t.Errorf("failures = %v, want 3", got)
	}
	failures++
	if got := values(t, m, "portmapd_state_write_failures_total"); got[""] != 4 {
		t.Errorf("failures = %v, want 4 at the next scrape", got)
	}
	if got := values(t, New(Options{NoRuntimeMetrics: true}), "portmapd_state_write_failures_total"); len(got) != 0 {
		t.Errorf("without warm start the counter is %v, want absent", got)
	}
}
