package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// TestSocketActivation passes real descriptors the way systemd does
// (LISTEN_FDS, LISTEN_PID, fds from 3): portmapd serves them instead of
// binding its own, lists them as its own rows, tells NOTIFY_SOCKET it is
// ready, and that it is stopping on SIGTERM.
func TestSocketActivation(t *testing.T) {
	dir := t.TempDir()
	tcp, udp := daemontest.PortPair(t, loopback4)
	port := tcp.Addr().(*net.TCPAddr).Port
	sockPath := filepath.Join(dir, "passed.sock")
	unix, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	files := socketFiles(t, tcp.(*net.TCPListener), udp, unix.(*net.UnixListener))
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	// The daemon is told another port and no local socket: whatever it
	// serves on port and sockPath came from the descriptors. The other
	// port refuses connections and is the test's, so a daemon that bound
	// it would not even start.
	other := daemontest.ClosedPort(t)
	cmd, stderr := startActivated(t, files, []string{"LISTEN_FDNAMES=tcp:udp:local", "NOTIFY_SOCKET=" + filepath.Join(dir, "notify")},
		"--port", strconv.Itoa(other), "--no-ipv6", "--socket", filepath.Join(dir, "own.sock"),
		"--lock-file", filepath.Join(dir, "lock"), "--log-level", "warn")
	tcp.Close()
	udp.Close()
	unix.(*net.UnixListener).SetUnlinkOnClose(false) // the daemon owns it now
	unix.Close()

	readNotify := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
			notify.SetReadDeadline(end)
			n, err := notify.Read(buf)
			if err != nil {
				break
			}
			if strings.Contains(string(buf[:n]), want) {
				return
			}
		}
		t.Fatalf("no %s on NOTIFY_SOCKET; log:\n%s", want, stderr.String())
	}
	readNotify("READY=1")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tr := range []struct{ network, addr string }{{"udp", fmt.Sprintf("127.0.0.1:%d", port)},
		{"tcp", fmt.Sprintf("127.0.0.1:%d", port)}, {"unix", sockPath}} {
		c, err := client.Dial(ctx, tr.network, tr.addr)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.GetPort(ctx, pmap.Program, 2, pmap.ProtoTCP)
		c.Close()
		if err != nil || p != uint32(port) {
			t.Fatalf("%s %s: GETPORT = %d, %v; want the passed port %d\nlog:\n%s", tr.network, tr.addr, p, err, port, stderr.String())
		}
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", other), time.Second); err == nil {
		c.Close()
		t.Error("the daemon also bound --port although tcp was passed")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	readNotify("STOPPING=1")
}

// startActivated runs portmapd serve as systemd would with files passed
// as descriptors 3 and up (LISTEN_PID set to the daemon's own pid by a
// shell that then execs it), closing the test's copies of the files.
func startActivated(t *testing.T, files []*os.File, env []string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	argv := append([]string{"-c", `LISTEN_PID=$$ exec "$@"`, "sh", PortmapdPath(t), "serve"}, args...)
	cmd := daemonCommand(t, "/bin/sh", argv...)
	cmd.ExtraFiles = files
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("LISTEN_FDS=%d", len(files))), env...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() })
	for _, f := range files {
		f.Close()
	}
	return cmd, stderr
}

