package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

// Config says what a run measures and against what. Zero fields take the
// defaults of DefaultConfig.
type Config struct {
	// Name labels the results ("portmapd", "rpcbind").
	Name string
	// Daemon is the command line of the portmapper under test. It is
	// spawned afresh for every registration count and for the
	// fresh-lookups stream, which times its start-up as well. Empty means
	// a portmapper is already running at Address; Pid then names it for
	// the CPU and RSS figures (0: none are taken).
	Daemon []string
	Pid    int
	// WarmDaemon, if not empty, is a command line that keeps its table
	// across a clean restart (rpcbind -f -w). The run starts it, registers
	// WarmRegistrations programs, then WarmRestarts times stops it with
	// SIGTERM, starts it again and times that start to the first answer.
	WarmDaemon        []string
	WarmRegistrations int
	WarmRestarts      int
	// Address is the host:port of the portmapper's UDP and TCP sockets.
	Address string
	// Socket is the local socket that registrations and the SET/UNSET
	// churn go through; empty sends them over TCP to Address (which
	// rpcbind refuses from an unprivileged port).
	Socket string
	// Registrations lists the table sizes to measure at, in order.
	Registrations []int
	// Loads names the loads to drive at each size (see Loads).
	Loads []string
	// Clients is the number of closed-loop clients of each load.
	Clients int
	// Duration and MaxRequests bound each load, whichever ends it first;
	// Warmup runs the load unmeasured before it.
	Duration    time.Duration
	Warmup      time.Duration
	MaxRequests int
	// Timeout bounds each request; a request that times out is an error.
	Timeout time.Duration
	// UnregisteredPercent of the lookups ask about programs that are not
	// registered.
	UnregisteredPercent int
	// FreshLookups, if positive, bounds a stream of lookups of ever-new
	// unregistered programs lasting at most FreshDuration, with the
	// daemon's RSS taken before and after.
	FreshLookups  int
	FreshDuration time.Duration
	// DurableRegistrations, if not empty, are the table sizes the
	// durable-SET loads run at (durable.go), on DurableDaemon: a command
	// line that makes each change durable before answering it, or empty
	// when the daemon has none (Daemon is then measured, for reference).
	DurableRegistrations []int
	DurableDaemon        []string
	// RegisterTimeout bounds registering one table size.
	RegisterTimeout time.Duration
	// Progress, if set, receives a line per step.
	Progress io.Writer
}

// DefaultConfig returns the configuration that `portmapd-bench run`
// starts from.
func DefaultConfig() Config {
	return Config{
		Address:             "127.0.0.1:111",
		Socket:              "/run/rpcbind.sock",
		Registrations:       []int{10, 100, 10000, 100000},
		Loads:               slices.Clone(Loads),
		Clients:             16,
		Duration:            5 * time.Second,
		Warmup:              200 * time.Millisecond,
		MaxRequests:         2_000_000,
		Timeout:             time.Second,
		UnregisteredPercent: 10,
		FreshLookups:        200_000,
		FreshDuration:       5 * time.Second,
		WarmRegistrations:   10000,
		WarmRestarts:        5,
		RegisterTimeout:     5 * time.Minute,
	}
}

// maxClients keeps every client's churn programs apart (client<<16 stays
// below the next range).
const maxClients = 256

func (c *Config) check() error {
	switch {
	case c.Address == "":
		return errors.New("no address")
	case c.Clients < 1 || c.Clients > maxClients:
		return fmt.Errorf("clients: %d is not between 1 and %d", c.Clients, maxClients)
	case c.Duration <= 0 || c.MaxRequests <= 0:
		return errors.New("every load needs a positive duration and request count")
	case c.Timeout <= 0:
		return errors.New("timeout must be positive")
	case c.UnregisteredPercent < 0 || c.UnregisteredPercent > 100:
		return fmt.Errorf("unregistered share: %d%% is not a percentage", c.UnregisteredPercent)
	case c.FreshLookups > 0 && c.FreshDuration <= 0:
		return errors.New("fresh lookups need a positive duration")
	}
	for _, n := range c.Registrations {
		if n < 0 || n > progUnregistered-progRegistered {
			return fmt.Errorf("registrations: %d out of range", n)
		}
	}
	for _, l := range c.Loads {
		if !slices.Contains(Loads, l) {
			return fmt.Errorf("unknown load %q (known: %v)", l, Loads)
		}
	}
	return nil
}

