package state

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
)

// Writer is a group commit in front of a Store: many SET/UNSET handlers
// wait for their change to be durable while one goroutine saves whole
// snapshots, so that the changes arriving during one fsync share the next.
// Nothing is delayed on purpose: a lone change is written at once, and a
// burst costs about two saves however many callers it has.
type Writer struct {
	save     func([]pmap.Mapping) error
	snapshot func() ([]pmap.Mapping, uint64)
	log      *zap.Logger

	kick chan struct{} // capacity 1: "a snapshot newer than any taken is wanted"
	quit chan struct{}
	done chan struct{}
	stop sync.Once

	mu       sync.Mutex
	durable  uint64        // generation of the newest snapshot known to be on disk
	attempts uint64        // snapshots taken so far
	failed   failure       // the latest attempt that did not reach the disk
	flushed  chan struct{} // closed, and replaced, after every attempt
	closed   bool
	closeErr error

	saves atomic.Uint64 // successful saves, for tests and benchmarks
}

type failure struct {
	attempt, gen uint64
	err          error
}

// NewWriter starts the background writer. snapshot must return the whole
// table together with its generation, taken atomically under the registry's
// lock, the generation growing by at least one on every change. It is
// called from the writer's goroutine only.
func NewWriter(s *Store, snapshot func() ([]pmap.Mapping, uint64), log *zap.Logger) *Writer {
	if log == nil {
		log = zap.NewNop()
	}
	w := &Writer{
		save:     s.Save,
		snapshot: snapshot,
		log:      log.Named("state"),
		kick:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		flushed:  make(chan struct{}),
	}
	go w.run()
	return w
}

// Wait returns nil once a snapshot whose generation is at least gen is on
// disk. Call it after the change that produced gen and before answering the
// client. It returns the save's error when the attempt that should have
// carried gen failed (the change is in memory only; the next change retries
// the whole table), ctx's error when ctx ends first, and ErrClosed after
// Close when gen never became durable.
func (w *Writer) Wait(ctx context.Context, gen uint64) error {
	w.mu.Lock()
	if gen <= w.durable {
		w.mu.Unlock()
		return nil
	}
	// Only an attempt that starts after this point is sure to have seen
	// the caller's change, so only its failure is the caller's failure.
	start := w.attempts
	w.mu.Unlock()

	select {
	case w.kick <- struct{}{}:
	default: // a kick is already pending; its snapshot will come after this change
	}

	for {
		w.mu.Lock()
		switch {
		case gen <= w.durable:
			w.mu.Unlock()
			return nil
		case w.failed.attempt > start && w.failed.gen >= gen:
			err := w.failed.err
			w.mu.Unlock()
			return err
		case w.closed:
			w.mu.Unlock()
			return ErrClosed
		}
		flushed := w.flushed
		w.mu.Unlock()

		select {
		case <-flushed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// MarkDurable records that the table of generation gen is on disk already,
// as after a warm start that just read it from there, so that Close does
// not write the same table again.
func (w *Writer) MarkDurable(gen uint64) {
	w.mu.Lock()
	w.durable = max(w.durable, gen)
	w.mu.Unlock()
}

// Close saves the latest snapshot if it is newer than what is on disk, so
// that changes nobody waited for are kept too, then stops the writer. It
// returns that last save's error. Later Waits for newer generations fail
// with ErrClosed. Close is idempotent.
func (w *Writer) Close() error {
	w.stop.Do(func() { close(w.quit) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closeErr
}

func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
			w.flush()
		case <-w.quit:
			err := w.flush()
			w.mu.Lock()
			w.closed = true
			w.closeErr = err
			close(w.flushed)
			w.flushed = make(chan struct{})
			w.mu.Unlock()
			return
		}
	}
}

// flush takes one snapshot and saves it unless it is already on disk, then
// wakes every waiter to look at the outcome.
func (w *Writer) flush() error {
	// Count the attempt before taking the snapshot: a waiter that saw the
	// old count changed the table before this snapshot.
	w.mu.Lock()
	w.attempts++
	attempt, durable := w.attempts, w.durable
	w.mu.Unlock()

	ms, gen := w.snapshot()
	var err error
	if gen > durable {
		if err = w.save(ms); err != nil {
			err = fmt.Errorf("registrations of generation %d are not on disk: %w", gen, err)
			w.log.Error("cannot save registrations", zap.Uint64("generation", gen), zap.Error(err))
		} else {
			w.saves.Add(1)
		}
	}

	w.mu.Lock()
	if err != nil {
		w.failed = failure{attempt: attempt, gen: gen, err: err}
	} else if gen > w.durable {
		w.durable = gen
	}
	close(w.flushed)
	w.flushed = make(chan struct{})
	w.mu.Unlock()
	return err
}