// socketFiles duplicates sockets' descriptors for passing.
func socketFiles(t *testing.T, socks ...interface{ File() (*os.File, error) }) []*os.File {
	t.Helper()
	var files []*os.File
	for _, c := range socks {
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// TestSignals: SIGUSR1 writes the table to the log; SIGHUP rereads the
// environment file and applies its access lists at once, keeping every
// registration; a second daemon on the same lock file names the first.
func TestSignals(t *testing.T) {
	dir := t.TempDir()
	port, files := passLoopback(t)
	env := filepath.Join(dir, "portmapd.default")
	if err := os.WriteFile(env, []byte("OPTIONS=\"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "lock")
	cmd, stderr := startActivated(t, files(), nil, "--port", strconv.Itoa(port), "--socket", filepath.Join(dir, "s.sock"),
		"--lock-file", lock, "--env-file", env, "--hosts-files=false", "--log-level", "info")
	waitReady(t, port, cmd, stderr)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	local, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if ok, err := local.Set(ctx, pmap.Mapping{Prog: 400500, Vers: 1, Netid: "udp", Addr: "0.0.0.0.39.17"}); !ok || err != nil {
		t.Fatalf("SET: %v %v", ok, err)
	}
	// A client from 127.0.0.2, which hosts.deny-style rules can name.
	from2 := func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		defer conn.Close()
		msg := append(rpc.AppendCall(nil, 7, pmap.Program, 2, pmap.ProcGetport, rpc.OpaqueAuth{}), make([]byte, 16)...)
		if err := rpc.WriteRecord(conn, msg); err != nil {
			return err
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		rec, err := rpc.NewRecordReader(conn, 1<<16).Next()
		if err != nil {
			return err
		}
		_, err = rpc.ParseReply(xdr.NewDecoder(rec))
		return err
	}
	if err := from2(); err != nil {
		t.Fatalf("127.0.0.2 before the reload: %v", err)
	}

	cmd.Process.Signal(syscall.SIGUSR1)
	waitLog(t, stderr, `"prog": 400500`)

	os.WriteFile(env, []byte("OPTIONS=\"--deny 127.0.0.2\"\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, stderr, "SIGHUP: reloaded")
	var re *rpc.ReplyError
	if err := from2(); !errors.As(err, &re) || re.Auth != rpc.AuthTooWeak {
		t.Fatalf("127.0.0.2 after --deny was reloaded: %v, want AUTH_TOOWEAK", err)
	}
	if p, err := local.GetPort(ctx, 400500, 1, pmap.ProtoUDP); err != nil || p != 10001 {
		t.Fatalf("registration after the reload: %d %v", p, err)
	}

	// Refused at the lock, before binding anything: any port will do.
	second := exec.Command(PortmapdPath(t), "serve", "--port", "0", "--socket", filepath.Join(dir, "t.sock"),
		"--lock-file", lock, "--env-file", "")
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("second instance on the same lock: %v\n%s", err, out)
	}
}

// TestMetrics scrapes the optional metrics listener after some calls.
func TestMetrics(t *testing.T) {
	port, mport := startWithMetrics(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		c.GetPort(ctx, pmap.Program, 2, pmap.ProtoUDP)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`portmapd_calls_total{outcome="success",procedure="getport",transport="udp",version="2"} `,
		"portmapd_registrations 12",
		"portmapd_open_connections",
		"portmapd_rejections_total",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `portmapd_calls_total{outcome="success",procedure="getport",transport="udp",version="2"}`) {
			if n, _ := strconv.Atoi(strings.Fields(sc.Text())[1]); n < 3 {
				t.Errorf("getport counted %d times, want at least 3", n)
			}
		}
	}
	// --socket= keeps this daemon off the machine's local socket, its
	// abstract name and rpcbind's lock while it starts and fails.
	if err := exec.Command(PortmapdPath(t), "serve", "--metrics", "0.0.0.0:1", "--port", "1", "--socket=").Run(); err == nil {
		t.Error("metrics on a non-loopback address accepted without --metrics-any-addr")
	}
}

// TestAddressesComeAndGo: bound to an address not yet on any interface,
// portmapd starts, binds it when it is added and releases it when it is
// removed, with no restart.
func TestAddressesComeAndGo(t *testing.T) {
	t.Parallel()
	ns := func() *Namespace { RequireNamespaces(t); ClientPath(t); return NewNamespace(t) }()
	d := StartDaemonIn(t, ns, Portmapd("--host", "10.9.9.9"))
	getport := func() string {
		return ns.Run(5*time.Second, ClientPath(t), "-4", "10.9.9.9", "-t", "1000", "v2 udp getport 100000 2 17").Stdout
	}
	if out := getport(); strings.Contains(out, ": 111") {
		t.Fatalf("answered on 10.9.9.9 before the address existed: %q", out)
	}
	if out := ns.Run(5*time.Second, "ip", "addr", "add", "10.9.9.9/32", "dev", "lo"); out.Status() != "exit 0" {
		t.Fatalf("ip addr add: %s %s", out.Status(), out.Stderr)
	}
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(getport(), ": 111") },
		func() string { return "not answering on 10.9.9.9 after it was added; log:\n" + d.Stderr() })
	ns.Run(5*time.Second, "ip", "addr", "del", "10.9.9.9/32", "dev", "lo")
	ns.Run(5*time.Second, "ip", "addr", "add", "10.9.9.9/32", "dev", "lo")
	// The socket bound to the old address keeps answering once the
	// address is back, so a reply alone does not show that the daemon saw
	// the change: wait for it to release the address and bind it again.
	// The log is read through a pipe and may trail the daemon, hence the
	// wait rather than one look.
	waitFor(t, 10*time.Second, func() bool {
		log := d.Stderr()
		return strings.Contains(log, "released an address that went away") &&
			strings.Count(log, "bound an address that appeared") == 2
	}, func() string { return "no release and second bind in the log:\n" + d.Stderr() })
	if out := getport(); !strings.Contains(out, ": 111") {
		t.Fatalf("not answering on 10.9.9.9 after it came back: %q; log:\n%s", out, d.Stderr())
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool, why func() string) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal(why())
		}
	}
}

func waitLog(t *testing.T, b *lockedBuffer, want string) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(b.String(), want) },
		func() string { return fmt.Sprintf("log lacks %q:\n%s", want, b.String()) })
}