// Result is everything one run measured of one daemon.
type Result struct {
	Name                string   `json:"name"`
	Command             []string `json:"command,omitempty"`
	Clients             int      `json:"clients"`
	DurationSeconds     float64  `json:"duration_seconds"`
	MaxRequests         int      `json:"max_requests"`
	UnregisteredPercent int      `json:"unregistered_percent"`
	// StartupUs lists the time from spawn to first answer of every start
	// of Daemon, each with an empty table.
	StartupUs []float64   `json:"startup_us,omitempty"`
	Phases    []Phase     `json:"phases"`
	Fresh     *LoadResult `json:"fresh,omitempty"`
	Warm      *WarmStart  `json:"warm,omitempty"`
	// Durable is what the durable-SET loads measured (durable.go).
	Durable []LoadResult `json:"durable,omitempty"`
	// Storm holds the new-connection-per-call loads (RunStorm).
	Storm *StormRun `json:"storm,omitempty"`
	// Notes records what went wrong without stopping the run.
	Notes []string `json:"notes,omitempty"`
	// LoadAvg samples the machine's one-minute load average at the start
	// and end of each run: other work on the machine makes figures noisy.
	LoadAvg []float64 `json:"load_avg,omitempty"`
}

// Merge adds o, a run of the same daemon with the same loads at other
// table sizes, to r: compare interleaves the daemons table size by table
// size, so that a change in the machine's load hits both alike.
func (r *Result) Merge(o *Result) {
	r.StartupUs = append(r.StartupUs, o.StartupUs...)
	r.Phases = append(r.Phases, o.Phases...)
	r.Notes = append(r.Notes, o.Notes...)
	r.LoadAvg = append(r.LoadAvg, o.LoadAvg...)
	r.Durable = append(r.Durable, o.Durable...)
	if o.Fresh != nil {
		r.Fresh = o.Fresh
	}
	if o.Warm != nil {
		r.Warm = o.Warm
	}
	if o.Storm != nil {
		r.Storm = o.Storm
	}
}

// Phase is one table size and the loads driven at it.
type Phase struct {
	Registrations int `json:"registrations"`
	// Registered is how many of them the daemon accepted within the
	// registration timeout; the loads run against those.
	Registered      int          `json:"registered"`
	RegisterSeconds float64      `json:"register_seconds"`
	RegisterError   string       `json:"register_error,omitempty"`
	RSSIdleKB       int64        `json:"rss_idle_kb,omitempty"`
	RSSRegisteredKB int64        `json:"rss_registered_kb,omitempty"`
	Loads           []LoadResult `json:"loads"`
}

// WarmStart is a restart that should bring the registrations back.
type WarmStart struct {
	Command       []string `json:"command"`
	Registrations int      `json:"registrations"`
	// StartupUs lists each restart's time from spawn to first answer;
	// Restored is the fewest registrations the DUMP after one listed.
	StartupUs []float64 `json:"startup_us"`
	Restored  int       `json:"restored"`
	RSSKB     int64     `json:"rss_kb,omitempty"`
}

// Run measures one daemon as cfg says. After an error it returns what it
// measured so far with the error.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &runner{cfg: &cfg, res: &Result{
		Name: cfg.Name, Command: cfg.Daemon, Clients: cfg.Clients,
		DurationSeconds: cfg.Duration.Seconds(), MaxRequests: cfg.MaxRequests, UnregisteredPercent: cfg.UnregisteredPercent,
	}}
	r.sampleLoad()
	defer r.sampleLoad()
	if len(cfg.Daemon) == 0 {
		// Leave a daemon we did not start as we found it, even when the
		// run failed or was interrupted.
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.RegisterTimeout)
			defer cancel()
			if cerr := r.setRegistered(cctx, 0); cerr != nil {
				err = errors.Join(err, fmt.Errorf("removing the registrations: %w", cerr))
			}
		}()
	}
	for _, n := range cfg.Registrations {
		ph, err := r.phase(ctx, n)
		r.res.Phases = append(r.res.Phases, ph)
		if err != nil {
			return r.res, fmt.Errorf("%d registrations: %w", n, err)
		}
	}
	if cfg.FreshLookups > 0 {
		if err := r.fresh(ctx); err != nil {
			return r.res, fmt.Errorf("fresh lookups: %w", err)
		}
	}
	if len(cfg.DurableRegistrations) > 0 {
		if err := r.durable(ctx); err != nil {
			return r.res, fmt.Errorf("durable SET: %w", err)
		}
	}
	if len(cfg.WarmDaemon) > 0 && cfg.WarmRegistrations > 0 {
		if err := r.warm(ctx); err != nil {
			if ctx.Err() != nil {
				return r.res, fmt.Errorf("warm start: %w", err)
			}
			// A daemon without the warm-start option it was given fails
			// this measurement only; the table says why.
			r.res.Notes = append(r.res.Notes, "warm start: "+err.Error())
			r.progress("warm start not measured: %v", err)
		}
	}
	return r.res, nil
}

