package e2e

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
)

// TestUserDropsPrivileges: with --user the daemon binds its sockets as
// root, then runs as that user, and warm start keeps working because the
// state directory was handed over.
func TestUserDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	dir := t.TempDir()
	// t.TempDir's directories are private to root; nobody must reach the
	// state directory inside.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	port, files := passLoopback(t)
	state := filepath.Join(dir, "state")
	cmd, stderr := startActivated(t, files(), nil, "--port", strconv.Itoa(port), "--socket", filepath.Join(dir, "s.sock"),
		"--lock-file", filepath.Join(dir, "lock"),
		"--warm-start", "--state-dir", state, "--user", "nobody", "--log-level", "warn")
	waitReady(t, port, cmd, stderr)

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") {
			for _, f := range strings.Fields(line)[1:] {
				if f != nobody.Uid {
					t.Fatalf("still privileged: %q, want every uid %s", line, nobody.Uid)
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ok, err := c.Set(ctx, pmap.Mapping{Prog: 400300, Vers: 1, Netid: "udp", Addr: "0.0.0.0.39.16"})
	if err != nil || !ok {
		t.Fatalf("SET after dropping privileges: %v %v; log:\n%s", ok, err, stderr.String())
	}
	if fi, err := os.Stat(filepath.Join(state, "portmapd.xdr")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != mustAtoi(nobody.Uid) {
		t.Fatalf("state file not written by nobody: %v", err)
	}
}

func mustAtoi(s string) uint32 {
	n, _ := strconv.Atoi(s)
	return uint32(n)
}
