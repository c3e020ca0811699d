package bench

import (
	"fmt"
	"io"
	"strconv"
)

// stormFigure is a figure of one storm load at one client count; get
// says whether the result has it.
type stormFigure struct {
	figure
	get func(*StormResult) (float64, bool)
}

// stormFigures are printed for every storm load at every client count.
var stormFigures = []stormFigure{
	{figure{"calls/s", 0, true}, func(s *StormResult) (float64, bool) { return s.PerSecond, true }},
	{figure{"errors", 0, false}, func(s *StormResult) (float64, bool) { return float64(s.Errors), true }},
	{figure{"p99 µs", 1, false}, func(s *StormResult) (float64, bool) { return s.P99us, true }},
	{figure{"p99 read µs", 1, false}, func(s *StormResult) (float64, bool) { return s.P99ReadUs, s.P99ReadUs > 0 }},
	{figure{"CPU µs/call", 2, false}, func(s *StormResult) (float64, bool) { return s.DaemonCPUus, s.RSSAfterKB > 0 }},
	{figure{"peak RSS MiB", 1, false}, func(s *StormResult) (float64, bool) { return float64(s.PeakRSSKB) / mib, s.PeakRSSKB > 0 }},
}

// storm finds the storm result of load at clients, if r measured it.
func (r *Result) storm(load string, clients int) *StormResult {
	if r == nil || r.Storm == nil {
		return nil
	}
	for i := range r.Storm.Results {
		if s := &r.Storm.Results[i]; s.Name == load && s.Clients == clients {
			return s
		}
	}
	return nil
}

// FormatStormTable prints the storm loads of a beside b's with their ratio
// a/b, and beside limit's (the minimal responder) with the ratio
// a/limit: how close a comes to what accepting, reading, writing and
// closing cost at all. b and limit may be nil.
func FormatStormTable(w io.Writer, a, b, limit *Result) error {
	if a == nil || a.Storm == nil {
		return nil
	}
	// Columns: a's alone, beside b, and beside the limit as well.
	cols := 9
	if limit == nil {
		cols, limit = 7, &Result{}
	}
	if b == nil {
		cols, b = 4, &Result{}
	}
	head := []string{"storm", "clients", "metric", a.Name, b.Name, "ratio", "better", limit.Name, a.Name + "/" + limit.Name}
	all := [][]string{head[:cols]}
	addRow := func(load, clients string, f figure, av, bv, lv float64, hasA, hasB, hasL bool) {
		r := row{what: load, regs: clients, figure: f, a: av, b: bv, hasA: hasA, hasB: hasB}
		c := r.cells(a.Name, b.Name)
		c = append(c, "-", "-")
		if hasL {
			c[7] = formatNum(lv, f.prec)
			if hasA && lv != 0 {
				c[8] = formatRatio(av / lv)
			}
		}
		all = append(all, c[:cols])
	}
	for _, s := range a.Storm.Results {
		for _, f := range stormFigures {
			get := func(r *Result) (float64, bool) {
				if x := r.storm(s.Name, s.Clients); x != nil {
					return f.get(x)
				}
				return 0, false
			}
			av, hasA := get(a)
			bv, hasB := get(b)
			lv, hasL := get(limit)
			addRow(s.Name, strconv.Itoa(s.Clients), f.figure, av, bv, lv, hasA, hasB, hasL)
		}
	}
	idle := func(r *Result) (float64, bool) {
		if r.Storm != nil && r.Storm.RSSIdleKB > 0 {
			return float64(r.Storm.RSSIdleKB) / mib, true
		}
		return 0, false
	}
	av, hasA := idle(a)
	bv, hasB := idle(b)
	lv, hasL := idle(limit)
	addRow("idle", "0", figure{"RSS MiB", 1, false}, av, bv, lv, hasA, hasB, hasL)

	fmt.Fprintf(w, "\nstorms: every call on a new connection (connect, call, reply, close), %d registrations; "+
		"%s is a minimal accept-read-write-close responder, the physical limit\n", a.Storm.Registrations, limit.Name)
	for _, name := range StormLoads {
		fmt.Fprintf(w, "  %-18s %s\n", name, loadDesc[name])
	}
	fmt.Fprintln(w, "  p99: from connect to the reply's arrival in the client's socket, by the kernel's stamp "+
		"(the local socket has none: to its read); p99 read: to when the client's event loop read it")
	fmt.Fprintln(w)
	if err := writeRows(w, all); err != nil {
		return err
	}
	for _, r := range []*Result{a, b, limit} {
		if r.Storm == nil {
			continue
		}
		for _, s := range r.Storm.Results {
			if s.FirstError != "" {
				fmt.Fprintf(w, "note (%s): %s with %d clients: %d errors, first: %s\n",
					r.Name, s.Name, s.Clients, s.Errors, s.FirstError)
			}
		}
	}
	return nil
}
