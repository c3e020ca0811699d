package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ClientCmd, as the first word of a command, stands for the C test client
// built from testdata/c/rpcclient.c (see the comment at its top for the
// operations it understands).
const ClientCmd = "rpcclient"

// ReadyTimeout bounds how long a daemon may take to start answering.
const ReadyTimeout = 10 * time.Second

// DaemonSpec says how to start one kind of portmapper.
type DaemonSpec struct {
	// Name labels the daemon in reports ("rpcbind", "portmapd").
	Name string
	// Argv returns the command line; it may build the daemon first.
	Argv func(t testing.TB) []string
	// Ready lists the listeners to wait for before the daemon counts as
	// started: "udp", "tcp", "udp6", "tcp6" (port 111) and "local"
	// (/run/rpcbind.sock).
	Ready []string
}

// Rpcbind is Debian's rpcbind in the foreground (-f), without warm start
// (-w) so that every run starts empty, plus extra arguments such as "-i"
// (insecure) or "-r" (remote calls, a Debian extension).
func Rpcbind(extra ...string) DaemonSpec {
	return DaemonSpec{
		Name: "rpcbind",
		Argv: func(t testing.TB) []string {
			t.Helper()
			path, err := exec.LookPath("rpcbind")
			if err != nil {
				// Debian installs it in /usr/sbin, which may not be on a
				// test's PATH.
				if _, err := os.Stat("/usr/sbin/rpcbind"); err != nil {
					t.Skip("e2e: rpcbind not installed (apt-get install rpcbind)")
				}
				path = "/usr/sbin/rpcbind"
			}
			return append([]string{path, "-f"}, extra...)
		},
		Ready: []string{"udp", "tcp", "udp6", "tcp6", "local"},
	}
}

// Portmapd is this repository's daemon ("portmapd serve", port 111 by
// default) with extra arguments. It waits for every listener rpcbind has,
// less IPv6 with --no-ipv6 and the local socket with --socket=; use
// WithReady for anything else.
func Portmapd(extra ...string) DaemonSpec {
	ready := []string{"udp", "tcp", "udp6", "tcp6", "local"}
	for _, a := range extra {
		switch a {
		case "--no-ipv6":
			ready = slices.DeleteFunc(ready, func(l string) bool { return strings.HasSuffix(l, "6") })
		case "--socket=":
			ready = slices.DeleteFunc(ready, func(l string) bool { return l == "local" })
		}
	}
	return DaemonSpec{
		Name: "portmapd",
		Argv: func(t testing.TB) []string {
			t.Helper()
			return append([]string{PortmapdPath(t), "serve"}, extra...)
		},
		Ready: ready,
	}
}

// WithReady returns a copy of s that waits for the given listeners.
func (s DaemonSpec) WithReady(ready ...string) DaemonSpec {
	s.Ready = ready
	return s
}

// Named returns a copy of s labelled name in reports.
func (s DaemonSpec) Named(name string) DaemonSpec {
	s.Name = name
	return s
}

// Daemon is a portmapper running in a namespace; Run and Client run
// commands next to it.
type Daemon struct {
	Spec DaemonSpec
	NS   *Namespace
	Proc *Proc
	t    testing.TB
}

// StartDaemon creates a namespace and starts the daemon in it (see
// StartDaemonIn).
func StartDaemon(t testing.TB, spec DaemonSpec) *Daemon {
	t.Helper()
	RequireNamespaces(t)
	ClientPath(t)
	spec.Argv(t) // build or skip before creating the namespace
	return StartDaemonIn(t, NewNamespace(t), spec)
}

