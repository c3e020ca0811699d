package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
)

// The abstract local socket (@/run/rpcbind.sock): libtirpc 1.3.5+,
// rpcinfo 1.2.7+ and Linux 5.19+ connect to it before /run/rpcbind.sock.
// libtirpc 1.3.3 (Debian 12) does not, so the C client is told to with
// -L @NAME.

const abstractName = "@/run/rpcbind.sock"

// TestAbstractSocketOwners: over the abstract socket, as over the path,
// the owner of a registration is the peer's uid from SO_PEERCRED
// ("superuser" for root), SET and UNSET are allowed, and v2 and v3 are
// served. The daemon has no path socket here, so every call below that
// succeeds went through the abstract name.
func TestAbstractSocketOwners(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Portmapd("--socket=", "--abstract-socket="+abstractName))
	as := func(uid string, ops ...string) Output {
		argv := []string{ClientCmd, "-L", abstractName}
		if uid != "" {
			argv = append(argv, "-u", uid)
		}
		return d.Run(0, append(argv, ops...)...)
	}
	expect := func(what string, out Output, want ...string) {
		t.Helper()
		if got := strings.TrimRight(out.Stdout, "\n"); got != strings.Join(want, "\n") || out.Exit != 0 {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s\nstderr: %s", what, out.Status(), got, strings.Join(want, "\n"), out.Stderr)
		}
	}
	expect("no path socket", d.Run(0, ClientCmd, "-L", "/run/rpcbind.sock", "v3 local null"),
		"v3 local null: create_error RPC_SYSTEMERROR(No such file or directory)")
	expect("SET as root", as("", "v3 local set 400030 1 tcp 0.0.0.0.16.40 someone", "v4 local set 400030 1 udp 0.0.0.0.16.40"),
		"v3 local set 400030 1 tcp 0.0.0.0.16.40 someone: true",
		"v4 local set 400030 1 udp 0.0.0.0.16.40: true")
	expect("SET as uid 1000, v3 and v2", as("1000", "v3 local set 400031 1 udp 0.0.0.0.16.41 root", "v2 local set 400032 1 17 4300"),
		"v3 local set 400031 1 udp 0.0.0.0.16.41 root: true",
		"v2 local set 400032 1 17 4300: true")
	own := []string{
		"  100000 4 tcp6 ::.0.111 superuser",
		"  100000 3 tcp6 ::.0.111 superuser",
		"  100000 4 udp6 ::.0.111 superuser",
		"  100000 3 udp6 ::.0.111 superuser",
		"  100000 4 tcp 0.0.0.0.0.111 superuser",
		"  100000 3 tcp 0.0.0.0.0.111 superuser",
		"  100000 2 tcp 0.0.0.0.0.111 superuser",
		"  100000 4 udp 0.0.0.0.0.111 superuser",
		"  100000 3 udp 0.0.0.0.0.111 superuser",
		"  100000 2 udp 0.0.0.0.0.111 superuser",
		// Without a path, the local rows name the abstract socket.
		"  100000 4 local @/run/rpcbind.sock superuser",
		"  100000 3 local @/run/rpcbind.sock superuser",
	}
	expect("DUMP shows the owners", as("", "v3 local dump"), append(append([]string{"v3 local dump: 16 rows"}, own...),
		"  400030 1 tcp 0.0.0.0.16.40 superuser",
		"  400030 1 udp 0.0.0.0.16.40 superuser",
		"  400031 1 udp 0.0.0.0.16.41 1000",
		"  400032 1 udp 0.0.0.0.16.204 1000")...)
	// v2 UNSET answers TRUE even so, as rpcbind 1.2.6 does over its
	// path: the tcp half matched nothing, which counts as done.
	expect("UNSET by another uid removes nothing", as("1001", "v3 local unset 400031 1 -", "v2 local unset 400032 1", "v3 local dump"),
		append(append([]string{"v3 local unset 400031 1 -: false", "v2 local unset 400032 1: true", "v3 local dump: 16 rows"}, own...),
			"  400030 1 tcp 0.0.0.0.16.40 superuser",
			"  400030 1 udp 0.0.0.0.16.40 superuser",
			"  400031 1 udp 0.0.0.0.16.41 1000",
			"  400032 1 udp 0.0.0.0.16.204 1000")...)
	expect("UNSET by the owner", as("1000", "v3 local unset 400031 1 -", "v3 local unset 400030 1 -"),
		"v3 local unset 400031 1 -: true",
		"v3 local unset 400030 1 -: false")
	expect("UNSET by root", as("", "v2 local unset 400032 1", "v4 local unset 400030 1 -"),
		"v2 local unset 400032 1: true",
		"v4 local unset 400030 1 -: true")
	expect("what is left", as("", "v3 local dump"), append([]string{"v3 local dump: 12 rows"}, own...)...)
}

