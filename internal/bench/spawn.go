package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/portmapd/portmapd/internal/netns"
)

// Bounds on a daemon's life cycle.
const (
	readyTimeout = 30 * time.Second // spawn to first answer
	pollEvery    = time.Millisecond // NULL calls while waiting for it
	stopTimeout  = 10 * time.Second // SIGTERM to exit, then SIGKILL
)

// process is a spawned daemon.
type process = netns.Proc

// spawn starts argv (in the benchmark's own namespace) and returns it with
// the time it was started.
func spawn(argv []string) (*process, time.Time, error) {
	if len(argv) == 0 {
		return nil, time.Time{}, errors.New("empty daemon command")
	}
	started := time.Now()
	p, err := netns.Spawn(argv[0], argv...)
	return p, started, err
}

// stopDaemon asks the daemon to exit with SIGTERM, which is also what makes
// rpcbind -w write its warm-start files, and kills it if it has not exited
// within stopTimeout. It reports an error if it had to kill it.
func stopDaemon(p *process) error {
	if p.Exited() {
		return nil
	}
	_ = p.Signal(syscall.SIGTERM) // if it is gone already, Wait says so
	if p.Wait(stopTimeout) {
		return nil
	}
	p.Stop()
	return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, stopTimeout)
}

// waitReady polls the daemon with a NULL call over UDP every millisecond
// until it answers, and returns the time from started to that answer.
func waitReady(ctx context.Context, p *process, started time.Time, udpAddr string) (time.Duration, error) {
	u, err := dialUDP(udpAddr, pollEvery)
	if err != nil {
		return 0, err
	}
	c := &caller{t: u}
	defer u.close()
	deadline := started.Add(readyTimeout)
	for {
		tick := time.Now()
		if err := c.null(); err == nil {
			return time.Since(started), nil
		}
		if p != nil && p.Exited() {
			return 0, fmt.Errorf("daemon exited before answering (%s): %s", p.ExitStatus(), tail(p.Stdout()+p.Stderr(), 1000))
		}
		if tick.After(deadline) {
			return 0, fmt.Errorf("daemon did not answer a NULL call within %v", readyTimeout)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		// Before the socket is bound the kernel refuses the datagram at
		// once; wait out the rest of the millisecond instead of spinning.
		time.Sleep(time.Until(tick.Add(pollEvery)))
	}
}

// answersNull reports whether anything answers a NULL call over UDP at
// addr within a short wait.
func answersNull(addr string) bool {
	u, err := dialUDP(addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer u.close()
	c := &caller{t: u}
	return c.null() == nil
}

// tail returns the last n bytes of s, without the final newline.
func tail(s string, n int) string {
	return strings.TrimRight(s[max(0, len(s)-n):], "\n")
}

// selfCPU is the benchmark's own CPU time, reported beside the daemon's:
// on a small machine the clients compete with the daemon for the cores.
func selfCPU() time.Duration {
	d, _ := procCPU(os.Getpid())
	return d
}
