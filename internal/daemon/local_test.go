package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portmapd/portmapd/internal/activation"
	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/internal/lockfile"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
)

// newOnLoopback builds a daemon on loopback sockets with cfg's other
// settings; it is closed when the test ends.
func newOnLoopback(t *testing.T, cfg daemon.Config, log *zap.Logger) (*daemon.Daemon, error) {
	t.Helper()
	d, err := daemontest.New(t, &cfg, log)
	if err == nil {
		t.Cleanup(func() { daemon.CloseAll(d) })
	}
	return d, err
}

func TestRpcbindLockHeldRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rpcbind.lock")
	held, err := lockfile.AcquireShared(path)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	_, err = newOnLoopback(t, daemon.Config{SocketPath: filepath.Join(dir, "s.sock"),
		System: daemon.System{LockPath: filepath.Join(dir, "own.lock"), RpcbindLockPath: path}}, zap.NewNop())
	if !errors.Is(err, lockfile.ErrLocked) || !strings.Contains(err.Error(), path+"; stop it first (systemctl stop rpcbind.socket") {
		t.Fatalf("got %v, want a refusal naming %s", err, path)
	}
	// Its own lock was given back.
	if _, err := os.Stat(filepath.Join(dir, "own.lock")); err == nil {
		t.Error("the refused daemon left its own lock file")
	}
}

func TestRpcbindLockIsTakenAndKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rpcbind.lock")
	d, err := newOnLoopback(t, daemon.Config{SocketPath: filepath.Join(dir, "s.sock"),
		System: daemon.System{LockPath: filepath.Join(dir, "own.lock"), RpcbindLockPath: path}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockfile.AcquireShared(path); !errors.Is(err, lockfile.ErrLocked) {
		t.Errorf("rpcbind's lock is free while the daemon runs: %v", err)
	}
	daemon.CloseAll(d)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the daemon removed rpcbind's lock file, which rpcbind never does: %v", err)
	}
	l, err := lockfile.AcquireShared(path)
	if err != nil {
		t.Fatalf("rpcbind's lock after the daemon stopped: %v", err)
	}
	l.Release()
}

func TestRpcbindLockThatCannotBeMadeIsAWarning(t *testing.T) {
	dir := t.TempDir()
	core, logs := observer.New(zap.WarnLevel)
	_, err := newOnLoopback(t, daemon.Config{SocketPath: filepath.Join(dir, "s.sock"),
		System: daemon.System{RpcbindLockPath: filepath.Join(dir, "no-such-dir", "rpcbind.lock")}}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("cannot take rpcbind's lock file").Len() != 1 {
		t.Errorf("no warning: %v", logs.All())
	}
}

func TestAbstractSocketIsServedBesideThePath(t *testing.T) {
	dir := t.TempDir()
	name := fmt.Sprintf("@portmapd-daemon-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	d, err := newOnLoopback(t, daemon.Config{SocketPath: filepath.Join(dir, "s.sock"), AbstractSocket: name[1:]}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	local := daemon.LocalListeners(d)
	if strings.Join(local, " ") != filepath.Join(dir, "s.sock")+" "+name {
		t.Errorf("local listeners %q", local)
	}
	// The name is taken: a second daemon says who has it.
	_, err = newOnLoopback(t, daemon.Config{AbstractSocket: name}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "abstract socket "+name+" is in use by a running portmapper") {
		t.Errorf("second daemon on the same name: %v", err)
	}
}

// Sockets handed in through the configuration are served as they are,
// nothing else is bound, and the daemon's own rows name each socket's
// port: here TCP and UDP on two ports the kernel chose.
func TestHandedSocketsAreServedWithTheirOwnPorts(t *testing.T) {
	tl, err := rpc.ListenStream("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	tcpPort, udpPort := tl.Addr().(*net.TCPAddr).Port, u.LocalAddr().(*net.UDPAddr).Port
	d, err := daemon.New(daemon.Config{NoIPv6: true, Sockets: []activation.Socket{
		{Netid: "tcp", Addr: tl.Addr(), Listener: tl},
		{Netid: "udp", Addr: u.LocalAddr(), UDP: u},
	}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	daemontest.Serve(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		network string
		port    int
		ask     uint32
		want    int
	}{{"udp", udpPort, pmap.ProtoTCP, tcpPort}, {"tcp", tcpPort, pmap.ProtoUDP, udpPort}} {
		cl, err := client.Dial(ctx, c.network, fmt.Sprintf("127.0.0.1:%d", c.port))
		if err != nil {
			t.Fatal(err)
		}
		p, err := cl.GetPort(ctx, pmap.Program, pmap.VersPMAP, c.ask)
		cl.Close()
		if err != nil || int(p) != c.want {
			t.Errorf("GETPORT(portmapper, %d) over %s = %d, %v; want %d", c.ask, c.network, p, err, c.want)
		}
	}
	var own []string
	for _, m := range d.Registry.Mappings() {
		if m.Prog == pmap.Program && m.Vers == pmap.VersPMAP {
			own = append(own, m.Netid)
		}
	}
	if strings.Join(own, " ") != "tcp udp" {
		t.Errorf("own rows of version 2 on %q, want tcp and udp only: nothing else was bound", own)
	}
}
