package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Step is one command of a differential scenario, run in each namespace.
type Step struct {
	// Name says what the step checks, in the words of the rule or quirk.
	Name string
	// Argv is the command; ClientCmd as argv[0] is the C test client.
	Argv []string
	// Do, when set, replaces Argv: it acts on the daemon itself (starts
	// or stops a service next to it, say) and returns what to compare.
	// It runs on a goroutine of its own, so it reports failures in its
	// Output instead of calling t.Fatal.
	Do func(d *Daemon) Output
	// Timeout bounds the command (0: DefaultTimeout).
	Timeout time.Duration
	// Want, when set, is the exact stdout the reference daemon (the first
	// of the pair, Debian's rpcbind) must print. It records observed
	// behaviour in the test itself and catches a harness that compares
	// nothing with nothing.
	Want string
	// Why documents a deliberate difference; Check then replaces the
	// equality test and returns an error when the difference is not the
	// documented one.
	Why   string
	Check func(ref, got Output) error
}

// Client is a step running the C test client with the given operations,
// each one argument of space-separated words.
func Client(name string, ops ...string) Step {
	return Step{Name: name, Argv: append([]string{ClientCmd}, ops...)}
}

// ClientOpts is Client with options before the operations (e.g. "-w",
// "200" or "-S", "127.0.0.2").
func ClientOpts(name string, opts []string, ops ...string) Step {
	argv := append([]string{ClientCmd}, opts...)
	return Step{Name: name, Argv: append(argv, ops...)}
}

// Command is a step running any program in the namespace, e.g. rpcinfo.
func Command(name string, argv ...string) Step {
	return Step{Name: name, Argv: argv}
}

// Action is a step running Go code against each daemon (see Step.Do).
func Action(name string, do func(d *Daemon) Output) Step {
	return Step{Name: name, Do: do}
}

// Expect returns s with Want set to the given lines, each ending in a
// newline.
func (s Step) Expect(lines ...string) Step {
	s.Want = strings.Join(lines, "\n") + "\n"
	return s
}

// Tolerate returns s with a documented expected difference: check decides
// whether the second daemon's output is acceptable given the reference's.
func (s Step) Tolerate(why string, check func(ref, got Output) error) Step {
	s.Why, s.Check = why, check
	return s
}

// Mismatch is one difference found by Diff.
type Mismatch struct {
	Step   int // index into the steps
	Name   string
	Report string // readable explanation with both sides
}

func (m Mismatch) String() string {
	if m.Step < 0 {
		return fmt.Sprintf("after the last step: %s", m.Report)
	}
	return fmt.Sprintf("step %d %q: %s", m.Step+1, m.Name, m.Report)
}

// RunDiff replays steps against a fresh namespace for each daemon and fails
// the test for every step whose outputs differ (see Diff).
func RunDiff(t *testing.T, ref, got DaemonSpec, steps []Step) {
	t.Helper()
	mismatches, a, b := Diff(t, ref, got, steps)
	for _, m := range mismatches {
		t.Error(m.String())
	}
	if len(mismatches) > 0 {
		t.Logf("%s stderr:\n%s", a.Spec.Name, a.Stderr())
		t.Logf("%s stderr:\n%s", b.Spec.Name, b.Stderr())
	}
}

