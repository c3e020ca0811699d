package bench

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// A row of the comparison: one figure of each daemon and their ratio.
type row struct {
	what, regs string
	figure
	a, b       float64
	hasA, hasB bool
}

// nearlyEqual is the band within which neither daemon is called better:
// run-to-run noise on a shared two-core machine is about that large.
const nearlyEqual = 0.05

func (r row) cells(nameA, nameB string) []string {
	c := []string{r.what, r.regs, r.metric, "-", "-", "-", ""}
	if r.hasA {
		c[3] = formatNum(r.a, r.prec)
	}
	if r.hasB {
		c[4] = formatNum(r.b, r.prec)
	}
	if !r.hasA || !r.hasB {
		return c
	}
	switch {
	case r.a == 0 && r.b == 0:
		c[5], c[6] = "-", "="
		return c
	case r.b == 0:
		c[5] = "inf"
	default:
		c[5] = formatRatio(r.a / r.b)
	}
	better := nameA
	if (r.a > r.b) != r.higherBetter {
		better = nameB
	}
	if r.b != 0 && math.Abs(r.a/r.b-1) <= nearlyEqual {
		better = "≈"
	}
	c[6] = better
	return c
}

func formatNum(v float64, prec int) string {
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func formatRatio(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case x >= 0.01:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'g', 2, 64)
}

