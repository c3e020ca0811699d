package daemon

import (
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

	"github.com/portmapd/portmapd/internal/lockfile"
)

// newOnFreePort builds a daemon on a free loopback port with cfg's other
// settings; it is closed when the test ends.
func newOnFreePort(t *testing.T, cfg Config, log *zap.Logger) (*Daemon, error) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg.Hosts, cfg.NoIPv6 = []string{"127.0.0.1"}, true
	d, err := New(cfg, log)
	if err == nil {
		t.Cleanup(d.closeAll)
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
	_, err = newOnFreePort(t, Config{SocketPath: filepath.Join(dir, "s.sock"),
		System: System{LockPath: filepath.Join(dir, "own.lock"), RpcbindLockPath: path}}, zap.NewNop())
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
	d, err := newOnFreePort(t, Config{SocketPath: filepath.Join(dir, "s.sock"),
		System: System{LockPath: filepath.Join(dir, "own.lock"), RpcbindLockPath: path}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockfile.AcquireShared(path); !errors.Is(err, lockfile.ErrLocked) {
		t.Errorf("rpcbind's lock is free while the daemon runs: %v", err)
	}
	d.closeAll()
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
	_, err := newOnFreePort(t, Config{SocketPath: filepath.Join(dir, "s.sock"),
		System: System{RpcbindLockPath: filepath.Join(dir, "no-such-dir", "rpcbind.lock")}}, zap.New(core))
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
	d, err := newOnFreePort(t, Config{SocketPath: filepath.Join(dir, "s.sock"), AbstractSocket: name[1:]}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var local []string
	for _, s := range d.stream {
		if s.netid == "local" {
			local = append(local, s.l.Addr().String())
		}
	}
	if strings.Join(local, " ") != filepath.Join(dir, "s.sock")+" "+name {
		t.Errorf("local listeners %q", local)
	}
	// The name is taken: a second daemon says who has it.
	_, err = newOnFreePort(t, Config{AbstractSocket: name}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "abstract socket "+name+" is in use by a running portmapper") {
		t.Errorf("second daemon on the same name: %v", err)
	}
}
