package bench

import (
	"math"
	"slices"
	"time"
)

// Latencies summarises one load's per-request times.
type Latencies struct {
	P50  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
}

// percentile returns the nearest-rank p-th quantile (0 < p <= 1) of the
// ascending slice sorted: the smallest value at least a fraction p of the
// samples do not exceed. Nearest rank never invents a value no request
// took, which matters for p99.9 of a few thousand samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarize merges the clients' samples and computes the percentiles. It
// sorts a merged copy, so the clients' slices are left as they were.
func summarize(perClient [][]time.Duration) Latencies {
	n := 0
	for _, s := range perClient {
		n += len(s)
	}
	all := make([]time.Duration, 0, n)
	for _, s := range perClient {
		all = append(all, s...)
	}
	slices.Sort(all)
	if n == 0 {
		return Latencies{}
	}
	return Latencies{
		P50:  percentile(all, 0.50),
		P99:  percentile(all, 0.99),
		P999: percentile(all, 0.999),
		Max:  all[n-1],
	}
}
