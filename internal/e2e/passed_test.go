package e2e

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/daemontest"
)

// Daemons on this machine's loopback get their sockets as systemd would
// pass them (startActivated): the test binds them on a port the kernel
// chose and keeps them, so no test looks for a free port and a daemon
// that is restarted comes back on the same one.

var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
	loopback3 = netip.AddrFrom4([4]byte{127, 0, 0, 3})
)

// passLoopback binds TCP and UDP on one port of 127.0.0.1 and ::1 and
// returns the port and a function giving copies of their descriptors to
// pass, one set for every start of a daemon.
func passLoopback(t *testing.T) (port int, files func() []*os.File) {
	t.Helper()
	ls, us := daemontest.OnePort(t, []netip.Addr{loopback4, loopback6}, []netip.Addr{loopback4, loopback6})
	return ls[0].Addr().(*net.TCPAddr).Port, func() []*os.File {
		return socketFiles(t, ls[0].(*net.TCPListener), us[0], ls[1].(*net.TCPListener), us[1])
	}
}

// startLoopbackDaemon runs portmapd on loopback sockets the test passes
// (IPv4 and IPv6, one port) with its local socket in a temporary
// directory.
func startLoopbackDaemon(t *testing.T, extra ...string) (port int, sock string) {
	t.Helper()
	port, sock, _ = startLoopback(t, extra...)
	return port, sock
}

// startLoopback is startLoopbackDaemon that also gives the daemon's log.
func startLoopback(t *testing.T, extra ...string) (port int, sock string, stderr *lockedBuffer) {
	t.Helper()
	port, files := passLoopback(t)
	dir := t.TempDir()
	sock = filepath.Join(dir, "rpcbind.sock")
	// --port is the passed sockets' own: a transport they lacked would be
	// bound there rather than on 111.
	args := append([]string{"--port", strconv.Itoa(port), "--socket", sock,
		"--lock-file", filepath.Join(dir, "lock"), "--log-level", "warn"}, extra...)
	cmd, stderr := startActivated(t, files(), nil, args...)
	waitReady(t, port, cmd, stderr)
	return port, sock, stderr
}

// startWithMetrics is startLoopbackDaemon with --metrics on a port of
// 127.0.0.1 the kernel chooses; it returns that port too, read from the
// daemon's log.
func startWithMetrics(t *testing.T, extra ...string) (port, mport int) {
	t.Helper()
	port, _, stderr := startLoopback(t, append([]string{"--metrics", "127.0.0.1:0", "--log-level", "info"}, extra...)...)
	re := regexp.MustCompile(`serving metrics\s+\{"addr": "127\.0\.0\.1:(\d+)"`)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			mport, _ = strconv.Atoi(m[1])
			return port, mport
		}
	}
	t.Fatalf("no metrics address in the log:\n%s", stderr.String())
	return 0, 0
}