// StartDaemonIn starts the daemon in ns, e.g. again after Stop for a
// restart, and waits until its listeners exist and it answered one NULL
// call. Exactly one call is made, so that statistics (GETSTAT) stay the
// same from run to run.
func StartDaemonIn(t testing.TB, ns *Namespace, spec DaemonSpec) *Daemon {
	t.Helper()
	client := ClientPath(t)
	argv := spec.Argv(t)
	d := &Daemon{Spec: spec, NS: ns, t: t}
	d.Proc = ns.Start(spec.Name, argv...)
	deadline := time.Now().Add(ReadyTimeout)
	for {
		if d.Proc.Exited() {
			t.Fatalf("e2e: %s exited while starting (%s)\nstderr:\n%s", spec.Name, d.Proc.ExitStatus(), d.Proc.Stderr())
		}
		missing := d.missingListeners()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			d.Proc.Stop()
			t.Fatalf("e2e: %s not listening on %v after %v\nstderr:\n%s", spec.Name, missing, ReadyTimeout, d.Proc.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	transport := "udp"
	if !slices.Contains(spec.Ready, "udp") && len(spec.Ready) > 0 {
		transport = spec.Ready[0]
	}
	ping := NewCall(0x70696e67, 100000, 2, 0).Hex()
	op := "raw " + transport + " " + ping
	out := ns.Run(ReadyTimeout, client, "-w", "3000", op)
	if !strings.HasPrefix(out.Stdout, op+": reply ") {
		t.Fatalf("e2e: %s does not answer a NULL call: %q %s\nstderr:\n%s", spec.Name, out.Stdout, out.Status(), d.Proc.Stderr())
	}
	return d
}

// Run runs argv in the daemon's namespace; ClientCmd as argv[0] means the C
// test client.
func (d *Daemon) Run(timeout time.Duration, argv ...string) Output {
	d.t.Helper()
	if len(argv) > 0 && argv[0] == ClientCmd {
		argv = append([]string{ClientPath(d.t)}, argv[1:]...)
	}
	return d.NS.Run(timeout, argv...)
}

// Client runs the C test client with the given operations.
func (d *Daemon) Client(ops ...string) Output {
	d.t.Helper()
	return d.Run(0, append([]string{ClientCmd}, ops...)...)
}

// Stop ends the daemon with SIGTERM, as an init system would (rpcbind
// writes its warm-start files then), and kills it if it is still running
// after 5 seconds. It fails the test if the daemon was already gone.
func (d *Daemon) Stop() {
	d.t.Helper()
	if err := d.Proc.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("e2e: stopping %s: %v (%s)\nstderr:\n%s", d.Spec.Name, err, d.Proc.ExitStatus(), d.Stderr())
	}
	if !d.Proc.Wait(5 * time.Second) {
		d.Proc.Stop()
		d.t.Errorf("e2e: %s ignored SIGTERM for 5s and was killed", d.Spec.Name)
	}
}

// Alive reports whether the daemon is still running.
func (d *Daemon) Alive() bool { return !d.Proc.Exited() }

// Stderr returns what the daemon logged so far.
func (d *Daemon) Stderr() string { return d.Proc.Stderr() }

func (d *Daemon) missingListeners() []string {
	var missing []string
	for _, l := range d.Spec.Ready {
		var ok bool
		switch l {
		case "local":
			_, err := os.Stat(d.NS.HostPath("/run/rpcbind.sock"))
			ok = err == nil
		case "udp", "udp6":
			ok = listening(d.NS.Pid(), l, "07") // TCP_CLOSE: a bound UDP socket
		case "tcp", "tcp6":
			ok = listening(d.NS.Pid(), l, "0A") // TCP_LISTEN
		default:
			d.t.Fatalf("e2e: unknown listener %q in %s's Ready", l, d.Spec.Name)
		}
		if !ok {
			missing = append(missing, l)
		}
	}
	return missing
}

// listening reads /proc/PID/net/PROTO, the socket table of PID's network
// namespace, for a local port 111 in the given state. Looking instead of
// calling keeps the daemon's statistics untouched.
func listening(pid int, proto, state string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, proto))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], ":006F") && f[3] == state {
			return true
		}
	}
	return false
}
