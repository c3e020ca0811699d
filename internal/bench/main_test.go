package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/internal/netns"
)

// The test binary doubles as the processes the tests spawn, chosen by
// environment variables, so that the spawning code is tested on real
// processes without building portmapd first.
const (
	// daemonEnv makes the binary a portmapd on 127.0.0.1:PORT with its
	// local socket at PATH ("PORT PATH") until SIGTERM.
	daemonEnv = "PORTMAPD_BENCH_TEST_DAEMON"
	// nsRunEnv makes it what `portmapd-bench run --json` is in a namespace,
	// measuring the daemon named by the variable's value ("self" or a
	// command line).
	nsRunEnv = "PORTMAPD_BENCH_TEST_NSRUN"
)

func TestMain(m *testing.M) {
	netns.Main()
	if spec := os.Getenv(daemonEnv); spec != "" {
		os.Exit(serveTestDaemon(spec))
	}
	if daemonCmd := os.Getenv(nsRunEnv); daemonCmd != "" {
		os.Exit(nsRun(daemonCmd))
	}
	os.Exit(m.Run())
}

// serveTestDaemon is the daemon of daemonEnv: "PORT PATH" binds PORT on
// 127.0.0.1 itself; "HANDOVER PATH" serves the sockets lent at HANDOVER
// (lendPort) instead.
func serveTestDaemon(spec string) int {
	var port, socket string
	if _, err := fmt.Sscan(spec, &port, &socket); err != nil {
		fmt.Fprintln(os.Stderr, "bad", daemonEnv, err)
		return 2
	}
	cfg := daemon.Config{SocketPath: socket, Hosts: []string{"127.0.0.1"}, NoIPv6: true}
	var err error
	if cfg.Port, err = strconv.Atoi(port); err != nil {
		if cfg.Sockets, err = daemontest.TakeSockets(port); err != nil {
			fmt.Fprintln(os.Stderr, "handover:", err)
			return 1
		}
	}
	d, err := daemon.New(cfg, zap.NewNop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := d.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// nsRun runs in a namespace made by RunInNamespace: it measures a daemon
// on port 111 briefly.
func nsRun(daemonCmd string) int {
	cfg := shortConfig()
	cfg.Name = "ns"
	cfg.Address = "127.0.0.1:111"
	cfg.Socket = "/run/rpcbind.sock"
	cfg.Progress = os.Stderr
	if daemonCmd == "self" {
		self, _ := os.Executable()
		cfg.Daemon = []string{self}
		os.Setenv(daemonEnv, "111 /run/rpcbind.sock")
	} else {
		cfg.Daemon = []string{daemonCmd, "-f"}
		cfg.WarmDaemon = []string{daemonCmd, "-f", "-w"}
		cfg.WarmRegistrations = 50
	}
	res, err := Run(context.Background(), cfg)
	if res != nil {
		json.NewEncoder(os.Stdout).Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// shortConfig is a run short enough for a unit test, still driving every
// load and the fresh-lookups stream.
func shortConfig() Config {
	cfg := DefaultConfig()
	cfg.Registrations = []int{10, 300}
	cfg.Clients = 4
	cfg.Duration = 150 * time.Millisecond
	cfg.Warmup = 20 * time.Millisecond
	cfg.MaxRequests = 3000
	cfg.FreshLookups = 1000
	cfg.FreshDuration = 150 * time.Millisecond
	cfg.RegisterTimeout = 20 * time.Second
	cfg.WarmRestarts = 2
	return cfg
}

// lendPort binds TCP and UDP on one port of 127.0.0.1 and lends them to
// the daemons this test spawns (daemonEnv), as systemd lends a socket
// unit's: every start and restart serves the same port, which stays the
// test's in between. Each daemon binds its own local socket, at the
// path returned, so that its going shows.
func lendPort(t *testing.T) (port int, sock string) {
	t.Helper()
	l, u := daemontest.PortPair(t, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	sock = socketPath(t)
	t.Setenv(daemonEnv, daemontest.Handover(t, l.(*net.TCPListener), u)+" "+sock)
	return l.Addr().(*net.TCPAddr).Port, sock
}

// inProcessDaemon builds portmapd in this process on loopback sockets
// the test binds (daemontest.New), its local socket at socketPath.
func inProcessDaemon(t testing.TB) (d *daemon.Daemon, port int, sock string) {
	t.Helper()
	cfg := daemon.Config{SocketPath: socketPath(t)}
	d, err := daemontest.New(t, &cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return d, cfg.Port, cfg.SocketPath
}

// socketPath is a local socket path short enough for sun_path.
func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "pmb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}
