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
	socket = filepath.Join(tb.TempDir(), "rpcbind.sock")
	var d *daemon.Daemon
	var err error
	for range 20 {
		l, lerr := net.Listen("tcp4", "127.0.0.1:0")
		if lerr != nil {
			tb.Fatal(lerr)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		d, err = daemon.New(daemon.Config{Port: port, SocketPath: socket, Hosts: []string{"127.0.0.1"}, NoIPv6: true},
			zap.NewNop())
		if err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
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
	return port, socket
}
