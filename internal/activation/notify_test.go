package activation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notifySocket listens where systemd would, at a path or an abstract name.
func notifySocket(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receive reads one notification, failing after a few seconds.
func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifierSendsWhatSystemdReads(t *testing.T) {
	for _, where := range []string{"path", "abstract"} {
		t.Run(where, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "notify")
			if where == "abstract" {
				name = fmt.Sprintf("@portmapd-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano())
			}
			sock := notifySocket(t, name)
			t.Setenv("NOTIFY_SOCKET", name)
			n, err := NewNotifier(true)
			if err != nil || !n.Enabled() {
				t.Fatalf("NewNotifier: %v, enabled %v", err, n.Enabled())
			}
			if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
				t.Errorf("NOTIFY_SOCKET=%q still set", v)
			}
			tests := []struct {
				name string
				send func() error
				want string
			}{
				{"ready", n.Ready, "READY=1"},
				{"stopping", n.Stopping, "STOPPING=1"},
				{"status", func() error { return n.Status("serving 12 registrations") }, "STATUS=serving 12 registrations"},
				{"status keeps to one line", func() error { return n.Status("a\nREADY=1") }, "STATUS=a READY=1"},
				{"watchdog", n.WatchdogPing, "WATCHDOG=1"},
				{"several at once", func() error { return n.Notify("READY=1", "STATUS=up") }, "READY=1\nSTATUS=up"},
			}
			for _, tt := range tests {
				if err := tt.send(); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if got := receive(t, sock); got != tt.want {
					t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
				}
			}
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			got := receive(t, sock)
			first, usec, ok := strings.Cut(got, "\nMONOTONIC_USEC=")
			if !ok || first != "RELOADING=1" {
				t.Fatalf("reloading: got %q", got)
			}
			if v, err := strconv.ParseUint(usec, 10, 64); err != nil || v == 0 {
				t.Errorf("reloading: MONOTONIC_USEC=%q", usec)
			}
		})
	}
}

func TestNotifierIsInertOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	n, err := NewNotifier(false)
	if err != nil || n != nil {
		t.Fatalf("got %v, %v; want nil, nil", n, err)
	}
	for _, f := range []func() error{n.Ready, n.Stopping, n.Reloading, n.WatchdogPing} {
		if err := f(); err != nil {
			t.Errorf("nil notifier: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.RunWatchdog(ctx, time.Second, nil) // returns at once
}

func TestNewNotifierRefusesRelativePaths(t *testing.T) {
	for _, v := range []string{"notify", "@", "vsock:2:1234"} {
		t.Setenv("NOTIFY_SOCKET", v)
		if _, err := NewNotifier(false); err == nil {
			t.Errorf("NOTIFY_SOCKET=%q accepted", v)
		}
	}
}

func TestNotifyReportsAMissingManager(t *testing.T) {
	n, err := notifierFor(filepath.Join(t.TempDir(), "nobody-listens"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err == nil {
		t.Fatal("sending to a socket nobody listens on succeeded")
	}
}

func TestRunWatchdogPingsAtHalfTheInterval(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	sock := notifySocket(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	interval, err := WatchdogInterval(true)
	if err != nil || interval != 200*time.Millisecond {
		t.Fatalf("WatchdogInterval: %v, %v", interval, err)
	}
	for _, k := range []string{"WATCHDOG_USEC", "WATCHDOG_PID"} {
		if _, ok := os.LookupEnv(k); ok {
			t.Errorf("%s still set", k)
		}
	}
	n, err := NewNotifier(true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); n.RunWatchdog(ctx, interval, nil) }()
	var times []time.Duration
	for range 4 {
		if got := receive(t, sock); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
		times = append(times, time.Since(start))
	}
	cancel()
	<-done
	// Four pings at 100 ms steps take about 400 ms; the bounds leave room
	// for a loaded machine but catch pinging at the full interval (800 ms)
	// or in a busy loop.
	if last := times[len(times)-1]; last < 350*time.Millisecond || last > 750*time.Millisecond {
		t.Errorf("four pings took %v (at %v), want about 400ms", last, times)
	}
}

func TestRunWatchdogWithholdsPingsWhileUnhealthy(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	sock := notifySocket(t, name)
	n, err := notifierFor(name)
	if err != nil {
		t.Fatal(err)
	}
	healthy := make(chan bool, 1)
	healthy <- false
	state := false
	check := func() error {
		select {
		case state = <-healthy:
		default:
		}
		if !state {
			return errors.New("udp loop exited")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.RunWatchdog(ctx, 20*time.Millisecond, check)
	if got := receive(t, sock); got != "STATUS=unhealthy, watchdog withheld: udp loop exited" {
		t.Fatalf("while unhealthy got %q", got)
	}
	healthy <- true
	// Drain the repeated status lines until the daemon recovers; bounded
	// by receive's deadline and the count.
	var got string
	for range 50 {
		if got = receive(t, sock); !strings.HasPrefix(got, "STATUS=unhealthy") {
			break
		}
	}
	if got != "STATUS=healthy again" {
		t.Fatalf("after recovery got %q", got)
	}
	if got := receive(t, sock); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q, want a ping", got)
	}
}