type runner struct {
	cfg *Config
	res *Result
	// have is how many registrations a daemon we did not spawn holds.
	have int
}

func (r *runner) sampleLoad() {
	if l, err := loadAvg(); err == nil {
		r.res.LoadAvg = append(r.res.LoadAvg, l)
	}
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "%s: "+format+"\n", append([]any{r.res.Name}, args...)...)
	}
}

// changeNetwork is where SETs and UNSETs go.
func (r *runner) changeNetwork() (network, addr string) {
	if r.cfg.Socket != "" {
		return "unix", r.cfg.Socket
	}
	return "tcp", r.cfg.Address
}

// start spawns the daemon (when the run spawns one) and waits for its
// first answer. It returns the PID to measure and a function that stops
// the daemon.
func (r *runner) start(ctx context.Context, argv []string) (pid int, startup time.Duration, stop func() error, err error) {
	if len(argv) == 0 {
		return r.cfg.Pid, 0, func() error { return nil }, nil
	}
	// Whatever answers first is taken for the spawned daemon: make sure
	// it cannot be another one (a daemon left running, or the machine's).
	if answersNull(r.cfg.Address) {
		return 0, 0, nil, fmt.Errorf("a portmapper already answers at %s; the figures would be its", r.cfg.Address)
	}
	p, started, err := spawn(argv)
	if err != nil {
		return 0, 0, nil, err
	}
	startup, err = waitReady(ctx, p, started, r.cfg.Address)
	if err != nil {
		_ = stopDaemon(p) // it did not start: err says why
		return 0, 0, nil, err
	}
	return p.Pid(), startup, func() error { return stopDaemon(p) }, nil
}

// setRegistered brings a daemon that lives across phases to n
// registrations.
func (r *runner) setRegistered(ctx context.Context, n int) error {
	network, addr := r.changeNetwork()
	var err error
	var done int
	switch {
	case n > r.have:
		done, err = changeRange(ctx, network, addr, pmap.ProcSet, r.have, n, r.cfg.Timeout)
		r.have += done
	case n < r.have:
		done, err = changeRange(ctx, network, addr, pmap.ProcUnset, n, r.have, r.cfg.Timeout)
		r.have -= done
	}
	return err
}

func (r *runner) phase(ctx context.Context, n int) (Phase, error) {
	ph := Phase{Registrations: n}
	pid, startup, stop, err := r.start(ctx, r.cfg.Daemon)
	if err != nil {
		return ph, err
	}
	defer func() {
		if err := stop(); err != nil {
			r.res.Notes = append(r.res.Notes, err.Error())
		}
	}()
	if len(r.cfg.Daemon) > 0 {
		r.have = 0
		r.res.StartupUs = append(r.res.StartupUs, us(startup))
		r.progress("started in %.1f ms", us(startup)/1000)
	}
	if pid > 0 {
		if ph.RSSIdleKB, err = idleRSS(ctx, pid); err != nil {
			return ph, err
		}
	}

	rctx, cancel := context.WithTimeout(ctx, r.cfg.RegisterTimeout)
	t0 := time.Now()
	err = r.setRegistered(rctx, n)
	cancel()
	ph.RegisterSeconds = time.Since(t0).Seconds()
	ph.Registered = min(r.have, n)
	if err != nil {
		if ctx.Err() != nil {
			return ph, ctx.Err()
		}
		// A daemon too slow to take the whole table within the timeout is
		// still measured with the part it took.
		ph.RegisterError = err.Error()
		r.progress("registered %d of %d in %.1f s: %v", ph.Registered, n, ph.RegisterSeconds, err)
	} else {
		r.progress("registered %d in %.2f s", n, ph.RegisterSeconds)
	}
	if pid > 0 {
		ph.RSSRegisteredKB, _ = procRSS(pid)
	}

	env := &loadEnv{cfg: r.cfg, regs: ph.Registered, fresh: new(atomic.Uint32)}
	for _, name := range r.cfg.Loads {
		lr, err := r.measure(ctx, env, name, r.cfg.Duration, pid)
		ph.Loads = append(ph.Loads, lr)
		if err != nil {
			return ph, err
		}
	}
	return ph, nil
}

