package state

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/portmapd/portmapd/pmap"
)

// Benchmarks write to PORTMAPD_BENCH_DIR when set (point it at a tmpfs, or
// at the disk that will hold the state directory), else to the test's
// temporary directory under $TMPDIR. fsync dominates on a disk and is free
// on tmpfs, so always say which one the numbers came from.
func benchStore(b *testing.B) *Store {
	b.Helper()
	dir := os.Getenv("PORTMAPD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	s, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func table(n int) []pmap.Mapping {
	ms := make([]pmap.Mapping, n)
	for i := range ms {
		ms[i] = pmap.Mapping{Prog: 200000 + uint32(i), Vers: 1, Netid: "tcp6", Addr: "::1.3.232", Owner: "superuser"}
	}
	return ms
}

// BenchmarkSave is one durable replacement of the whole file.
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := benchStore(b)
			ms := table(n)
			for b.Loop() {
				if err := s.Save(ms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode is Save's CPU share: the table appended field by field.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ms := table(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeState(ms, "4df74def-ac61-40bb-97ca-01a2db6e2d81", 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoad is a warm start: read, check, decode in place.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := benchStore(b)
			if err := s.Save(table(n)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if ms := s.Load(); len(ms) != n {
					b.Fatalf("loaded %d", len(ms))
				}
			}
		})
	}
	// The worst a warm start meets: a journal as large as the snapshot
	// (compaction is due), half the table in each.
	b.Run("10000/half-journal", func(b *testing.B) {
		s := benchStore(b)
		ms := table(10000)
		if err := s.Save(ms[:5000]); err != nil {
			b.Fatal(err)
		}
		reg := pmap.NewRegistry()
		reg.SetAll(s.Load())
		w := NewWriter(s, reg, nil)
		for _, m := range ms[5000:] {
			_, gen := reg.SetAt(m)
			if err := w.Wait(context.Background(), gen); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		b.ReportAllocs()
		for b.Loop() {
			if got := s.Load(); len(got) != 10000 {
				b.Fatalf("loaded %d", len(got))
			}
		}
	})
}

// BenchmarkWait is a SET handler's durability cost under concurrency: each
// op is one SET into a table of 100 or 100,000 rows followed by Wait.
// ns/op is the throughput across all goroutines; writes/op shows the
// sharing, and the two table sizes that the cost does not grow with it.
func BenchmarkWait(b *testing.B) {
	for _, rows := range []int{100, 100000} {
		for _, par := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("rows=%d/goroutines=%d", rows, par), func(b *testing.B) {
				s := benchStore(b)
				if err := s.Save(table(rows)); err != nil {
					b.Fatal(err)
				}
				reg := pmap.NewRegistry()
				reg.SetAll(s.Load())
				w := NewWriter(s, reg, nil)
				defer w.Close()
				var next atomic.Uint32
				change := func() error {
					n := next.Add(1)
					_, gen := reg.SetAt(pmap.Mapping{Prog: 0x40000000 + n, Vers: 1, Netid: "tcp", Addr: "127.0.0.1.3.1", Owner: "superuser"})
					return w.Wait(context.Background(), gen)
				}
				if par == 1 {
					for b.Loop() {
						if err := change(); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					// RunParallel starts parallelism × GOMAXPROCS goroutines.
					b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
					b.ResetTimer() // b.Loop does this itself
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := change(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(w.appends.Load()+w.saves.Load())/float64(b.N), "writes/op")
			})
		}
	}
}