// TestAbstractSocketBelongsToTheNetworkNamespace: a process in another
// network namespace that shares this mount namespace (so /run and its
// rpcbind.sock are the same files) reaches, through the abstract name,
// the portmapper of its own network namespace, or none, and never this
// one; through the path it still reaches this one.
func TestAbstractSocketBelongsToTheNetworkNamespace(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Portmapd())
	client, portmapd := ClientPath(t), PortmapdPath(t)
	run := func(argv ...string) Output {
		t.Helper()
		out := d.Run(0, argv...)
		if out.Err != "" {
			t.Fatalf("%v: %s\n%s%s", argv, out.Status(), out.Stdout, out.Stderr)
		}
		return out
	}
	// A second network namespace, entered with nsenter --net only: the
	// mount namespace stays this one.
	run("ip", "netns", "add", "other")
	run("ip", "-n", "other", "link", "set", "lo", "up")
	inOther := func(argv ...string) Output {
		t.Helper()
		return run(append([]string{"nsenter", "--net=/run/netns/other", "--"}, argv...)...)
	}
	has := func(what string, out Output, want, notWant string) {
		t.Helper()
		if want != "" && !strings.Contains(out.Stdout, want) || notWant != "" && strings.Contains(out.Stdout, notWant) {
			t.Errorf("%s: want %q and not %q in:\n%s%s", what, want, notWant, out.Stdout, out.Stderr)
		}
	}

	has("SET here through the abstract name", run(client, "-L", abstractName, "v3 local set 400041 1 tcp 0.0.0.0.1.1"),
		"400041 1 tcp 0.0.0.0.1.1: true", "")
	has("the abstract name in the other namespace: nobody", inOther(client, "-L", abstractName, "v3 local dump"),
		"create_error RPC_SYSTEMERROR(Connection refused)", "400041")
	has("the path from the other namespace: this portmapper", inOther(client, "-L", "/run/rpcbind.sock", "v3 local dump"),
		"400041 1 tcp", "")
	has("portmapd info there falls back to the path", inOther(portmapd, "info"), "400041", "")

	// The other namespace's own portmapper, on the abstract name only
	// (the path and rpcbind's lock file are this namespace's daemon's).
	other := d.NS.Start("other portmapd", "nsenter", "--net=/run/netns/other", "--", portmapd, "serve",
		"--socket=", "--abstract-socket="+abstractName, "--lock-file=/run/other.lock", "--no-ipv6", "--log-level=warn")
	for i := 0; ; i++ {
		out := inOther(client, "-L", abstractName, "v3 local null")
		if strings.Contains(out.Stdout, "v3 local null: ok") {
			break
		}
		if other.Exited() || i == 200 {
			t.Fatalf("the other portmapd does not answer on %s (%s): %s", abstractName, other.ExitStatus(), other.Stderr())
		}
		time.Sleep(25 * time.Millisecond)
	}
	has("SET there through the abstract name", inOther(client, "-L", abstractName, "v3 local set 400040 1 tcp 0.0.0.0.1.2"),
		"400040 1 tcp 0.0.0.0.1.2: true", "")
	has("portmapd info there: its own portmapper", inOther(portmapd, "info"), "400040", "400041")
	has("portmapd dump there (the Go client's DialLocal): its own", inOther(portmapd, "dump"), "400040", "400041")
	has("the path from there: still this one", inOther(client, "-L", "/run/rpcbind.sock", "v3 local dump"), "400041", "400040")
	has("portmapd info here: this one", run(portmapd, "info"), "400041", "400040")
}

