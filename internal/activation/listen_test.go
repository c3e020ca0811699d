package activation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quickExit spares each child the second the race detector otherwise
// waits at exit.
const quickExit = "GORACE=atexit_sleep_ms=0"

// passedSocket is a socket the parent creates and passes to the child.
type passedSocket struct {
	file *os.File
	want childSocket
}

// runChild starts the test binary as an activated daemon with files as
// descriptors 3, 4, ... The shell in between exists for LISTEN_PID: the
// protocol wants the pid of the process that reads it, which only the
// process itself knows before exec, and "exec" keeps the shell's pid.
func runChild(t *testing.T, files []*os.File, names []string, listenPID string) childReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pidExpr := "$$"
	if listenPID != "" {
		pidExpr = listenPID
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `LISTEN_PID=`+pidExpr+`; export LISTEN_PID; exec "$0"`, os.Args[0])
	env := []string{childEnv + "=1", fmt.Sprintf("LISTEN_FDS=%d", len(files)), quickExit}
	if names != nil {
		env = append(env, "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LISTEN_") && !strings.HasPrefix(kv, childEnv+"=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.ExtraFiles = files
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	return parseReport(t, out)
}

func fileOf(t *testing.T, c interface{ File() (*os.File, error) }) *os.File {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// loopbackSockets creates, through the net package and on loopback only,
// one socket of each kind the portmapper serves.
func loopbackSockets(t *testing.T) []passedSocket {
	t.Helper()
	var out []passedSocket
	add := func(c interface {
		File() (*os.File, error)
		Close() error
	}, addr net.Addr, netid string, dual bool, name string) {
		netids := []string{netid}
		if dual {
			netids = append(netids, strings.TrimSuffix(netid, "6"))
		}
		out = append(out, passedSocket{fileOf(t, c), childSocket{Name: name, Netid: netid, Addr: addr.String(),
			DualStack: dual, Netids: netids}})
		c.Close() // the duplicate in file is what is passed
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	add(tl.(*net.TCPListener), tl.Addr(), NetidTCP, false, "tcp")
	uc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	add(uc.(*net.UDPConn), uc.LocalAddr(), NetidUDP, false, "udp")
	dir := t.TempDir()
	ul, err := net.Listen("unix", filepath.Join(dir, "rpcbind.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	add(ul.(*net.UnixListener), ul.Addr(), NetidLocal, false, "local")
	// An abstract name (ListenStream=@...), unique to this test: it lives
	// in the machine's network namespace, where @/run/rpcbind.sock may
	// be a real portmapper's.
	al, err := net.Listen("unix", fmt.Sprintf("@portmapd-activation-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	add(al.(*net.UnixListener), al.Addr(), NetidLocal, false, "abstract")
	out[len(out)-1].want.Abstract = true
	if t6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		add(t6.(*net.TCPListener), t6.Addr(), NetidTCP6, false, "tcp6")
		u6, err := net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		add(u6.(*net.UDPConn), u6.LocalAddr(), NetidUDP6, false, "udp6")
		// Not IPV6_V6ONLY, bound to ::ffff:127.0.0.1: dual-stack while
		// staying on loopback. The net package would make an IPv4 socket
		// for that address, so these are made with system calls.
		td := rawSocketFile(t, sockSpec{syscall.AF_INET6, syscall.SOCK_STREAM, 0, mapped4, noV6only, true})
		out = append(out, passedSocket{td, childSocket{Name: "tcp-dual", Netid: NetidTCP6, DualStack: true,
			Netids: []string{NetidTCP6, NetidTCP}}})
		ud := rawSocketFile(t, sockSpec{syscall.AF_INET6, syscall.SOCK_DGRAM, 0, mapped4, noV6only, false})
		out = append(out, passedSocket{ud, childSocket{Name: "udp-dual", Netid: NetidUDP6, DualStack: true,
			Netids: []string{NetidUDP6, NetidUDP}}})
	} else {
		t.Logf("no IPv6 loopback (%v): IPv6 cases skipped", err)
	}
	return out
}

// rawSocketFile makes a socket as makeSocket does and hands it over as a
// file the test closes at its end.
func rawSocketFile(t *testing.T, spec sockSpec) *os.File {
	t.Helper()
	fd := makeSocket(t, spec)
	dup, err := syscall.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(dup)
	f := os.NewFile(uintptr(dup), "raw-socket")
	t.Cleanup(func() { f.Close() })
	return f
}

func TestSocketsServesEveryPassedDescriptor(t *testing.T) {
	socks := loopbackSockets(t)
	var files []*os.File
	var names []string
	var want []childSocket
	for _, s := range socks {
		files = append(files, s.file)
		names = append(names, s.want.Name)
		want = append(want, s.want)
	}
	rep := runChild(t, files, names, "")
	checkSockets(t, rep, want)
}

func TestSocketsWithoutNamesLeavesThemEmpty(t *testing.T) {
	socks := loopbackSockets(t)[:2]
	rep := runChild(t, []*os.File{socks[0].file, socks[1].file}, nil, "")
	w0, w1 := socks[0].want, socks[1].want
	w0.Name, w1.Name = "", ""
	checkSockets(t, rep, []childSocket{w0, w1})
}

func TestSocketsIgnoresDescriptorsMeantForAnotherProcess(t *testing.T) {
	socks := loopbackSockets(t)[:1]
	rep := runChild(t, []*os.File{socks[0].file}, []string{"tcp"}, "1")
	if rep.Err != "" || len(rep.Sockets) != 0 {
		t.Fatalf("got %+v, want no sockets and no error", rep)
	}
	if len(rep.EnvLeft) != 0 {
		t.Errorf("%v still set: the variables must go even when they are not ours", rep.EnvLeft)
	}
}

func TestSocketsRefusesAnUnusableDescriptorAndClosesTheRest(t *testing.T) {
	socks := loopbackSockets(t)[:1]
	dir := t.TempDir()
	ug, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "dgram"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ug.Close()
	rep := runChild(t, []*os.File{socks[0].file, fileOf(t, ug)}, nil, "")
	if !strings.Contains(rep.Err, "descriptor 4") || !strings.Contains(rep.Err, ErrUnsupported.Error()) {
		t.Errorf("error %q should name descriptor 4 as unsupported", rep.Err)
	}
	if len(rep.Sockets) != 0 {
		t.Errorf("got sockets %+v alongside an error", rep.Sockets)
	}
	if len(rep.Leaky) != 0 {
		t.Errorf("descriptors %v left open and inheritable", rep.Leaky)
	}
	if rep.Open != 0 {
		t.Errorf("%d sockets left open after the error", rep.Open)
	}
}

// TestSocketsUnderSystemdSocketActivate lets Debian's own tool bind and
// pass the sockets, the way the socket unit would. One invocation binds
// either stream or datagram sockets, and each passes on what it received,
// so two are chained. The tool starts its child only when traffic arrives,
// so a datagram is sent to wake it. Wildcard addresses (needed for a
// dual-stack socket) are bound inside a private network namespace.
func TestSocketsUnderSystemdSocketActivate(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian package systemd)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private network namespace (unshare -n)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
	for _, tool := range []string{"ip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	// The network namespace is the script's own: nothing else binds there,
	// so fixed ports are free. [::] (dual-stack) and 127.0.0.1 of one
	// protocol would clash on one number, hence four.
	u4, u6, t4, t6 := 1110, 1111, 1112, 1113
	sock := filepath.Join(t.TempDir(), "rpcbind.sock")
	script := fmt.Sprintf(`set -e
ip link set lo up
# wake the first tool once it listens; the datagram stays queued and wakes the second too
( for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.3; bash -c 'echo wake >/dev/udp/127.0.0.1/%d' 2>/dev/null || true; done ) >/dev/null 2>&1 &
exec %s -d -l 127.0.0.1:%d -l '[::]:%d' -E %s=1 -E %s -- \
	%s -l 127.0.0.1:%d -l '[::]:%d' -l %s -l @/run/rpcbind.sock --fdname=udp:udp6:tcp:tcp6:local:abstract -E %s=1 -E %s -- %s
`, u4, tool, u4, u6, childEnv, quickExit, tool, t4, t6, sock, childEnv, quickExit, os.Args[0])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "sh", "-c", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(stderr.String(), "unshare failed") {
			t.Skipf("cannot create a network namespace here: %s", stderr.String())
		}
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rep := parseReport(t, out)
	// [::] is dual-stack unless net.ipv6.bindv6only is set; the tool does
	// not choose, so the expectation follows the sysctl.
	dual := true
	if b, err := os.ReadFile("/proc/sys/net/ipv6/bindv6only"); err == nil && strings.TrimSpace(string(b)) == "1" {
		dual = false
	}
	netids := func(n string) []string {
		if dual {
			return []string{n, strings.TrimSuffix(n, "6")}
		}
		return []string{n}
	}
	checkSockets(t, rep, []childSocket{
		{Name: "udp", Netid: NetidUDP, Addr: fmt.Sprintf("127.0.0.1:%d", u4), Netids: []string{NetidUDP}},
		{Name: "udp6", Netid: NetidUDP6, Addr: fmt.Sprintf("[::]:%d", u6), DualStack: dual, Netids: netids(NetidUDP6)},
		{Name: "tcp", Netid: NetidTCP, Addr: fmt.Sprintf("127.0.0.1:%d", t4), Netids: []string{NetidTCP}},
		{Name: "tcp6", Netid: NetidTCP6, Addr: fmt.Sprintf("[::]:%d", t6), DualStack: dual, Netids: netids(NetidTCP6)},
		{Name: "local", Netid: NetidLocal, Addr: sock, Netids: []string{NetidLocal}},
		// The private network namespace has its own abstract names: this
		// one is no other portmapper's.
		{Name: "abstract", Netid: NetidLocal, Addr: "@/run/rpcbind.sock", Abstract: true, Netids: []string{NetidLocal}},
	})
}
