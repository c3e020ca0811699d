package bench

import (
	"strings"
	"testing"
)

// sampleResult is a small run of a daemon whose figures scale with k.
func sampleResult(name string, k float64, warm bool) *Result {
	load := func(n string, regs int) LoadResult {
		return LoadResult{Name: n, Registrations: regs, Clients: 16, Requests: int64(1000 * k),
			PerSecond: 50000 * k, P50us: 100 / k, P99us: 400 / k, P999us: 900 / k, MaxUs: 1000 / k,
			DaemonCPUus: 10 / k, RSSBeforeKB: 4096, RSSAfterKB: int64(8192 / k)}
	}
	r := &Result{Name: name, Clients: 16, DurationSeconds: 2, MaxRequests: 1000, UnregisteredPercent: 10,
		StartupUs: []float64{3000, 5000, 4000}, LoadAvg: []float64{1.5, 2.5}}
	for _, regs := range []int{10, 10000} {
		r.Phases = append(r.Phases, Phase{Registrations: regs, Registered: regs, RegisterSeconds: 0.5,
			RSSIdleKB: 4096, RSSRegisteredKB: 8192,
			Loads: []LoadResult{load(LoadGetportUDP, regs), load(LoadDumpTCP, regs)}})
	}
	// The larger table halves the throughput and costs 1.5 times the CPU.
	r.Phases[1].Loads[0].PerSecond /= 2
	r.Phases[1].Loads[0].DaemonCPUus *= 1.5
	f := load(LoadFresh, 0)
	r.Fresh = &f
	if warm {
		r.Warm = &WarmStart{Registrations: 10000, StartupUs: []float64{7000, 6000, 9500}, Restored: 10000}
	}
	return r
}

// rowOf finds the table row starting with the given cells (runs of
// spaces folded) and returns its remaining cells.
func rowOf(t *testing.T, table string, prefix ...string) []string {
	t.Helper()
	for line := range strings.SplitSeq(table, "\n") {
		f := strings.Fields(line)
		if len(f) < len(prefix) {
			continue
		}
		match := true
		for i, p := range prefix {
			match = match && f[i] == p
		}
		if match {
			return f[len(prefix):]
		}
	}
	t.Fatalf("no row %q in\n%s", prefix, table)
	return nil
}

func TestFormatTableShowsBothDaemonsAndTheirRatio(t *testing.T) {
	var sb strings.Builder
	if err := FormatTable(&sb, sampleResult("portmapd", 2, false), sampleResult("rpcbind", 1, true)); err != nil {
		t.Fatal(err)
	}
	table := sb.String()
	tests := []struct {
		prefix []string
		want   []string // portmapd, rpcbind, ratio, better
	}{
		{[]string{"getport-udp", "10", "req/s"}, []string{"100000", "50000", "2.00", "portmapd"}},
		{[]string{"getport-udp", "10", "p99", "µs"}, []string{"200.0", "400.0", "0.50", "portmapd"}},
		{[]string{"getport-udp", "10000", "CPU", "µs/req"}, []string{"7.50", "15.00", "0.50", "portmapd"}},
		{[]string{"dump-tcp", "10", "errors"}, []string{"0", "0", "-", "="}},
		{[]string{"table", "10000", "RSS", "registered", "MiB"}, []string{"8.0", "8.0", "1.00", "≈"}},
		{[]string{"scaling", "10000/10", "getport-udp", "req/s"}, []string{"0.500", "0.500", "1.00", "≈"}},
		{[]string{"scaling", "10000/10", "getport-udp", "CPU", "µs/req"}, []string{"1.500", "1.500", "1.00", "≈"}},
		{[]string{"fresh-lookups", "0", "RSS", "growth", "MiB"}, []string{"0.0", "4.0", "0", "portmapd"}},
		{[]string{"startup", "0", "first", "answer", "ms", "(median)"}, []string{"4.00", "4.00", "1.00", "≈"}},
		// Only rpcbind measured a warm start: no ratio.
		{[]string{"warm", "start", "10000", "first", "answer", "ms", "(median)"}, []string{"-", "7.00", "-"}},
		{[]string{"warm", "start", "10000", "first", "answer", "ms", "(max)"}, []string{"-", "9.50", "-"}},
	}
	for _, tt := range tests {
		got := rowOf(t, table, tt.prefix...)
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("row %q: %q, want %q", tt.prefix, got, tt.want)
		}
	}
	if strings.Contains(table, "dump-tcp req/s") {
		t.Errorf("DUMP, whose work grows with the table, in the scaling rows:\n%s", table)
	}
	if !strings.Contains(table, "ratio = portmapd/rpcbind") || !strings.Contains(table, "load average 1.5 to 2.5") {
		t.Errorf("header lacks the ratio's direction or the machine's load:\n%s", table)
	}
	// Numbers are right-aligned: every ratio ends where the header's does.
	lines := strings.Split(table, "\n")
	var end int
	for _, line := range lines {
		if strings.HasPrefix(line, "load ") {
			end = len([]rune(line[:strings.Index(line, "ratio")])) + len("ratio")
		}
		if f := strings.Fields(line); strings.HasPrefix(line, LoadGetportUDP+" ") && end > 0 {
			ratio := []rune(f[len(f)-2])
			if r := []rune(line); len(r) < end || string(r[end-len(ratio):end]) != string(ratio) {
				t.Errorf("ratio %q not aligned at column %d: %q", string(ratio), end, line)
			}
		}
	}
	if end == 0 {
		t.Errorf("no header row in\n%s", table)
	}
}

func TestFormatTableWithoutRpcbindPrintsOneColumn(t *testing.T) {
	var sb strings.Builder
	r := sampleResult("portmapd", 1, false)
	r.Notes = []string{"something odd"}
	r.Phases[0].Loads[0].Errors, r.Phases[0].Loads[0].FirstError = 3, "i/o timeout"
	if err := FormatTable(&sb, r, nil); err != nil {
		t.Fatal(err)
	}
	table := sb.String()
	if got := rowOf(t, table, "getport-udp", "10", "req/s"); len(got) != 1 || got[0] != "50000" {
		t.Errorf("single-daemon row: %q", got)
	}
	if strings.Contains(table, "ratio =") || strings.Contains(table, " better") {
		t.Errorf("ratio column without a second daemon:\n%s", table)
	}
	for _, note := range []string{"note (portmapd): something odd", "getport-udp at 10 registrations: 3 errors, first: i/o timeout"} {
		if !strings.Contains(table, note) {
			t.Errorf("missing %q in\n%s", note, table)
		}
	}
}

func TestMergeAddsTableSizes(t *testing.T) {
	a := sampleResult("portmapd", 1, false)
	a.Phases, a.Fresh = a.Phases[:1], nil
	b := sampleResult("portmapd", 1, true)
	b.Phases = b.Phases[1:]
	a.Merge(b)
	if got := registrationCounts(a); len(got) != 2 || got[0] != 10 || got[1] != 10000 {
		t.Errorf("sizes after merge: %v", got)
	}
	if a.Fresh == nil || a.Warm == nil || len(a.StartupUs) != 6 || len(a.LoadAvg) != 4 {
		t.Errorf("merge lost figures: fresh %v, warm %v, startups %v, loads %v", a.Fresh, a.Warm, a.StartupUs, a.LoadAvg)
	}
}
