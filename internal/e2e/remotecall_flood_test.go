package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRemoteCallFloodStaysBounded floods portmapd --remote-calls with
// 5,000 INDIRECTs from loopback (which no rate limit slows), each a new
// call (its own xid), to a registered service that never answers them (the
// echo's procedure 3), at 5,000 a second: a rate the daemon keeps up with,
// so that what is measured is the daemon and not the kernel dropping
// datagrams from a full socket buffer. The table of calls in flight must
// stay within --remote-call-max (64), empty itself when
// --remote-call-timeout passes with no further call, and the daemon's
// memory must stay put, while GETPORT answers at once during the flood and
// after it, and the service's answers are still relayed afterwards.
func TestRemoteCallFloodStaysBounded(t *testing.T) {
	t.Parallel()
	const (
		count   = 5000
		rate    = 5000
		maxRSS  = 8 << 20 // growth allowed over the daemon's resident memory before the flood
		timeout = 2 * time.Second
	)
	d := StartDaemon(t, Portmapd("--remote-calls", "--remote-call-timeout="+timeout.String(), "--log-level=debug"))
	startEcho(t, d, "udp 4500")
	if out := d.Client("v2 udp set 400300 1 17 4500"); out.Stdout != "v2 udp set 400300 1 17 4500: true\n" {
		t.Fatalf("registering the echo: %q %s", out.Stdout, out.Status())
	}
	pid := daemonPID(t, d)
	before := residentBytes(t, pid)

	getport := func(opts ...string) error {
		out := d.Run(0, append(append([]string{ClientCmd}, opts...), "v2 udp getport 400300 1 17")...)
		if out.Stdout != "v2 udp getport 400300 1 17: 4500\n" {
			return fmt.Errorf("GETPORT: %q %s", out.Stdout, out.Status())
		}
		return nil
	}
	silent := rpcbCall(0x8000, 4, 10, Words(400300, 1, 3, 0))
	flood := d.NS.Start("flood", ClientPath(t), "-w", "300", fmt.Sprintf("flood udp %d %s %d", count, silent.Hex(), rate))

	// GETPORT while the flood runs: every one answered on the first try.
	var during int
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !flood.Exited() {
				err := getport("-t", "1000")
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if !flood.Exited() {
					during++
				}
				mu.Unlock()
			}
		}()
	}
	if !flood.Wait(30 * time.Second) {
		t.Fatal("the flood did not end within 30s")
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("during the flood: %v", err)
	}
	if during == 0 {
		t.Error("no GETPORT completed while the flood ran")
	}
	if want := fmt.Sprintf(": sent %d replies 0\n", count); !strings.HasSuffix(flood.Stdout(), want) {
		t.Errorf("flood: %q, want every datagram sent and none answered", flood.Stdout())
	}

	// The calls expire on the timer, with no call to prompt it.
	expired := regexp.MustCompile(`remote calls timed out\t\{"expired": \d+, "in_flight": 0\}`)
	deadline := time.Now().Add(timeout + 10*time.Second)
	for !expired.MatchString(d.Stderr()) {
		if time.Now().After(deadline) {
			t.Fatalf("the table did not empty within %v of the flood:\n%s", timeout+10*time.Second, tail(d.Stderr(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := d.Stderr()
	inFlight := regexp.MustCompile(`"in_flight": (\d+)`)
	most, seen := 0, 0
	for _, m := range inFlight.FindAllStringSubmatch(logs, -1) {
		n, _ := strconv.Atoi(m[1])
		most = max(most, n)
		seen++
	}
	if most > 64 || seen == 0 {
		t.Errorf("%d log lines show calls in flight, at most %d; want some, and never more than 64", seen, most)
	}
	if !strings.Contains(logs, `remote-call table full; dropped the oldest call in flight	{"in_flight": 64, "max": 64}`) {
		t.Errorf("the table never filled:\n%s", tail(logs, 20))
	}
	t.Logf("%d GETPORTs answered during the flood (%s); %d log lines with in_flight, at most %d",
		during, udpDrops(d), seen, most)

	if err := getport(); err != nil {
		t.Errorf("after the flood: %v", err)
	}
	if out := d.Client("v4 udp indirect 400300 1 1 cafe"); out.Stdout != `v4 udp indirect 400300 1 1 cafe: uaddr="127.0.0.1.17.148" res=cafe0000`+"\n" {
		t.Errorf("INDIRECT after the flood: %q %s", out.Stdout, out.Status())
	}
	after := residentBytes(t, pid)
	t.Logf("resident memory %d KiB before the flood, %d KiB after", before>>10, after>>10)
	if after > before+maxRSS {
		t.Errorf("resident memory grew from %d to %d KiB", before>>10, after>>10)
	}
	if !d.Alive() {
		t.Fatalf("portmapd died: %s", d.Proc.ExitStatus())
	}
}

// daemonPID is the daemon's process as this process sees it: the one
// nsenter started.
func daemonPID(t *testing.T, d *Daemon) int {
	t.Helper()
	kids := d.Proc.Inside()
	if len(kids) != 1 {
		t.Fatalf("e2e: %d processes under %s's nsenter", len(kids), d.Spec.Name)
	}
	return kids[0]
}

// residentBytes reads VmRSS.
func residentBytes(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("e2e: no VmRSS in /proc/%d/status", pid)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return kb << 10
}

// udpDrops reports the datagrams the kernel dropped in d's namespace for
// want of socket buffer space.
func udpDrops(d *Daemon) string {
	out := d.NS.Run(0, "cat", "/proc/net/snmp")
	var names []string
	for _, l := range strings.Split(out.Stdout, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				return f[i] + " datagrams dropped by the kernel"
			}
		}
	}
	return "kernel drops unknown"
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
