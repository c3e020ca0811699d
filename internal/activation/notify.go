package activation

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// notifyTimeout bounds one notification. systemd reads its notify socket
// promptly; if it does not (a manager being re-executed, a full queue),
// a daemon must not stall serving calls while it waits.
const notifyTimeout = 2 * time.Second

// Notifier sends state changes to the service manager. A nil *Notifier is
// valid and does nothing, so the daemon calls it unconditionally.
type Notifier struct {
	addr *net.UnixAddr
}

// NewNotifier returns a Notifier for $NOTIFY_SOCKET, or nil (no error)
// when the variable is unset: the daemon is not run by systemd, or by a
// unit whose Type is not notify. With unsetEnv the variable is removed so
// that programs this process starts do not report in its name.
//
// The socket may be a path or, starting with '@', a name in the abstract
// namespace (which is what systemd in a container often hands out).
func NewNotifier(unsetEnv bool) (*Notifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if unsetEnv {
		os.Unsetenv("NOTIFY_SOCKET")
	}
	if path == "" {
		return nil, nil
	}
	return notifierFor(path)
}

func notifierFor(path string) (*Notifier, error) {
	if path[0] != '/' && path[0] != '@' {
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q: neither an absolute path nor an abstract socket name", path)
	}
	if len(path) < 2 {
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q: empty socket name", path)
	}
	// The Go runtime turns a leading '@' into the NUL byte that selects
	// the abstract namespace.
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}, nil
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil }

// Notify sends the assignments (such as "READY=1") as one datagram. Each
// call opens its own socket: notifications are rare, and a socket kept
// open would outlive a re-executed manager's.
func (n *Notifier) Notify(assignments ...string) error {
	if n == nil || len(assignments) == 0 {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(notifyTimeout)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	if _, err := c.Write([]byte(strings.Join(assignments, "\n"))); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Ready says start-up is complete: every socket is served, so units
// ordered after rpcbind.target (nfs-server, rpc-statd) may start.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping says shutdown has begun.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Reloading says the configuration is being reloaded; send Ready once it
// is done. MONOTONIC_USEC goes with it because Type=notify-reload
// (systemd 253 and later) requires it to match the reload to its end.
func (n *Notifier) Reloading() error {
	if n == nil {
		return nil
	}
	usec, err := monotonicUsec()
	if err != nil {
		return n.Notify("RELOADING=1")
	}
	return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatUint(usec, 10))
}

// Status sets the one-line status "systemctl status" shows. Newlines
// would start new assignments, so they become spaces.
func (n *Notifier) Status(s string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// WatchdogPing tells the manager the daemon is alive.
func (n *Notifier) WatchdogPing() error { return n.Notify("WATCHDOG=1") }

// WatchdogInterval returns WATCHDOG_USEC, the time within which systemd
// expects a ping (WatchdogSec= in the unit), or 0 when no watchdog is
// armed for this process (unset, or WATCHDOG_PID names another process).
// With unsetEnv both variables are removed.
func WatchdogInterval(unsetEnv bool) (time.Duration, error) {
	d, err := watchdogEnv(os.Getenv, os.Getpid())
	if unsetEnv {
		os.Unsetenv("WATCHDOG_USEC")
		os.Unsetenv("WATCHDOG_PID")
	}
	return d, err
}

func watchdogEnv(getenv func(string) string, pid int) (time.Duration, error) {
	usecStr := getenv("WATCHDOG_USEC")
	if usecStr == "" {
		return 0, nil
	}
	if pidStr := getenv("WATCHDOG_PID"); pidStr != "" {
		p, err := strconv.Atoi(pidStr)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID=%q is not a process id", pidStr)
		}
		if p != pid {
			return 0, nil
		}
	}
	usec, err := strconv.ParseUint(usecStr, 10, 64)
	if err != nil || usec == 0 || usec > math.MaxInt64/uint64(time.Microsecond) {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q is not a positive number of microseconds", usecStr)
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// RunWatchdog pings every interval/2 until ctx ends; half the interval,
// as sd_watchdog_enabled(3) advises, so one late tick does not get the
// daemon killed. Before each ping it calls check (if not nil): an error
// withholds the ping and goes to the status line instead, so a daemon
// whose serving loops have died is restarted by systemd rather than kept
// alive by a timer that still runs. Failed sends are not fatal; the next
// tick tries again. It returns at once when n is nil or interval is not
// positive.
func (n *Notifier) RunWatchdog(ctx context.Context, interval time.Duration, check func() error) {
	if n == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	unhealthy := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if check != nil {
			if err := check(); err != nil {
				n.Status("unhealthy, watchdog withheld: " + err.Error())
				unhealthy = true
				continue
			}
			if unhealthy {
				unhealthy = false
				n.Status("healthy again")
			}
		}
		n.WatchdogPing()
	}
}

// monotonicUsec reads CLOCK_MONOTONIC, the clock systemd compares
// MONOTONIC_USEC against. Go's time package hides its monotonic reading,
// and the syscall package has no wrapper, so the system call is made
// directly.
func monotonicUsec() (uint64, error) {
	const clockMonotonic = 1
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, e
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3, nil
}
