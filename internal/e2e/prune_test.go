package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
)

// TestPruneDeadService runs portmapd with --prune-dead and a real RPC
// service registered through it: while the service answers, its mapping
// stays; once the service is killed, the mapping goes away by itself.
func TestPruneDeadService(t *testing.T) {
	dir := t.TempDir()
	port, files := passLoopback(t)
	cmd, stderr := startActivated(t, files(), nil, "--port", strconv.Itoa(port), "--socket", filepath.Join(dir, "s.sock"),
		"--lock-file", filepath.Join(dir, "lock"),
		"--prune-dead", "100ms", "--prune-failures", "3", "--log-level", "warn")
	waitReady(t, port, cmd, stderr)

	// The service: a real RPC server for program 400200 on UDP.
	mux := rpc.NewMux()
	mux.Handle(400200, 1, []rpc.Handler{rpc.HandlerFunc(func(*rpc.Reply, *rpc.Call) error { return nil })})
	svc := &rpc.Server{Handler: mux}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.ServeUDP(pc.(*net.UDPConn), "udp")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg, err := client.Register(ctx, c, 400200, 1, pc.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	registered := func() bool {
		p, err := c.GetPort(ctx, 400200, 1, pmap.ProtoUDP)
		if err != nil {
			t.Fatal(err)
		}
		return p != 0
	}
	time.Sleep(600 * time.Millisecond) // six probe rounds
	if !registered() {
		t.Fatalf("a live service was dropped (mappings %v); log:\n%s", reg.Mappings(), stderr.String())
	}

	svc.Shutdown(ctx)
	for end := time.Now().Add(10 * time.Second); registered(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the dead service is still registered after 10 s; log:\n%s", stderr.String())
		}
	}
}
