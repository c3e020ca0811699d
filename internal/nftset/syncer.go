package nftset

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
)

// Pauses of the syncer. Pause is how long changes gather before a batch:
// short against a service's start-up, long against a SET/UNSET loop.
// A failed batch is retried after retryMin, doubling up to retryMax.
//
// Every Resync the set is read back from the kernel and repaired: the
// daemon is not the only writer (a firewall reload, "nft -f", flushes the
// set and refills it with what the file declares; a hand edit adds or
// removes elements), and the kernel does not tell.
const (
	Pause    = 20 * time.Millisecond
	Resync   = 30 * time.Second
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
)

// Stats are the syncer's numbers for the metrics.
type Stats struct {
	// Elements the set holds as last read and written.
	Elements int
	// Batches written, and netlink errors met (reads and writes).
	Batches, Errors uint64
}

// Syncer keeps one set equal to the registered services.
type Syncer struct {
	k       *kernel
	log     *zap.Logger
	ownPort uint16

	mu   sync.Mutex
	want refs

	kick chan struct{}

	elements        atomic.Int64
	batches, errors atomic.Uint64

	cancel context.CancelFunc
	done   chan struct{}
}

// Open checks that the set exists with the right type and reads its
// elements. ownPort is the portmapper's own port, which is never added:
// the administrator's rule opens it.
func Open(spec Spec, ownPort int, log *zap.Logger) (*Syncer, error) {
	k, err := openKernel(spec)
	if err != nil {
		return nil, err
	}
	applied, err := k.elements()
	if err != nil {
		return nil, setError(spec, "cannot read its elements", err)
	}
	s := &Syncer{k: k, log: log, ownPort: uint16(ownPort), want: refs{}, kick: make(chan struct{}, 1)}
	s.elements.Store(int64(len(applied)))
	return s, nil
}

// Change is the registry's watch function (pmap.Registry.Watch): it
// counts the registration in or out and, if an element came or went,
// wakes the loop. It runs under the registry's lock: a map update and a
// channel send that never blocks.
func (s *Syncer) Change(m *pmap.Mapping, added bool) {
	e, ok := ElemOf(m)
	if !ok || e.Port == s.ownPort {
		return
	}
	s.mu.Lock()
	changed := s.want.change(e, added)
	s.mu.Unlock()
	if changed {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// Sync reads the set and writes the difference between it and the
// registrations, in one batch. Reading first makes the difference exact
// whoever else wrote to the set (a firewall reload, a hand edit), so a
// batch never deletes what is not there, and one batch repairs it all.
// The daemon calls Sync once at start, before the loop runs, so that a
// set it cannot write is an error then.
func (s *Syncer) Sync() error {
	applied, err := s.k.elements()
	if err != nil {
		s.errors.Add(1)
		return err
	}
	s.elements.Store(int64(len(applied)))
	s.mu.Lock()
	add, del := diff(s.want, applied)
	s.mu.Unlock()
	if len(add) == 0 && len(del) == 0 {
		return nil
	}
	s.batches.Add(1)
	if err := s.k.apply(add, del); err != nil {
		s.errors.Add(1)
		return err
	}
	s.elements.Add(int64(len(add) - len(del)))
	if ce := s.log.Check(zap.DebugLevel, "nftables set written"); ce != nil {
		ce.Write(zap.Int("added", len(add)), zap.Int("deleted", len(del)), zap.Int("elements", len(applied)+len(add)-len(del)))
	}
	return nil
}

// Start runs the loop that follows the registrations until Stop.
func (s *Syncer) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.run(ctx)
}

func (s *Syncer) run(ctx context.Context) {
	defer close(s.done)
	retry := retryMin
	resync := time.NewTicker(Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
		case <-s.kick:
			// Let a burst of changes gather into one batch.
			if !sleep(ctx, Pause) {
				return
			}
		}
		err := s.Sync()
		if err == nil {
			retry = retryMin
			continue
		}
		s.log.Error("nftables set not updated; retrying", zap.Stringer("set", s.k.spec),
			zap.Duration("retry_in", retry), zap.Error(err))
		if !sleep(ctx, retry) {
			return
		}
		retry = min(2*retry, retryMax)
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stop ends the loop. With empty the set is emptied (the table is not
// kept, so no service registered now will be there after a restart);
// otherwise it is brought to the table a last time and left as it is.
func (s *Syncer) Stop(empty bool) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	if !empty {
		return s.Sync()
	}
	if err := s.k.empty(); err != nil {
		s.errors.Add(1)
		return err
	}
	s.elements.Store(0)
	return nil
}

// Stats reports the set's size and the syncer's counts; safe at any time.
func (s *Syncer) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	return Stats{Elements: int(s.elements.Load()), Batches: s.batches.Load(), Errors: s.errors.Load()}
}