// TestRpcbindLockExcludesBothWays: portmapd takes /run/rpcbind.lock as
// Debian's rpcbind 1.2.6 does (open O_RDONLY|O_CREAT, flock LOCK_EX|
// LOCK_NB, as strace shows), so neither starts while the other runs.
func TestRpcbindLockExcludesBothWays(t *testing.T) {
	t.Parallel()
	r := StartDaemon(t, Rpcbind())
	out := r.Run(10*time.Second, PortmapdPath(t), "serve")
	msg := regexp.MustCompile(`(?m)^portmapd: another portmapper is already running: rpcbind \(pid \d+\) holds /run/rpcbind\.lock; ` +
		`stop it first \(systemctl stop rpcbind\.socket rpcbind\.service\)$`)
	if out.Exit != 1 || out.Err != "" || !msg.MatchString(out.Stderr) {
		t.Errorf("portmapd beside rpcbind: %s\n%s", out.Status(), out.Stderr)
	}
	if ping := r.Client("v2 udp null"); !strings.Contains(ping.Stdout, ": ok") {
		t.Errorf("rpcbind stopped answering: %s", ping.Stdout)
	}
	r.Stop()

	p := StartDaemonIn(t, r.NS, Portmapd())
	rpcbind := r.Spec.Argv(t)[0]
	out = p.Run(10*time.Second, rpcbind, "-f")
	if out.Exit != 1 || out.Err != "" || !strings.Contains(out.Stderr, "another rpcbind is already running") {
		t.Errorf("rpcbind beside portmapd: %s\n%s", out.Status(), out.Stderr)
	}
	if ping := p.Client("v3 local null", "v2 udp null"); strings.Count(ping.Stdout, ": ok") != 2 {
		t.Errorf("portmapd stopped answering on its sockets: %s", ping.Stdout)
	}
}

// TestSocketActivationWithTheAbstractSocket: a socket unit with
// ListenStream=@/run/rpcbind.sock passes a listener bound to an abstract
// name. portmapd serves it as netid local beside the passed path socket,
// binds neither of its own, and lists the path in its own rows. The names
// are unique: this runs in the machine's network namespace.
func TestSocketActivationWithTheAbstractSocket(t *testing.T) {
	dir := t.TempDir()
	tcp, udp := daemontest.PortPair(t, loopback4)
	port := tcp.Addr().(*net.TCPAddr).Port
	sockPath := filepath.Join(dir, "passed.sock")
	unix, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	unique := fmt.Sprintf("@portmapd-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())
	abstract, err := net.Listen("unix", unique+"-passed")
	if err != nil {
		t.Fatal(err)
	}
	files := socketFiles(t, tcp.(*net.TCPListener), udp, unix.(*net.UnixListener), abstract.(*net.UnixListener))
	ownPath, ownName := filepath.Join(dir, "own.sock"), unique+"-own"
	_, stderr := startActivated(t, files, []string{"LISTEN_FDNAMES=tcp:udp:local:abstract"},
		"--port", strconv.Itoa(daemontest.ClosedPort(t)), "--no-ipv6", "--socket", ownPath, "--abstract-socket", ownName,
		"--lock-file", filepath.Join(dir, "lock"), "--log-level", "info")
	tcp.Close()
	udp.Close()
	unix.(*net.UnixListener).SetUnlinkOnClose(false)
	unix.Close()
	abstract.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *client.Client
	for i := 0; ; i++ {
		if c, err = client.Dial(ctx, "unix", unique+"-passed"); err == nil {
			break
		}
		if i == 200 {
			t.Fatalf("the passed abstract socket does not answer: %v\nlog:\n%s", err, stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	defer c.Close()
	rows, err := c.Dump(ctx)
	if err != nil {
		t.Fatalf("DUMP over the passed abstract socket: %v\nlog:\n%s", err, stderr.String())
	}
	var local []string
	for _, m := range rows {
		if m.Netid == "local" {
			local = append(local, m.Addr)
		}
	}
	if strings.Join(local, " ") != sockPath+" "+sockPath {
		t.Errorf("own local rows %q, want the passed path twice (v4, v3)", local)
	}
	if p, err := c.GetPort(ctx, pmap.Program, 2, pmap.ProtoUDP); err != nil || p != uint32(port) {
		t.Errorf("GETPORT over the abstract socket = %d, %v; want the passed port %d", p, err, port)
	}
	if _, err := os.Stat(ownPath); err == nil {
		t.Error("the daemon bound --socket although a path socket was passed")
	}
	if conn, err := net.Dial("unix", ownName); err == nil {
		conn.Close()
		t.Error("the daemon bound --abstract-socket although an abstract socket was passed")
	}
	if !strings.Contains(stderr.String(), `"abstract": true`) {
		t.Errorf("the log does not say the passed socket is abstract:\n%s", stderr.String())
	}
}
