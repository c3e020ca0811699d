package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/state"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
)

// crashTransport is one way the crash test's clients reach the daemon.
type crashTransport struct {
	network, address, netid string
}

// crashTransports lists them: every transport a SET may come over. A new
// transport (the abstract socket "@/run/rpcbind.sock") is one more row.
func crashTransports(port int, sock, abstract string) []crashTransport {
	return []crashTransport{
		{"udp", fmt.Sprintf("127.0.0.1:%d", port), "udp"},
		{"tcp", fmt.Sprintf("127.0.0.1:%d", port), "tcp"},
		{"udp", fmt.Sprintf("[::1]:%d", port), "udp6"},
		{"tcp", fmt.Sprintf("[::1]:%d", port), "tcp6"},
		{"unix", sock, "local"},
		{"unix", abstract, "local"},
	}
}

// TestWarmStartSurvivesSIGKILL is the warm-start promise: a registration
// that portmapd acknowledged is never lost, however the daemon dies. Many
// clients register and unregister over every transport while the daemon
// is killed with SIGKILL at random moments, at least 200 times, and
// restarted; after every kill the state files must parse and hold every
// acknowledged change, and after every restart each acknowledged SET must
// be in the table, each acknowledged UNSET must have stayed removed, and
// no mapping may appear twice.
//
// The daemon runs on loopback sockets the test passes it at every start,
// as systemd does, with its local socket and state in a temporary
// directory, so the test needs neither root nor a namespace.
func TestWarmStartSurvivesSIGKILL(t *testing.T) {
	PortmapdPath(t) // built before the time bound starts
	dir := t.TempDir()
	port, files := passLoopback(t)
	sock := filepath.Join(dir, "rpcbind.sock")
	// The abstract name lives in this machine's network namespace: one of
	// the test's own, never rpcbind's "@/run/rpcbind.sock".
	abstract := "@" + sock
	stateDir := filepath.Join(dir, "state")
	args := []string{"--port", strconv.Itoa(port), "--socket", sock, "--abstract-socket", abstract, "--lock-file", filepath.Join(dir, "lock"),
		"--warm-start", "--state-dir", stateDir, "--log-level", "warn"}

	kills, deadline := 220, time.Now().Add(90*time.Second)
	if testing.Short() {
		kills = 5
	}
	// want is what the daemon acknowledged: true = registered, false =
	// removed; a mapping whose UNSET is unanswered is left out. Keys are
	// unique per (prog, vers, netid).
	want := map[pmap.Mapping]bool{}
	var mu sync.Mutex
	nextProg := uint32(0x20000000)
	acked, round := 0, 0
	ackedBy := make([]int, len(crashTransports(port, sock, abstract)))
	for ; round < kills && time.Now().Before(deadline); round++ {
		cmd, stderr := startActivated(t, files(), nil, args...)
		waitReady(t, port, cmd, stderr)
		checkTable(t, round, port, want)
		if t.Failed() {
			t.Fatalf("daemon's log:\n%s", stderr.String())
		}

		// Clients on every transport until the kill.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i, tr := range crashTransports(port, sock, abstract) {
			mu.Lock()
			base := nextProg
			nextProg += 10000
			mu.Unlock()
			wg.Go(func() {
				c, err := client.Dial(ctx, tr.network, tr.address)
				if err != nil {
					return
				}
				defer c.Close()
				c.Timeout = 2 * time.Second
				var mine []pmap.Mapping
				for n := uint32(0); n < 5000 && ctx.Err() == nil; n++ {
					// One call in four removes an earlier registration.
					if len(mine) > 0 && n%4 == 3 {
						m := mine[0]
						mine = mine[1:]
						// Until it is answered, an UNSET may or may
						// not have happened: the kill can fall between
						// the removal and the reply.
						mu.Lock()
						delete(want, m)
						mu.Unlock()
						ok, err := c.Unset(ctx, m.Prog, m.Vers, m.Netid)
						if err != nil {
							return
						}
						if ok {
							mu.Lock()
							want[m] = false
							mu.Unlock()
						}
						continue
					}
					port := 10000 + n // unprivileged: any caller may map it
					m := pmap.Mapping{Prog: base + n, Vers: uint32(i + 1), Netid: tr.netid,
						Addr: fmt.Sprintf("0.0.0.0.%d.%d", port>>8&0xff, port&0xff)}
					ok, err := c.Set(ctx, m)
					if err != nil {
						return
					}
					if !ok {
						t.Errorf("SET %v refused", m)
						return
					}
					mu.Lock()
					want[m] = true
					acked++
					ackedBy[i]++
					mu.Unlock()
					mine = append(mine, m)
				}
			})
		}
		time.Sleep(time.Duration(2+rand.IntN(60)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		cancel()
		wg.Wait()
		checkFiles(t, round, stateDir, want)
		if t.Failed() {
			return
		}
	}
	// A last start proves the final kill lost nothing either.
	cmd, stderr := startActivated(t, files(), nil, args...)
	waitReady(t, port, cmd, stderr)
	checkTable(t, round, port, want)
	t.Logf("%d kills, %d acknowledged SETs, %d keys tracked", round, acked, len(want))
	if !testing.Short() && round < 200 {
		t.Errorf("only %d kills before the time bound; want at least 200", round)
	}
	if acked < 100 {
		t.Errorf("only %d SETs acknowledged; the test exercised too little", acked)
	}
	for i, tr := range crashTransports(port, sock, abstract) {
		if ackedBy[i] == 0 {
			t.Errorf("no SET acknowledged over %s %s", tr.network, tr.address)
		}
	}
}

// checkFiles reads the state files a killed daemon left, as the next warm
// start will, and compares them with what it acknowledged.
func checkFiles(t *testing.T, round int, dir string, want map[pmap.Mapping]bool) {
	t.Helper()
	rows, tail, err := state.Inspect(dir)
	if err != nil {
		t.Errorf("round %d: the state files do not parse: %v", round, err)
		return
	}
	if tail != "" {
		t.Logf("round %d: the journal ends in a torn record: %s", round, tail)
	}
	have := map[pmap.Mapping]bool{}
	for _, r := range rows {
		r.Owner = ""
		have[r] = true
	}
	for m, present := range want {
		if have[m] != present {
			t.Errorf("round %d: the files hold %v: %v, acknowledged %v", round, m, have[m], present)
		}
	}
}

// checkTable compares the daemon's table with what it acknowledged.
func checkTable(t *testing.T, round, port int, want map[pmap.Mapping]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.Dump(ctx)
	if err != nil {
		t.Fatalf("round %d: dump: %v", round, err)
	}
	have := map[pmap.Mapping]int{}
	for _, r := range rows {
		r.Owner = ""
		have[r]++
		if have[r] > 1 {
			t.Errorf("round %d: %v appears twice", round, r)
		}
	}
	for m, present := range want {
		if present && have[m] == 0 {
			t.Errorf("round %d: acknowledged SET %v lost", round, m)
		}
		if !present && have[m] > 0 {
			t.Errorf("round %d: acknowledged UNSET %v undone", round, m)
		}
	}
}

// waitReady polls a NULL call until the daemon answers.
func waitReady(t *testing.T, port int, cmd *exec.Cmd, stderr *lockedBuffer) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			err = c.Null(ctx, pmap.VersRPCB3)
			c.Close()
		}
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("portmapd did not answer on port %d; stderr:\n%s", port, stderr.String())
}

// lockedBuffer collects a child's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) < 1<<20 {
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
