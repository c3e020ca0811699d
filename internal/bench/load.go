package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

// Names of the loads, in the order a run drives them. DUMP comes last: its
// large replies raise the daemon's RSS, which would then be charged to the
// loads after it.
const (
	LoadGetportUDP = "getport-udp"
	LoadGetportTCP = "getport-tcp"
	LoadGetaddrUDP = "getaddr-udp"
	LoadDumpTCP    = "dump-tcp"
	LoadChurn      = "set-unset"
	// LoadFresh asks GETPORT over UDP about a program never asked about
	// before, every time: what a scanner or a misconfigured client does,
	// and what grows rpcbind's statistics list without bound.
	LoadFresh = "fresh-lookups"
)

// Loads lists the loads a run drives at every registration count.
var Loads = []string{LoadGetportUDP, LoadGetportTCP, LoadGetaddrUDP, LoadChurn, LoadDumpTCP}

// loadDesc says in a few words what each load does, for help and tables.
var loadDesc = map[string]string{
	LoadGetportUDP: "PMAP v2 GETPORT over UDP",
	LoadGetportTCP: "PMAP v2 GETPORT over persistent TCP connections",
	LoadGetaddrUDP: "RPCBIND v4 GETADDR over UDP",
	LoadDumpTCP:    "PMAP v2 DUMP over TCP",
	LoadChurn:      "RPCBIND v3 SET then UNSET over the local socket",
	LoadFresh:      "GETPORT over UDP of ever-new unregistered programs",
}

// LoadResult is what one load measured.
type LoadResult struct {
	Name          string `json:"name"`
	Registrations int    `json:"registrations"`
	Clients       int    `json:"clients"`
	Requests      int64  `json:"requests"`
	Errors        int64  `json:"errors"`
	// FirstError shows what went wrong, when something did.
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
	MaxUs      float64 `json:"max_us"`
	// DaemonCPUus is the daemon's CPU time per request; ClientCPUus the
	// benchmark's own, which shares the machine's cores with it.
	DaemonCPUus float64 `json:"daemon_cpu_us_per_req,omitempty"`
	ClientCPUus float64 `json:"client_cpu_us_per_req,omitempty"`
	// RSSBeforeKB and RSSAfterKB are the daemon's RSS around the load.
	RSSBeforeKB int64 `json:"rss_before_kb,omitempty"`
	RSSAfterKB  int64 `json:"rss_after_kb,omitempty"`
}

// loadEnv is what the clients of one load share.
type loadEnv struct {
	cfg   *Config
	regs  int            // programs registered: progRegistered + [0, regs)
	fresh *atomic.Uint32 // next fresh program
}

// worker is one closed-loop client: it sends a call, waits for the answer,
// checks it, and only then sends the next.
type worker struct {
	id  int
	env *loadEnv
	c   caller
	rng *rand.Rand
	// churnK counts this client's SET/UNSET calls: even ones SET, odd ones
	// UNSET what the previous one set.
	churnK uint32
}

// lookupTarget picks the program a lookup asks about and the port the
// answer must carry: 0 for an unregistered one.
func (w *worker) lookupTarget() (prog, port uint32) {
	regs := w.env.regs
	if regs == 0 || w.rng.IntN(100) < w.env.cfg.UnregisteredPercent {
		return progUnregistered + uint32(w.rng.IntN(unregisteredPool)), 0
	}
	i := w.rng.IntN(regs)
	return progRegistered + uint32(i), portOf(i)
}

func (w *worker) checkPort(got, want uint32, prog uint32) error {
	if got != want {
		return fmt.Errorf("%w: program %#x: port %d, want %d", errWrongAnswer, prog, got, want)
	}
	return nil
}

// step makes one request of load name.
func (w *worker) step(name string) error {
	switch name {
	case LoadGetportUDP, LoadGetportTCP:
		prog, want := w.lookupTarget()
		got, err := w.c.getport(prog)
		if err != nil {
			return err
		}
		return w.checkPort(got, want, prog)
	case LoadGetaddrUDP:
		prog, want := w.lookupTarget()
		got, err := w.c.getaddr(prog)
		if err != nil {
			return err
		}
		return w.checkPort(got, want, prog)
	case LoadDumpTCP:
		_, ours, err := w.c.dump()
		if err != nil {
			return err
		}
		if ours != w.env.regs {
			return fmt.Errorf("%w: DUMP listed %d of the %d registrations", errWrongAnswer, ours, w.env.regs)
		}
		return nil
	case LoadChurn:
		k := w.churnK
		prog := progChurn + uint32(w.id)<<16 + (k/2)%(1<<16)
		var err error
		if k%2 == 0 {
			// One address per client: if an UNSET was lost to a timeout,
			// setting the same mapping again still answers TRUE.
			err = w.c.change(pmap.ProcSet, prog, uaddrOf(portOf(w.id)))
		} else {
			err = w.c.change(pmap.ProcUnset, prog, "")
		}
		// After a failure the pair starts again with a SET: an UNSET of
		// something not registered answers TRUE anyway.
		w.churnK = k + 1
		if err != nil && k%2 == 0 {
			w.churnK = k + 2
		}
		return err
	case LoadFresh:
		prog := progFresh + w.env.fresh.Add(1)
		got, err := w.c.getport(prog)
		if err != nil {
			return err
		}
		return w.checkPort(got, 0, prog)
	}
	return fmt.Errorf("unknown load %q", name)
}