// writeRows prints a table's rows (the first its header) in aligned
// columns: the load, the metric and the verdict (columns 0, 2 and 6) to
// the left, figures to the right, and a blank line between groups of
// rows of one load and size.
func writeRows(w io.Writer, all [][]string) error {
	var width []int
	for _, c := range all {
		for i, s := range c {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	prev := ""
	for n, c := range all {
		group := c[0] + "\x00" + c[1]
		if n > 1 && group != prev {
			fmt.Fprintln(w)
		}
		prev = group
		var sb strings.Builder
		for i, s := range c {
			pad := strings.Repeat(" ", width[i]-len([]rune(s)))
			switch i {
			case 0, 2, 6: // text: left-aligned
				sb.WriteString(s + pad)
			default:
				sb.WriteString(pad + s)
			}
			if i < len(c)-1 {
				sb.WriteString("  ")
			}
		}
		if _, err := fmt.Fprintln(w, strings.TrimRight(sb.String(), " ")); err != nil {
			return err
		}
	}
	return nil
}

// FormatTable prints a's results beside b's, with the ratio a/b and which
// of the two is better on each figure. With b nil (no rpcbind to compare
// with) it prints a's column alone.
func FormatTable(w io.Writer, a, b *Result) error {
	cols := 7
	if b == nil {
		cols = 4
		b = &Result{}
	}
	rows := tableRows(a, b)
	head := []string{"load", "regs", "metric", a.Name, b.Name, "ratio", "better"}[:cols]
	all := [][]string{head}
	for _, r := range rows {
		all = append(all, r.cells(a.Name, b.Name)[:cols])
	}
	fmt.Fprintf(w, "%d closed-loop clients; each load runs %gs or %d requests, whichever ends first; "+
		"%d%% of lookups ask about unregistered programs",
		a.Clients, a.DurationSeconds, a.MaxRequests, a.UnregisteredPercent)
	if cols > 4 {
		fmt.Fprintf(w, "; ratio = %s/%s", a.Name, b.Name)
	}
	fmt.Fprintln(w)
	for _, name := range append(loadNames(a, b), LoadFresh) {
		fmt.Fprintf(w, "  %-13s %s\n", name, loadDesc[name])
	}
	if loads := append(slices.Clone(a.LoadAvg), b.LoadAvg...); len(loads) > 0 {
		fmt.Fprintf(w, "machine: %d CPUs shared by daemon and clients; load average %.1f to %.1f during the runs\n",
			runtime.NumCPU(), slices.Min(loads), slices.Max(loads))
	}
	fmt.Fprintln(w)
	if err := writeRows(w, all); err != nil {
		return err
	}
	for _, r := range []*Result{a, b} {
		for _, note := range r.Notes {
			fmt.Fprintf(w, "note (%s): %s\n", r.Name, note)
		}
		for _, ph := range r.Phases {
			if ph.RegisterError != "" {
				fmt.Fprintf(w, "note (%s): registered %d of %d: %s\n", r.Name, ph.Registered, ph.Registrations, ph.RegisterError)
			}
			for _, l := range ph.Loads {
				if l.FirstError != "" {
					fmt.Fprintf(w, "note (%s): %s at %d registrations: %d errors, first: %s\n",
						r.Name, l.Name, l.Registrations, l.Errors, l.FirstError)
				}
			}
		}
	}
	return nil
}

const mib = 1024.0

// figure describes one metric row: how it is printed and which way is
// better.
type figure struct {
	metric       string
	prec         int  // decimals
	higherBetter bool // throughput; everything else is a cost
}

// loadFigure is a figure of a load; fromProc marks those read from
// /proc/PID, absent when the run could not see the daemon's PID.
type loadFigure struct {
	figure
	fromProc bool
	get      func(*LoadResult) float64
}

// loadFigures are printed for every load at every table size, and (the
// ones that apply) for the fresh-lookups stream.
var loadFigures = []loadFigure{
	{figure{"req/s", 0, true}, false, func(l *LoadResult) float64 { return l.PerSecond }},
	{figure{"p50 µs", 1, false}, false, func(l *LoadResult) float64 { return l.P50us }},
	{figure{"p99 µs", 1, false}, false, func(l *LoadResult) float64 { return l.P99us }},
	{figure{"p99.9 µs", 1, false}, false, func(l *LoadResult) float64 { return l.P999us }},
	{figure{"errors", 0, false}, false, func(l *LoadResult) float64 { return float64(l.Errors) }},
	{figure{"CPU µs/req", 2, false}, true, func(l *LoadResult) float64 { return l.DaemonCPUus }},
	{figure{"RSS MiB", 1, false}, true, func(l *LoadResult) float64 { return float64(l.RSSAfterKB) / mib }},
}

// freshFigures are printed for the fresh-lookups stream: its point is
// whether memory stays flat.
var freshFigures = []loadFigure{
	{figure{"lookups", 0, true}, false, func(l *LoadResult) float64 { return float64(l.Requests) }},
	{figure{"req/s", 0, true}, false, func(l *LoadResult) float64 { return l.PerSecond }},
	{figure{"p99 µs", 1, false}, false, func(l *LoadResult) float64 { return l.P99us }},
	{figure{"errors", 0, false}, false, func(l *LoadResult) float64 { return float64(l.Errors) }},
	{figure{"RSS before MiB", 1, false}, true, func(l *LoadResult) float64 { return float64(l.RSSBeforeKB) / mib }},
	{figure{"RSS after MiB", 1, false}, true, func(l *LoadResult) float64 { return float64(l.RSSAfterKB) / mib }},
	{figure{"RSS growth MiB", 1, false}, true, func(l *LoadResult) float64 {
		return float64(l.RSSAfterKB-l.RSSBeforeKB) / mib
	}},
	// Per lookup, since a faster daemon answers more of them in the time.
	{figure{"RSS growth B/lookup", 1, false}, true, func(l *LoadResult) float64 {
		if l.Requests == 0 {
			return 0
		}
		return float64(l.RSSAfterKB-l.RSSBeforeKB) * 1024 / float64(l.Requests)
	}},
}

// phaseFigures describe the table at each size; ok is false for a figure
// the run did not take.
var phaseFigures = []struct {
	figure
	get func(*Phase) (v float64, ok bool)
}{
	{figure{"registered", 0, true}, func(p *Phase) (float64, bool) { return float64(p.Registered), true }},
	{figure{"register s", 3, false}, func(p *Phase) (float64, bool) { return p.RegisterSeconds, true }},
	{figure{"RSS idle MiB", 1, false}, func(p *Phase) (float64, bool) {
		return float64(p.RSSIdleKB) / mib, p.RSSIdleKB > 0
	}},
	{figure{"RSS registered MiB", 1, false}, func(p *Phase) (float64, bool) {
		return float64(p.RSSRegisteredKB) / mib, p.RSSRegisteredKB > 0
	}},
}

// value takes figure f of l, if both exist.
func (f loadFigure) value(l *LoadResult) (float64, bool) {
	if l == nil || (f.fromProc && l.RSSAfterKB == 0) {
		return 0, false
	}
	return f.get(l), true
}

// rowAdder returns add, which takes a figure of both results through get
// and appends it to *rows when either result has it.
func rowAdder(a, b *Result, rows *[]row) func(what, regs string, f figure, get func(*Result) (float64, bool)) {
	return func(what, regs string, f figure, get func(*Result) (float64, bool)) {
		r := row{what: what, regs: regs, figure: f}
		r.a, r.hasA = get(a)
		r.b, r.hasB = get(b)
		if r.hasA || r.hasB {
			*rows = append(*rows, r)
		}
	}
}

// tableRows lays the two results out row by row: every load at every
// table size, then the table itself, scaling, the fresh-lookups stream
// and start-up.
func tableRows(a, b *Result) []row {
	var rows []row
	add := rowAdder(a, b, &rows)

	sizes := registrationCounts(a, b)
	names := loadNames(a, b)
	for _, name := range names {
		for _, n := range sizes {
			for _, f := range loadFigures {
				add(name, strconv.Itoa(n), f.figure, func(r *Result) (float64, bool) { return f.value(r.load(name, n)) })
			}
		}
	}

	for _, n := range sizes {
		for _, f := range phaseFigures {
			add("table", strconv.Itoa(n), f.figure, func(r *Result) (float64, bool) {
				if p := r.phase(n); p != nil {
					return f.get(p)
				}
				return 0, false
			})
		}
	}

	// Scaling: the share of its throughput a daemon keeps when its table
	// grows from the smallest size measured to the largest, and how its
	// CPU time per call grows. DUMP is left out: its work grows with the
	// table by definition.
	if len(sizes) > 1 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		for _, name := range names {
			if name == LoadDumpTCP {
				continue
			}
			add("scaling", fmt.Sprintf("%d/%d", hi, lo), figure{name + " req/s", 3, true}, func(r *Result) (float64, bool) {
				l, h := r.load(name, lo), r.load(name, hi)
				if l == nil || h == nil || l.PerSecond == 0 {
					return 0, false
				}
				return h.PerSecond / l.PerSecond, true
			})
			// The daemon's own cost per call, which the clients sharing
			// its CPUs do not blur as they do the throughput.
			add("scaling", fmt.Sprintf("%d/%d", hi, lo), figure{name + " CPU µs/req", 3, false}, func(r *Result) (float64, bool) {
				l, h := r.load(name, lo), r.load(name, hi)
				if l == nil || h == nil || l.DaemonCPUus == 0 || h.DaemonCPUus == 0 {
					return 0, false
				}
				return h.DaemonCPUus / l.DaemonCPUus, true
			})
		}
	}

	for _, f := range freshFigures {
		add(LoadFresh, "0", f.figure, func(r *Result) (float64, bool) { return f.value(r.Fresh) })
	}
	rows = append(rows, durableRows(a, b)...)

	add("startup", "0", figure{"first answer ms (median)", 2, false}, func(r *Result) (float64, bool) {
		if len(r.StartupUs) == 0 {
			return 0, false
		}
		return median(r.StartupUs) / 1000, true
	})
	add("startup", "0", figure{"first answer ms (min)", 2, false}, func(r *Result) (float64, bool) {
		if len(r.StartupUs) == 0 {
			return 0, false
		}
		return slices.Min(r.StartupUs) / 1000, true
	})
	warmRegs := "-"
	for _, r := range []*Result{a, b} {
		if r.Warm != nil {
			warmRegs = strconv.Itoa(r.Warm.Registrations)
		}
	}
	add("warm start", warmRegs, figure{"first answer ms (median)", 2, false}, func(r *Result) (float64, bool) {
		if r.Warm == nil || len(r.Warm.StartupUs) == 0 {
			return 0, false
		}
		return median(r.Warm.StartupUs) / 1000, true
	})
	add("warm start", warmRegs, figure{"first answer ms (max)", 2, false}, func(r *Result) (float64, bool) {
		if r.Warm == nil || len(r.Warm.StartupUs) == 0 {
			return 0, false
		}
		return slices.Max(r.Warm.StartupUs) / 1000, true
	})
	add("warm start", warmRegs, figure{"restored", 0, true}, func(r *Result) (float64, bool) {
		if r.Warm == nil {
			return 0, false
		}
		return float64(r.Warm.Restored), true
	})
	return rows
}

// phase finds the phase of n registrations.
func (r *Result) phase(n int) *Phase {
	for i := range r.Phases {
		if r.Phases[i].Registrations == n {
			return &r.Phases[i]
		}
	}
	return nil
}

// load finds the result of load name at n registrations.
func (r *Result) load(name string, n int) *LoadResult {
	p := r.phase(n)
	if p == nil {
		return nil
	}
	for i := range p.Loads {
		if p.Loads[i].Name == name {
			return &p.Loads[i]
		}
	}
	return nil
}

// registrationCounts lists the table sizes either result measured, in
// increasing order.
func registrationCounts(rs ...*Result) []int {
	var out []int
	for _, r := range rs {
		for _, p := range r.Phases {
			if !slices.Contains(out, p.Registrations) {
				out = append(out, p.Registrations)
			}
		}
	}
	slices.Sort(out)
	return out
}

// loadNames lists the loads either result measured, in the order Loads
// gives them.
func loadNames(rs ...*Result) []string {
	var out []string
	for _, name := range Loads {
		for _, r := range rs {
			found := false
			for _, p := range r.Phases {
				for _, l := range p.Loads {
					found = found || l.Name == name
				}
			}
			if found && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
