package rmtcall

import (
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/metrics"
	"github.com/portmapd/portmapd/pmap"
)

// The metrics the daemon serves see every call enter and leave the table
// and every call dropped: rate-limited, evicted from a full table, expired.
func TestMetricsSeeForwards(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	now := time.Unix(1_000_000, 0)
	f := newForwarder(t, Config{MaxInFlight: 2, Timeout: 300 * time.Millisecond, Rate: 1, Burst: 1,
		Now: func() time.Time { return now }, Observer: m})
	svc := newService(t, "udp4")
	rec := newRecorder(t)

	if err := f.Send(request(svc, rec, remoteCaller, 1, pmap.VersRPCB3, nil)); err != nil {
		t.Fatal(err)
	}
	svc.next()
	f.Send(request(svc, rec, remoteCaller, 2, pmap.VersRPCB3, nil)) // over the rate
	var last received
	for xid := uint32(3); xid <= 4; xid++ { // the second evicts the remote call
		if err := f.Send(request(svc, rec, localCaller, xid, pmap.VersRPCB3, nil)); err != nil {
			t.Fatal(err)
		}
		last = svc.next()
	}
	expect := func(when string, want map[string]string) {
		t.Helper()
		got := scrape(m)
		for series, v := range want {
			if got[series] != v {
				t.Errorf("%s: %s = %q, want %q", when, series, got[series], v)
			}
		}
	}
	expect("with two in flight", map[string]string{
		"portmapd_forwards_in_flight":                              "2",
		`portmapd_rejections_total{reason="forward_rate_limited"}`: "1",
		`portmapd_rejections_total{reason="forwards_full"}`:        "1",
		`portmapd_rejections_total{reason="forward_expired"}`:      "0",
	})
	svc.answer(last, nil)
	rec.next()
	expect("after an answer", map[string]string{"portmapd_forwards_in_flight": "1"})
	eventually(t, "expiry", func() bool { return f.InFlight() == 0 })
	expect("after the expiry", map[string]string{
		"portmapd_forwards_in_flight":                         "0",
		`portmapd_rejections_total{reason="forward_expired"}`: "1",
		`portmapd_rejections_total{reason="forwards_full"}`:   "1",
	})
}

// scrape reads m's series as /metrics serves them, keyed by name and
// labels.
func scrape(m *metrics.Metrics) map[string]string {
	var b strings.Builder
	m.WritePrometheus(&b)
	out := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if series, v, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			out[series] = v
		}
	}
	return out
}
