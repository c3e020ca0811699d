package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds on a daemon's life cycle.
const (
	readyTimeout = 30 * time.Second // spawn to first answer
	pollEvery    = time.Millisecond // NULL calls while waiting for it
	stopTimeout  = 10 * time.Second // SIGTERM to exit, then SIGKILL
)

// process is a spawned daemon.
type process struct {
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when it has exited
	err  error         // how it exited, valid after done
}

// spawn starts argv with its output kept in a small buffer for error
// messages, and returns it with the time it was started.
func spawn(argv []string) (*process, time.Time, error) {
	if len(argv) == 0 {
		return nil, time.Time{}, errors.New("empty daemon command")
	}
	p := &process{out: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...) //nolint:gosec // G204: the daemon under test, as the operator named it
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// If the benchmark dies the daemon goes too, rather than holding port
	// 111 of the namespace, or of whatever it was started in. Its own
	// process group lets stop kill whatever it started as well.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// A child of the daemon that outlives it would hold its output pipe
	// open, and Wait with it.
	p.cmd.WaitDelay = time.Second
	started := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, started, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, started, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the daemon to exit with SIGTERM, which is also what makes
// rpcbind -w write its warm-start files, and kills it if it has not exited
// within stopTimeout. It reports an error if it had to kill it.
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // already gone: p.done says so
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL) // the error below says it was killed
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.cmd.Path, stopTimeout)
	}
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
		if p != nil && p.exited() {
			return 0, fmt.Errorf("daemon exited before answering (%w): %s", p.err, p.out.tail(1000))
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

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// tail returns the last n bytes written, without the final newline.
func (t *tailBuffer) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b[max(0, len(t.b)-n):]
	return strings.TrimRight(string(b), "\n")
}

// selfCPU is the benchmark's own CPU time, reported beside the daemon's:
// on a small machine the clients compete with the daemon for the cores.
func selfCPU() time.Duration {
	d, _ := procCPU(os.Getpid())
	return d
}
