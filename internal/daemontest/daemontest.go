package daemontest

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/daemon"
)

// Start runs a daemon on 127.0.0.1 at a free port (UDP and TCP, no IPv6)
// and a local socket, and returns the port and the socket's path. A port
// taken between finding it and binding it is simply tried again.
func Start(tb testing.TB) (port int, socket string) {
	tb.Helper()
	return StartWith(tb, daemon.Config{})
}

// serve runs d until the test ends.
func serve(tb testing.TB, d *daemon.Daemon) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			tb.Error("the daemon did not stop")
		}
	})
}

// StartWith is Start with more of the daemon's configuration: cfg's Port,
// Hosts and NoIPv6 are filled in as Start has them, and SocketPath when
// empty. It returns the port and the socket's path.
func StartWith(tb testing.TB, cfg daemon.Config) (port int, socket string) {
	tb.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(tb.TempDir(), "rpcbind.sock")
	}
	cfg.Hosts, cfg.NoIPv6 = []string{"127.0.0.1"}, true
	var d *daemon.Daemon
	var err error
	for range 20 {
		l, lerr := net.Listen("tcp4", "127.0.0.1:0")
		if lerr != nil {
			tb.Fatal(lerr)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		cfg.Port = port
		d, err = daemon.New(cfg, zap.NewNop())
		if err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	serve(tb, d)
	return port, cfg.SocketPath
}
