package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// The durable-SET loads: the SET/UNSET churn of LoadChurn against a daemon
// that makes every change durable before it answers (portmapd
// --warm-start), at each of Config.DurableRegistrations. One client shows
// a lone change's latency, fsync included; Config.Clients show the
// throughput that sharing fsyncs (group commit) gives. rpcbind has no
// durable SET: its rows are its plain SET/UNSET, for reference.
const (
	LoadDurableLone = "durable-set-1"
	LoadDurable     = "durable-set"
	// DurableRegister is the registration of the table itself: SETs
	// pipelined on one stream, as "portmapd restore" sends them.
	DurableRegister = "durable-register"
)

// DefaultDurableRegistrations are the table sizes the durable loads run
// at: the journal's cost must not grow with the table.
var DefaultDurableRegistrations = []int{10, 10000, 100000}

// durable drives the durable loads, each table size on a freshly started
// daemon: DurableDaemon, or Daemon when the daemon has no durable SET.
func (r *runner) durable(ctx context.Context) error {
	argv := r.cfg.DurableDaemon
	if len(argv) == 0 {
		argv = r.cfg.Daemon
		r.res.Notes = append(r.res.Notes, LoadDurable+": no durable SET; these rows are the plain SET/UNSET, for reference")
	}
	for _, n := range r.cfg.DurableRegistrations {
		if err := r.durableAt(ctx, argv, n); err != nil {
			return fmt.Errorf("%d registrations: %w", n, err)
		}
	}
	return nil
}

func (r *runner) durableAt(ctx context.Context, argv []string, n int) error {
	pid, _, stop, err := r.start(ctx, argv)
	if err != nil {
		return err
	}
	defer func() {
		if err := stop(); err != nil {
			r.res.Notes = append(r.res.Notes, err.Error())
		}
	}()
	if len(argv) > 0 {
		r.have = 0
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RegisterTimeout)
	t0 := time.Now()
	err = r.setRegistered(rctx, n)
	took := time.Since(t0).Seconds()
	cancel()
	if err != nil {
		return err
	}
	r.res.Durable = append(r.res.Durable, LoadResult{Name: DurableRegister, Registrations: n, Clients: 1,
		Requests: int64(n), Seconds: took, PerSecond: float64(n) / took})
	r.progress("durable: registered %d in %.2f s", n, took)
	for _, name := range []string{LoadDurableLone, LoadDurable} {
		cfg := *r.cfg
		if name == LoadDurableLone {
			cfg.Clients = 1
		}
		env := &loadEnv{cfg: &cfg, regs: n, fresh: new(atomic.Uint32)}
		lr, err := r.measure(ctx, env, LoadChurn, r.cfg.Duration, pid)
		lr.Name, lr.Registrations = name, n
		r.res.Durable = append(r.res.Durable, lr)
		if err != nil {
			return err
		}
	}
	return nil
}

// durableRows are the table's rows for the durable loads: throughput and
// latency at each size, and how the lone change's latency and the
// throughput scale from the smallest table to the largest (the target:
// the latency at 100,000 within 1.5 times that at 10).
func durableRows(a, b *Result) []row {
	find := func(r *Result, name string, n int) *LoadResult {
		for i := range r.Durable {
			if l := &r.Durable[i]; l.Name == name && l.Registrations == n {
				return l
			}
		}
		return nil
	}
	var sizes []int
	for _, r := range []*Result{a, b} {
		for _, l := range r.Durable {
			if !slices.Contains(sizes, l.Registrations) {
				sizes = append(sizes, l.Registrations)
			}
		}
	}
	var rows []row
	add := rowAdder(a, b, &rows)
	figs := []figure{{"req/s", 0, true}, {"p50 µs", 1, false}, {"p99 µs", 1, false}}
	value := func(l *LoadResult, f figure) (float64, bool) {
		if l == nil || l.Requests == 0 {
			return 0, false
		}
		switch f.metric {
		case "req/s":
			return l.PerSecond, true
		case "p50 µs":
			return l.P50us, true
		}
		return l.P99us, true
	}
	for _, name := range []string{LoadDurableLone, LoadDurable} {
		for _, n := range sizes {
			for _, f := range figs {
				add(name, strconv.Itoa(n), f, func(r *Result) (float64, bool) { return value(find(r, name, n), f) })
			}
		}
	}
	for _, n := range sizes {
		add(DurableRegister, strconv.Itoa(n), figure{"pipelined SETs s", 3, false}, func(r *Result) (float64, bool) {
			if l := find(r, DurableRegister, n); l != nil && n > 0 {
				return l.Seconds, true
			}
			return 0, false
		})
	}
	if len(sizes) > 1 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		ratio := func(name string, f figure) func(*Result) (float64, bool) {
			return func(r *Result) (float64, bool) {
				l, okL := value(find(r, name, lo), f)
				h, okH := value(find(r, name, hi), f)
				if !okL || !okH || l == 0 {
					return 0, false
				}
				return h / l, true
			}
		}
		span := fmt.Sprintf("%d/%d", hi, lo)
		add("scaling", span, figure{LoadDurableLone + " p50 µs", 3, false}, ratio(LoadDurableLone, figs[1]))
		add("scaling", span, figure{LoadDurable + " req/s", 3, true}, ratio(LoadDurable, figs[0]))
	}
	return rows
}
