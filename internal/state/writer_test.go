package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

// registry is the smallest stand-in for pmap's: a table and a generation
// that grows with every change, both read under one lock.
type registry struct {
	mu  sync.Mutex
	ms  []pmap.Mapping
	gen uint64
}

func (r *registry) add(m pmap.Mapping) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ms = append(r.ms, m)
	r.gen++
	return r.gen
}

func (r *registry) snapshot() ([]pmap.Mapping, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ms), r.gen
}

func row(g, i int) pmap.Mapping {
	return pmap.Mapping{Prog: 0x40000000 + uint32(g), Vers: uint32(i), Netid: "tcp",
		Addr: fmt.Sprintf("127.0.0.1.%d.%d", g, i), Owner: "superuser"}
}

// Every Wait that returned nil finds its change in the file on disk.
func TestWriterGroupCommit(t *testing.T) {
	const goroutines, perGoroutine = 32, 25
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	defer w.Close()

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				m := row(g, i)
				if err := w.Wait(context.Background(), reg.add(m)); err != nil {
					t.Errorf("Wait: %v", err)
					return
				}
				if !slices.Contains(readSaved(t, s.Path()), m) {
					t.Errorf("Wait returned before %v was on disk", m)
					return
				}
			}
		})
	}
	wg.Wait()

	const changes = goroutines * perGoroutine
	t.Logf("%d changes, %d saves", changes, w.saves.Load())
	if got := readSaved(t, s.Path()); len(got) != changes {
		t.Errorf("file holds %d rows, want %d", len(got), changes)
	}
}

// Changes that arrive while a save is in flight share the next one: with a
// disk as slow as a real fsync, a burst from many callers costs about two
// saves per round, not one per change.
func TestWriterCoalesces(t *testing.T) {
	const goroutines, rounds = 32, 10
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	defer w.Close()
	w.save = func(ms []pmap.Mapping) error {
		time.Sleep(5 * time.Millisecond) // an fsync
		return s.Save(ms)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				if err := w.Wait(context.Background(), reg.add(row(g, i))); err != nil {
					t.Errorf("Wait: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	const changes = goroutines * rounds
	saves := w.saves.Load()
	t.Logf("%d changes, %d saves", changes, saves)
	if saves > changes/4 {
		t.Errorf("%d saves for %d concurrent changes: not coalescing", saves, changes)
	}
}

func TestWriterLoneChangeIsWrittenAtOnce(t *testing.T) {
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	defer w.Close()
	for i := range 3 {
		gen := reg.add(row(0, i))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := w.Wait(ctx, gen)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := w.saves.Load(); n != 3 {
		t.Errorf("%d saves for 3 sequential changes, want 3", n)
	}
	// Waiting again for what is durable costs nothing.
	if err := w.Wait(context.Background(), 2); err != nil || w.saves.Load() != 3 {
		t.Errorf("Wait for a durable generation: %v, saves %d", err, w.saves.Load())
	}
}

func TestWriterFailure(t *testing.T) {
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	defer w.Close()
	errDisk := errors.New("disk full")
	var failing atomic.Bool
	failing.Store(true)
	w.save = func(ms []pmap.Mapping) error {
		if failing.Load() {
			return errDisk
		}
		return s.Save(ms)
	}

	gen := reg.add(row(0, 0))
	if err := w.Wait(context.Background(), gen); !errors.Is(err, errDisk) {
		t.Fatalf("Wait while the disk fails: %v, want %v", err, errDisk)
	}
	// A later caller is not handed the old failure: it gets a new attempt.
	failing.Store(false)
	if err := w.Wait(context.Background(), gen); err != nil {
		t.Fatalf("Wait after the disk recovered: %v", err)
	}
	if got := readSaved(t, s.Path()); !slices.Equal(got, []pmap.Mapping{row(0, 0)}) {
		t.Errorf("file holds %v", got)
	}
}

func TestWriterWaitHonoursContext(t *testing.T) {
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	release := make(chan struct{})
	w.save = func(ms []pmap.Mapping) error { <-release; return s.Save(ms) }

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Wait(ctx, reg.add(row(0, 0))); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with a stuck disk: %v, want deadline exceeded", err)
	}
	close(release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readSaved(t, s.Path()); len(got) != 1 {
		t.Errorf("change lost once the disk came back: %v", got)
	}
}

func TestWriterClose(t *testing.T) {
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	// Changes nobody waited for (say, the table restored at start-up).
	durable := reg.add(row(0, 0))
	reg.add(row(0, 1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readSaved(t, s.Path()); len(got) != 2 {
		t.Errorf("Close did not flush: %v", got)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Wait(context.Background(), durable); err != nil {
		t.Errorf("Wait for a flushed generation after Close: %v", err)
	}
	if err := w.Wait(context.Background(), reg.add(row(0, 2))); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait for a new change after Close: %v, want ErrClosed", err)
	}
}

// A table just read from disk is not written again at Close; a change
// after it is.
func TestWriterMarkDurable(t *testing.T) {
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	w.MarkDurable(reg.add(row(0, 0)))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := w.saves.Load(); n != 0 {
		t.Errorf("%d saves of a table marked durable", n)
	}

	w = NewWriter(s, reg.snapshot, nil)
	w.MarkDurable(reg.add(row(0, 1)))
	reg.add(row(0, 2))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readSaved(t, s.Path()); len(got) != 3 {
		t.Errorf("Close after a later change saved %v, want 3 rows", got)
	}
}

func TestWriterCloseReportsFailedFlush(t *testing.T) {
	s := openStore(t)
	var reg registry
	w := NewWriter(s, reg.snapshot, nil)
	errDisk := errors.New("read-only file system")
	w.save = func([]pmap.Mapping) error { return errDisk }
	reg.add(row(0, 0))
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close: %v, want %v", err, errDisk)
	}
}

// Waits racing Close never hang: each returns nil or ErrClosed.
func TestWriterWaitRacingClose(t *testing.T) {
	for range 20 {
		s := openStore(t)
		var reg registry
		w := NewWriter(s, reg.snapshot, nil)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 5 {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := w.Wait(ctx, reg.add(row(g, i)))
					cancel()
					if err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("Wait: %v", err)
					}
				}
			})
		}
		w.Close()
		wg.Wait()
	}
}
