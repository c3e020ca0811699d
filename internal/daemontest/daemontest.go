package daemontest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/rpc"
)

// Start runs a daemon on 127.0.0.1 (UDP and TCP on one port, no IPv6)
// and a local socket, and returns the port and the socket's path.
func Start(tb testing.TB) (port int, socket string) {
	tb.Helper()
	return StartWith(tb, daemon.Config{})
}

// StartWith is Start with more of the daemon's configuration, filled in
// as New does. It returns the port and the local socket's path.
func StartWith(tb testing.TB, cfg daemon.Config) (port int, socket string) {
	tb.Helper()
	d, err := New(tb, &cfg, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	Serve(tb, d)
	return cfg.Port, cfg.SocketPath
}

// New builds a daemon on sockets the test binds and hands in (Loopback):
// UDP and TCP on one kernel-chosen port of 127.0.0.1 and the local socket
// at cfg.SocketPath, in the test's temporary directory when empty. cfg's
// Sockets, Port, SocketPath, Hosts and NoIPv6 are filled in; the rest is
// the caller's. The daemon's sockets are closed when the test ends.
func New(tb testing.TB, cfg *daemon.Config, log *zap.Logger) (*daemon.Daemon, error) {
	tb.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(tb.TempDir(), "rpcbind.sock")
	}
	cfg.Sockets, cfg.Port = Loopback(tb, cfg.SocketPath)
	cfg.Hosts, cfg.NoIPv6 = []string{"127.0.0.1"}, true
	return daemon.New(*cfg, log)
}

// Serve runs d until the test ends.
func Serve(tb testing.TB, d *daemon.Daemon) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, rpc.ErrServerClosed) {
				tb.Errorf("the daemon's Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			tb.Error("the daemon did not stop")
		}
	})
}