// TestSocketActivationHonoursHost: rpcbind ignores -h for sockets systemd
// passes; portmapd closes a passed socket that --host excludes and binds
// the configured addresses itself.
func TestSocketActivationHonoursHost(t *testing.T) {
	dir := t.TempDir()
	// The daemon binds the port on 127.0.0.1 and 127.0.0.2 itself. The
	// test holds it on 127.0.0.3, TCP and UDP, until then, so no wildcard
	// socket can take it meanwhile.
	ls, _ := daemontest.OnePort(t, []netip.Addr{loopback3}, []netip.Addr{loopback3})
	passed, port := ls[0], ls[0].Addr().(*net.TCPAddr).Port
	cmd, stderr := startActivated(t, socketFiles(t, passed.(*net.TCPListener)), nil,
		"--port", strconv.Itoa(port), "--host", "127.0.0.2", "--no-ipv6", "--socket", filepath.Join(dir, "s.sock"),
		"--lock-file", filepath.Join(dir, "lock"), "--log-level", "warn")
	waitReady(t, port, cmd, stderr)
	passed.Close()
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.2:%d", port), time.Second); err != nil {
		t.Errorf("--host address not bound: %v", err)
	} else {
		c.Close()
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.3:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("the passed socket that --host excludes still accepts")
	}
	if !strings.Contains(stderr.String(), "--host excludes") {
		t.Errorf("no log line for the closed socket:\n%s", stderr.String())
	}
}

// TestSocketActivationKeepsAWildcardUnderHost: systemd keeps its own copy
// of the sockets it passes, so with a wildcard socket (the socket unit's
// 0.0.0.0:111) no other address of the port can be bound. A --host from
// the options file (rpcbind's -h in /etc/default/rpcbind) must not make
// the daemon close the wildcard and then fail to bind, which under
// Restart= is a crash loop and no portmapper: the passed socket is served.
func TestSocketActivationKeepsAWildcardUnderHost(t *testing.T) {
	dir := t.TempDir()
	// systemd's copy stays open, as it does (the test's, until its end).
	// The daemon binds UDP on 127.0.0.1 and 127.0.0.2 itself; the test
	// holds UDP on 127.0.0.3, so no wildcard socket can take it meanwhile.
	ls, _ := daemontest.OnePort(t, []netip.Addr{netip.IPv4Unspecified()}, []netip.Addr{loopback3})
	passed, port := ls[0], ls[0].Addr().(*net.TCPAddr).Port
	cmd, stderr := startActivated(t, socketFiles(t, passed.(*net.TCPListener)), nil,
		"--port", strconv.Itoa(port), "--host", "127.0.0.2", "--no-ipv6", "--socket", filepath.Join(dir, "s.sock"),
		"--lock-file", filepath.Join(dir, "lock"), "--log-level", "warn")
	waitReady(t, port, cmd, stderr)
	if !strings.Contains(stderr.String(), "--host does not narrow a wildcard socket") {
		t.Errorf("no log line for the kept wildcard socket:\n%s", stderr.String())
	}
}

// TestSocketActivationDualStack: systemd may pass one IPv6 socket that
// also receives IPv4 (BindIPv6Only=both). IPv4 callers on it are served
// as udp/tcp callers: GETADDR looks up the udp table and answers with an
// IPv4 address, and no separate IPv4 socket is bound.
func TestSocketActivationDualStack(t *testing.T) {
	dir := t.TempDir()
	// OnePort binds [::] dual-stack (IPV6_V6ONLY off).
	ls, us := daemontest.OnePort(t, []netip.Addr{netip.IPv6Unspecified()}, []netip.Addr{netip.IPv6Unspecified()})
	tcp, udp, port := ls[0], us[0], ls[0].Addr().(*net.TCPAddr).Port
	cmd, stderr := startActivated(t, socketFiles(t, tcp.(*net.TCPListener), udp), nil,
		"--port", strconv.Itoa(port), "--socket", filepath.Join(dir, "s.sock"),
		"--lock-file", filepath.Join(dir, "lock"), "--log-level", "warn")
	tcp.Close()
	udp.Close()
	waitReady(t, port, cmd, stderr)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Set(ctx, pmap.Mapping{Prog: 400600, Vers: 1, Netid: "udp", Addr: "0.0.0.0.39.18"}); !ok || err != nil {
		t.Fatalf("SET: %v %v", ok, err)
	}
	c.Close()
	v4, err := client.Dial(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer v4.Close()
	if got, err := v4.GetAddr(ctx, 400600, 1, "udp"); err != nil || got != "127.0.0.1.39.18" {
		t.Fatalf("GETADDR from an IPv4 caller on the dual-stack socket = %q, %v; want 127.0.0.1.39.18\nlog:\n%s", got, err, stderr.String())
	}
	rows, err := v4.DumpPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	for _, r := range rows {
		if r.Prog == pmap.Program && r.Port == uint32(port) {
			own++
		}
	}
	if own != 6 {
		t.Errorf("v2 DUMP lists %d own rows on port %d, want 6 (udp and tcp served by the dual-stack sockets): %v", own, port, rows)
	}
}