// Diff starts both daemons, runs the steps in order against each (the two
// sequences run concurrently, each in its own namespace) and compares, step
// by step, stdout, stderr and exit status, or applies the step's own Check.
// A step with Want is also checked against the reference's stdout. The
// daemons are returned for further inspection; they stop with the test.
//
// Setting PORTMAPD_E2E_SHOW=1 logs every step's output on both sides.
func Diff(t testing.TB, ref, got DaemonSpec, steps []Step) ([]Mismatch, *Daemon, *Daemon) {
	t.Helper()
	requireCommands(t, steps)
	a := StartDaemon(t, ref)
	b := StartDaemon(t, got)
	// Resolve the client before the goroutines: ClientPath may skip or
	// fail, which only the test goroutine may do.
	ClientPath(t)
	outA := make([]Output, len(steps))
	outB := make([]Output, len(steps))
	var wg sync.WaitGroup
	for _, side := range []struct {
		d   *Daemon
		out []Output
	}{{a, outA}, {b, outB}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range steps {
				if s.Do != nil {
					side.out[i] = s.Do(side.d)
					continue
				}
				side.out[i] = side.d.Run(s.Timeout, s.Argv...)
			}
		}()
	}
	wg.Wait()

	nameA, nameB := a.Spec.Name, b.Spec.Name
	if nameA == nameB {
		nameA, nameB = nameA+"#1", nameB+"#2"
	}
	show := os.Getenv("PORTMAPD_E2E_SHOW") == "1"
	var ms []Mismatch
	for i, s := range steps {
		if show {
			t.Logf("step %d %q\n%s: %s in %v\n%s%s: %s in %v\n%s", i+1, s.Name,
				nameA, outA[i].Status(), outA[i].Took.Round(time.Millisecond), indent(outA[i].Stdout+outA[i].Stderr),
				nameB, outB[i].Status(), outB[i].Took.Round(time.Millisecond), indent(outB[i].Stdout+outB[i].Stderr))
		}
		if s.Want != "" && outA[i].Stdout != s.Want {
			ms = append(ms, Mismatch{i, s.Name, fmt.Sprintf(
				"%s no longer prints the recorded output (reference drifted, or the harness is broken):\n%s",
				nameA, lineDiff("recorded", s.Want, nameA, outA[i].Stdout))})
		}
		if s.Check != nil {
			if err := s.Check(outA[i], outB[i]); err != nil {
				ms = append(ms, Mismatch{i, s.Name, fmt.Sprintf(
					"tolerated difference (%s) is not the expected one: %v\n%s: %s\n%s%s: %s\n%s",
					s.Why, err, nameA, outA[i].Status(), indent(outA[i].Stdout+outA[i].Stderr),
					nameB, outB[i].Status(), indent(outB[i].Stdout+outB[i].Stderr))})
			}
			continue
		}
		if r := compare(nameA, outA[i], nameB, outB[i]); r != "" {
			cmd := "$ " + strings.Join(s.Argv, " ")
			if s.Do != nil {
				cmd = "(action)"
			}
			ms = append(ms, Mismatch{i, s.Name, cmd + "\n" + r})
		}
	}
	for _, d := range []*Daemon{a, b} {
		if !d.Alive() {
			ms = append(ms, Mismatch{-1, "",
				fmt.Sprintf("%s exited: %s", d.Spec.Name, d.Proc.ExitStatus())})
		}
	}
	return ms, a, b
}

// compare describes every difference between two outputs, or returns "".
func compare(nameA string, a Output, nameB string, b Output) string {
	var r strings.Builder
	if a.Stdout != b.Stdout {
		fmt.Fprintf(&r, "stdout differs:\n%s", lineDiff(nameA, a.Stdout, nameB, b.Stdout))
	}
	if a.Stderr != b.Stderr {
		fmt.Fprintf(&r, "stderr differs:\n%s", lineDiff(nameA, a.Stderr, nameB, b.Stderr))
	}
	if a.Status() != b.Status() {
		fmt.Fprintf(&r, "status differs: %s: %s, %s: %s\n", nameA, a.Status(), nameB, b.Status())
	}
	return r.String()
}

// lineDiff renders a line-by-line diff of a and b: "-" lines only in a, "+"
// lines only in b, " " lines common to both (longest common subsequence;
// outputs here are at most a few hundred lines).
func lineDiff(nameA, a, nameB, b string) string {
	la, lb := splitLines(a), splitLines(b)
	// lcs[i][j] is the LCS length of la[i:] and lb[j:].
	lcs := make([][]int, len(la)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(lb)+1)
	}
	for i := len(la) - 1; i >= 0; i-- {
		for j := len(lb) - 1; j >= 0; j-- {
			if la[i] == lb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var r strings.Builder
	fmt.Fprintf(&r, "  --- %s\n  +++ %s\n", nameA, nameB)
	i, j := 0, 0
	for i < len(la) || j < len(lb) {
		switch {
		case i < len(la) && j < len(lb) && la[i] == lb[j]:
			fmt.Fprintf(&r, "   %s\n", la[i])
			i, j = i+1, j+1
		case j == len(lb) || (i < len(la) && lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&r, "  -%s\n", la[i])
			i++
		default:
			fmt.Fprintf(&r, "  +%s\n", lb[j])
			j++
		}
	}
	return r.String()
}

// splitLines splits text into lines, marking a missing final newline so
// that it shows up in a diff.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		return lines[:len(lines)-1]
	}
	lines[len(lines)-1] += "⏎(no newline at end)"
	return lines
}

func indent(s string) string {
	if s == "" {
		return "    (nothing)\n"
	}
	var r strings.Builder
	for _, l := range splitLines(s) {
		r.WriteString("    " + l + "\n")
	}
	return r.String()
}

// requireCommands skips the test when a step's program is missing: two
// daemons printing the same "not found" would otherwise agree on nothing.
func requireCommands(t testing.TB, steps []Step) {
	t.Helper()
	for _, s := range steps {
		if s.Do != nil {
			continue
		}
		if len(s.Argv) == 0 {
			t.Fatalf("e2e: step %q has no command", s.Name)
		}
		name := s.Argv[0]
		if name == ClientCmd || filepath.IsAbs(name) {
			continue
		}
		found := false
		for _, dir := range filepath.SplitList(strings.TrimPrefix(cmdEnv[0], "PATH=")) {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode()&0o111 != 0 {
				found = true
				break
			}
		}
		if !found {
			t.Skipf("e2e: step %q needs %s, which is not installed", s.Name, name)
		}
	}
}
