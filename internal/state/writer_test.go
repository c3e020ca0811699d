package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

func row(g, i int) pmap.Mapping {
	return pmap.Mapping{Prog: 0x40000000 + uint32(g), Vers: uint32(i), Netid: "tcp",
		Addr: fmt.Sprintf("127.0.0.1.%d.%d", g, i), Owner: "superuser"}
}

// onDisk is what a daemon starting now would load from s's directory.
func onDisk(t testing.TB, s *Store) []pmap.Mapping {
	t.Helper()
	fresh, err := Open(s.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := fresh.Load()
	fresh.Close()
	return ms
}

// newWriter tracks a new registry holding ms (loaded from s, as a warm
// start does) with a Writer on s.
func newWriter(t testing.TB, s *Store) (*pmap.Registry, *Writer) {
	t.Helper()
	reg := pmap.NewRegistry()
	reg.SetAll(s.Load())
	w := NewWriter(s, reg, nil)
	t.Cleanup(func() { w.Close() })
	return reg, w
}

func set(t testing.TB, reg *pmap.Registry, w *Writer, m pmap.Mapping) error {
	t.Helper()
	ok, gen := reg.SetAt(m)
	if !ok {
		t.Fatalf("SET %v refused", m)
	}
	return w.Wait(context.Background(), gen)
}

// Every Wait that returned nil finds its change on disk, and concurrent
// callers share fsyncs.
func TestWriterGroupCommit(t *testing.T) {
	const goroutines, perGoroutine = 32, 25
	s := openStore(t)
	reg, w := newWriter(t, s)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				m := row(g, i)
				if err := set(t, reg, w, m); err != nil {
					t.Errorf("Wait: %v", err)
					return
				}
				if i%8 == 0 && !slices.Contains(onDisk(t, s), m) {
					t.Errorf("%v acknowledged but not on disk", m)
				}
			}
		})
	}
	wg.Wait()
	if got := onDisk(t, s); len(got) != goroutines*perGoroutine {
		t.Errorf("%d rows on disk, want %d", len(got), goroutines*perGoroutine)
	}
	writes := w.appends.Load() + w.saves.Load()
	t.Logf("%d changes, %d appends, %d saves", goroutines*perGoroutine, w.appends.Load(), w.saves.Load())
	if writes >= goroutines*perGoroutine {
		t.Errorf("%d writes for %d concurrent changes: nothing was shared", writes, goroutines*perGoroutine)
	}
}

// A change costs one appended record, not a rewrite of the table: the
// snapshot of a large table is not touched by later changes.
func TestWriterAppendsInsteadOfRewriting(t *testing.T) {
	s := openStore(t)
	if err := s.Save(table(10000)); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	reg, w := newWriter(t, s)
	for i := range 50 {
		if err := set(t, reg, w, row(1, i)); err != nil {
			t.Fatal(err)
		}
	}
	if ok, gen := reg.UnsetAt(row(1, 3).Prog, 3, "tcp", pmap.OwnerSuperuser); !ok || w.Wait(context.Background(), gen) != nil {
		t.Fatal("UNSET failed")
	}
	after, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if w.saves.Load() != 0 || !os.SameFile(before, after) {
		t.Errorf("%d whole saves; the snapshot was rewritten", w.saves.Load())
	}
	if w.appends.Load() != 51 {
		t.Errorf("%d appends for 51 sequential changes", w.appends.Load())
	}
	if got := onDisk(t, s); !slices.Equal(got, reg.Mappings()) {
		t.Errorf("disk holds %d rows, the table %d", len(got), reg.Len())
	}
}

// Once the journal outgrows the snapshot it is compacted beside the
// appends; whatever the moment, the files load as the table.
func TestWriterCompacts(t *testing.T) {
	s := openStore(t)
	reg, w := newWriter(t, s)
	for i := range 3000 {
		if err := set(t, reg, w, row(2, i)); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			ok, gen := reg.UnsetAt(row(2, i).Prog, uint32(i), "tcp", pmap.OwnerSuperuser)
			if !ok || w.Wait(context.Background(), gen) != nil {
				t.Fatal("UNSET failed")
			}
		}
		if i%500 == 499 && !slices.Equal(onDisk(t, s), reg.Mappings()) {
			t.Fatalf("after %d changes the files do not load as the table", i)
		}
	}
	if w.saves.Load() < 2 {
		t.Errorf("%d saves: the journal was never compacted", w.saves.Load())
	}
	jsize, ssize := s.sizes()
	if jsize > 2*max(ssize, minCompact)+4096 {
		t.Errorf("journal of %d bytes for a snapshot of %d", jsize, ssize)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(onDisk(t, s), reg.Mappings()) {
		t.Fatal("after Close the files do not load as the table")
	}
}