// dumpTimeoutFactor stretches the request timeout for DUMP, whose reply
// for 100,000 registrations is 2 MB that sixteen clients ask for at once.
const dumpTimeoutFactor = 10

// finish undoes what the client left behind: a SET whose UNSET the end of
// the load cut off. It is not measured.
func (w *worker) finish() {
	if w.churnK%2 == 1 {
		_ = w.step(LoadChurn) // cleanup, not measured: a failure leaves one row behind
	}
}

// newTransport opens what load name talks over.
func newTransport(cfg *Config, name string) (transport, error) {
	switch name {
	case LoadGetportTCP:
		return newStreamTransport("tcp", cfg.Address, cfg.Timeout), nil
	case LoadDumpTCP:
		return newStreamTransport("tcp", cfg.Address, dumpTimeoutFactor*cfg.Timeout), nil
	case LoadChurn:
		if cfg.Socket != "" {
			return newStreamTransport("unix", cfg.Socket, cfg.Timeout), nil
		}
		return newStreamTransport("tcp", cfg.Address, cfg.Timeout), nil
	}
	return dialUDP(cfg.Address, cfg.Timeout)
}

// runLoad drives load name with cfg.Clients closed-loop clients until
// maxRequests requests have been made in all or d has passed, whichever
// comes first, and measures it. When pid is positive the daemon's CPU time
// and RSS are read around the load. Every client draws its programs from
// a generator seeded by its number and the table size, so two daemons get
// the same sequence of questions.
func runLoad(ctx context.Context, env *loadEnv, name string, d time.Duration, maxRequests int, pid int) (LoadResult, error) {
	cfg := env.cfg
	clients := cfg.Clients
	res := LoadResult{Name: name, Registrations: env.regs, Clients: clients}
	workers := make([]*worker, clients)
	for i := range workers {
		t, err := newTransport(cfg, name)
		if err != nil {
			for _, w := range workers[:i] {
				w.c.t.close()
			}
			return res, err
		}
		workers[i] = &worker{id: i, env: env, c: caller{t: t, xid: uint32(i) << 24},
			rng: rand.New(rand.NewPCG(uint64(i), uint64(env.regs)))}
	}
	defer func() {
		for _, w := range workers {
			w.c.t.close()
		}
	}()

	// Each client gets an equal share of the count (the first few one
	// more, so the shares add up to it); its latency samples go into a
	// slice allocated now, so that measuring allocates nothing.
	share := make([]int, clients)
	lat := make([][]time.Duration, clients)
	for i := range lat {
		share[i] = maxRequests / clients
		if i < maxRequests%clients {
			share[i]++
		}
		lat[i] = make([]time.Duration, 0, share[i])
	}
	errs := make([]int64, clients)
	firstErr := make([]error, clients)

	var rssBefore, rssAfter int64
	var cpu0, cpu1 time.Duration
	if pid > 0 {
		rssBefore, _ = procRSS(pid)
		cpu0, _ = procCPU(pid)
	}
	self0 := selfCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	ends := make([]time.Time, clients)
	for i, w := range workers {
		wg.Go(func() {
			for n := 0; n < share[i]; n++ {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					break
				}
				err := w.step(name)
				lat[i] = append(lat[i], time.Since(t0))
				if err != nil {
					if errs[i] == 0 {
						firstErr[i] = err
					}
					errs[i]++
				}
			}
			ends[i] = time.Now()
			w.finish()
		})
	}
	wg.Wait()
	// The load lasted until its slowest client finished: a request sent
	// just before the deadline may wait for its whole timeout.
	end := start
	for _, e := range ends {
		if e.After(end) {
			end = e
		}
	}
	elapsed := end.Sub(start)
	self1 := selfCPU()
	if pid > 0 {
		cpu1, _ = procCPU(pid)
		rssAfter, _ = procRSS(pid)
	}

	for i := range workers {
		res.Requests += int64(len(lat[i]))
		res.Errors += errs[i]
		if res.FirstError == "" && firstErr[i] != nil {
			res.FirstError = firstErr[i].Error()
		}
	}
	// Every request counts in the percentiles, failed ones too, at the
	// time they took: leaving out timeouts would flatter a daemon that
	// drops calls.
	l := summarize(lat)
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.PerSecond = float64(res.Requests) / res.Seconds
	}
	res.P50us, res.P99us, res.P999us, res.MaxUs = us(l.P50), us(l.P99), us(l.P999), us(l.Max)
	if res.Requests > 0 {
		if pid > 0 {
			res.DaemonCPUus = us(cpu1-cpu0) / float64(res.Requests)
		}
		res.ClientCPUus = us(self1-self0) / float64(res.Requests)
	}
	res.RSSBeforeKB, res.RSSAfterKB = rssBefore, rssAfter
	return res, ctx.Err()
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
