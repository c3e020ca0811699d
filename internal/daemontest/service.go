package daemontest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/portmapd/portmapd/rpc"
)

// NullService serves program prog, versions vers, NULL procedure only,
// over UDP and TCP on loopback ports the kernel chooses (one each); it
// returns the two ports and stops when the test ends.
func NullService(tb testing.TB, prog uint32, vers ...uint32) (udpPort, tcpPort int) {
	tb.Helper()
	mux := rpc.NewMux()
	null := []rpc.Handler{rpc.HandlerFunc(func(*rpc.Reply, *rpc.Call) error { return nil })}
	for _, v := range vers {
		mux.Handle(prog, v, null)
	}
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		u.Close()
		tb.Fatal(err)
	}
	ServeRPC(tb, mux, l, u)
	return u.LocalAddr().(*net.UDPAddr).Port, l.Addr().(*net.TCPAddr).Port
}

// ServeRPC serves h over l (netid tcp) and u (netid udp) with a real
// rpc.Server until the test ends: a service for the daemon to point at.
func ServeRPC(tb testing.TB, h rpc.Handler, l net.Listener, u *net.UDPConn) {
	srv := &rpc.Server{Handler: h}
	// Both return ErrServerClosed at Shutdown; Shutdown's error is the one
	// that matters.
	go func() { _ = srv.ServeStream(l, rpc.NetidTCP) }()
	go func() { _ = srv.ServeUDP(u, rpc.NetidUDP) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("stopping the test's service: %v", err)
		}
	})
}
