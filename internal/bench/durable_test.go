package bench

import (
	"slices"
	"strings"
	"testing"
)

// The durable loads get rows of their own at each size, side by side, and
// a scaling row for the lone change's latency from the smallest table to
// the largest.
func TestFormatTableShowsTheDurableLoads(t *testing.T) {
	durable := func(r *Result, p50at10, p50at100k float64) *Result {
		for _, n := range DefaultDurableRegistrations {
			p50 := p50at10
			if n == 100000 {
				p50 = p50at100k
			}
			for _, name := range []string{LoadDurableLone, LoadDurable} {
				r.Durable = append(r.Durable, LoadResult{Name: name, Registrations: n, Requests: 100,
					PerSecond: 1e6 / p50, P50us: p50, P99us: 4 * p50})
			}
			r.Durable = append(r.Durable, LoadResult{Name: DurableRegister, Registrations: n, Seconds: p50 / 1000})
		}
		return r
	}
	ours := durable(sampleResult("portmapd", 1, false), 100, 90)
	theirs := durable(sampleResult("rpcbind", 1, false), 40, 1600)
	theirs.Notes = append(theirs.Notes, LoadDurable+": no durable SET; these rows are the plain SET/UNSET, for reference")
	var sb strings.Builder
	if err := FormatTable(&sb, ours, theirs); err != nil {
		t.Fatal(err)
	}
	table := sb.String()
	for _, tc := range []struct {
		prefix []string
		want   []string
	}{
		{[]string{LoadDurableLone, "10", "p50", "µs"}, []string{"100.0", "40.0", "2.50", "rpcbind"}},
		{[]string{LoadDurableLone, "100000", "p50", "µs"}, []string{"90.0", "1600.0", "0.06", "portmapd"}},
		{[]string{LoadDurable, "10000", "req/s"}, []string{"10000", "25000", "0.40", "rpcbind"}},
		{[]string{"scaling", "100000/10", LoadDurableLone, "p50", "µs"}, []string{"0.900", "40.000", "0.02", "portmapd"}},
		{[]string{DurableRegister, "100000", "pipelined", "SETs", "s"}, []string{"0.090", "1.600", "0.06", "portmapd"}},
	} {
		if got := rowOf(t, table, tc.prefix...); !slices.Equal(got, tc.want) {
			t.Errorf("row %v = %v, want %v", tc.prefix, got, tc.want)
		}
	}
	if !strings.Contains(table, "note (rpcbind): durable-set: no durable SET") {
		t.Errorf("the table does not say rpcbind's rows are plain SETs:\n%s", table)
	}
}