// A write that fails takes back every change it carried: the caller is
// told, the table no longer holds the row, nothing of it reaches the disk,
// and the next change writes again by itself once the disk allows it.
// Here the state directory is removed under the daemon, which turns
// appends into writes to a file nobody will read, and a file put in its
// place, so that the whole save that follows fails too.
func TestWriterFailureTakesChangesBack(t *testing.T) {
	s := openStore(t)
	reg, w := newWriter(t, s)
	kept := row(3, 1)
	if err := set(t, reg, w, kept); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.dir, nil, 0o600); err != nil { // the directory cannot come back
		t.Fatal(err)
	}
	lost := row(3, 2)
	if err := set(t, reg, w, lost); err == nil {
		t.Fatal("SET into a removed directory that cannot be made again succeeded")
	}
	if err := set(t, reg, w, row(3, 3)); err == nil {
		t.Fatal("SET with no directory to save into succeeded")
	}
	if got := reg.Mappings(); !slices.Equal(got, []pmap.Mapping{kept}) {
		t.Fatalf("after the failures the table is %v, want only %v", got, kept)
	}
	if _, ok, _ := reg.Lookup(kept.Prog, kept.Vers, "tcp"); !ok {
		t.Fatal("lookups stopped")
	}
	if w.Failures() != 2 {
		t.Errorf("Failures = %d, want 2", w.Failures())
	}
	// The disk comes back: the next change saves the whole table.
	if err := os.Remove(s.dir); err != nil {
		t.Fatal(err)
	}
	again := row(3, 4)
	if w.Failures() != 2 {
		t.Errorf("Failures = %d after recovery, want still 2", w.Failures())
	}
	if err := set(t, reg, w, again); err != nil {
		t.Fatalf("SET after the directory came back: %v", err)
	}
	if got := onDisk(t, s); !slices.Equal(got, []pmap.Mapping{kept, again}) {
		t.Fatalf("disk holds %v, want %v and %v", got, kept, again)
	}
}

// A state directory removed under the daemon is made again at once: the
// append finds its journal gone and the same change saves the whole table.
func TestWriterRemovedDirectoryIsMadeAgain(t *testing.T) {
	s := openStore(t)
	reg, w := newWriter(t, s)
	if err := set(t, reg, w, row(3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatal(err)
	}
	if err := set(t, reg, w, row(3, 2)); err != nil {
		t.Fatalf("SET after the directory was removed: %v", err)
	}
	if got := onDisk(t, s); !slices.Equal(got, []pmap.Mapping{row(3, 1), row(3, 2)}) {
		t.Errorf("the directory made again holds %v", got)
	}
	if w.Failures() != 0 {
		t.Errorf("Failures = %d, want 0", w.Failures())
	}
}

// An UNSET that fails puts the row back where it was.
func TestWriterFailedUnsetPutsTheRowBack(t *testing.T) {
	s := openStore(t)
	reg, w := newWriter(t, s)
	for i := range 3 {
		if err := set(t, reg, w, row(4, i)); err != nil {
			t.Fatal(err)
		}
	}
	want := reg.Mappings()
	os.RemoveAll(s.dir)
	os.WriteFile(s.dir, nil, 0o600)
	ok, gen := reg.UnsetAt(row(4, 1).Prog, 1, "tcp", pmap.OwnerSuperuser)
	if !ok {
		t.Fatal("UNSET refused")
	}
	if err := w.Wait(context.Background(), gen); err == nil {
		t.Fatal("UNSET on a broken disk succeeded")
	}
	if got := reg.Mappings(); !slices.Equal(got, want) {
		t.Fatalf("after the failed UNSET the table is %v, want %v", got, want)
	}
}

func TestWriterClose(t *testing.T) {
	s := openStore(t)
	reg, w := newWriter(t, s)
	// A change nobody waits for is written by Close.
	reg.Set(row(5, 1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, s); !slices.Equal(got, []pmap.Mapping{row(5, 1)}) {
		t.Errorf("after Close the disk holds %v", got)
	}
	_, gen := reg.SetAt(row(5, 2))
	if err := w.Wait(context.Background(), gen); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWriterWaitHonoursContext(t *testing.T) {
	s := openStore(t)
	reg, w := newWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, gen := reg.SetAt(row(6, 1))
	// The change is either written at once or the context ends first;
	// either way Wait returns, and the writer goes on.
	done := make(chan error, 1)
	go func() { done <- w.Wait(ctx, gen) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait ignored its cancelled context")
	}
	if err := set(t, reg, w, row(6, 2)); err != nil {
		t.Fatal(err)
	}
}