// measure warms a load up, then measures it.
func (r *runner) measure(ctx context.Context, env *loadEnv, name string, d time.Duration, pid int) (LoadResult, error) {
	maxReq := r.cfg.MaxRequests
	if name == LoadFresh {
		maxReq = r.cfg.FreshLookups
	}
	if r.cfg.Warmup > 0 && name != LoadFresh {
		if _, err := runLoad(ctx, env, name, r.cfg.Warmup, maxReq, 0); err != nil {
			return LoadResult{Name: name, Registrations: env.regs}, err
		}
	}
	lr, err := runLoad(ctx, env, name, d, maxReq, pid)
	if err != nil {
		return lr, err
	}
	line := fmt.Sprintf("%-13s %6d regs: %9.0f req/s  p50 %7.1f µs  p99 %8.1f µs  p99.9 %8.1f µs  errors %d",
		name, env.regs, lr.PerSecond, lr.P50us, lr.P99us, lr.P999us, lr.Errors)
	if lr.DaemonCPUus > 0 {
		line += fmt.Sprintf("  cpu %.2f µs/req", lr.DaemonCPUus)
	}
	if lr.FirstError != "" {
		line += "  first error: " + lr.FirstError
	}
	r.progress("%s", line)
	return lr, nil
}

// fresh drives the stream of ever-new unregistered lookups against a
// fresh daemon, so that nothing else has grown its memory first.
func (r *runner) fresh(ctx context.Context) error {
	pid, startup, stop, err := r.start(ctx, r.cfg.Daemon)
	if err != nil {
		return err
	}
	defer func() {
		if err := stop(); err != nil {
			r.res.Notes = append(r.res.Notes, err.Error())
		}
	}()
	if len(r.cfg.Daemon) > 0 {
		r.res.StartupUs = append(r.res.StartupUs, us(startup))
	}
	env := &loadEnv{cfg: r.cfg, regs: 0, fresh: new(atomic.Uint32)}
	// The warm-up asks about the fixed pool of unregistered programs, so
	// the daemon's buffers and goroutines exist before RSS is first read.
	if r.cfg.Warmup > 0 {
		if _, err := runLoad(ctx, env, LoadGetportUDP, r.cfg.Warmup, r.cfg.MaxRequests, 0); err != nil {
			return err
		}
	}
	lr, err := r.measure(ctx, env, LoadFresh, r.cfg.FreshDuration, pid)
	r.res.Fresh = &lr
	if err == nil && pid > 0 {
		r.progress("RSS %d kB before %d fresh lookups, %d kB after", lr.RSSBeforeKB, lr.Requests, lr.RSSAfterKB)
	}
	return err
}

// warm registers WarmRegistrations programs with WarmDaemon, then restarts
// it WarmRestarts times and times each restart: one start is at the mercy
// of whatever else the machine does in those milliseconds.
func (r *runner) warm(ctx context.Context) error {
	cfg := r.cfg
	w := &WarmStart{Command: cfg.WarmDaemon, Registrations: cfg.WarmRegistrations}
	_, _, stop, err := r.start(ctx, cfg.WarmDaemon)
	if err != nil {
		return err
	}
	network, addr := r.changeNetwork()
	rctx, cancel := context.WithTimeout(ctx, cfg.RegisterTimeout)
	_, err = changeRange(rctx, network, addr, pmap.ProcSet, 0, cfg.WarmRegistrations, cfg.Timeout)
	cancel()
	for range max(cfg.WarmRestarts, 1) {
		if serr := stop(); err == nil && serr != nil {
			err = serr
		}
		if err != nil {
			return err
		}
		var pid int
		var startup time.Duration
		if pid, startup, stop, err = r.start(ctx, cfg.WarmDaemon); err != nil {
			return err
		}
		w.StartupUs = append(w.StartupUs, us(startup))
		// The fewest any restart brought back is reported: a daemon that
		// answered early with less would look fast.
		c := caller{t: newStreamTransport("tcp", cfg.Address, 10*cfg.Timeout)}
		_, restored, derr := c.dump()
		c.t.close()
		if err = derr; err != nil {
			continue // stopped and reported below
		}
		if len(w.StartupUs) == 1 || restored < w.Restored {
			w.Restored = restored
		}
		if pid > 0 {
			w.RSSKB, _ = procRSS(pid)
		}
	}
	if serr := stop(); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return err
	}
	r.res.Warm = w
	r.progress("warm restarts with %d registrations answered in %.1f ms (median of %d); %d restored",
		w.Registrations, median(w.StartupUs)/1000, len(w.StartupUs), w.Restored)
	return nil
}
