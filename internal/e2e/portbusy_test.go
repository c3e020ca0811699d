package e2e

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPortInUseIsExplained: when another portmapper holds the port, serve
// exits at once with a message naming the port and the likely culprit,
// and the running daemon's local socket is left alone.
func TestPortInUseIsExplained(t *testing.T) {
	port, sock := startLoopbackDaemon(t)
	other := t.TempDir()
	cmd := exec.Command(PortmapdPath(t), "serve", "--port", strconv.Itoa(port),
		"--socket", filepath.Join(other, "other.sock"), "--lock-file", filepath.Join(other, "lock"), "--log-level", "error")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a second daemon started on port %d:\n%s", port, out)
	}
	msg := string(out)
	for _, want := range []string{"port " + strconv.Itoa(port), "already in use", "rpcbind"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}

	// A second daemon on another port but the same live local socket is
	// refused too, naming the socket.
	// Port 0: the kernel's choice, as the port does not matter here.
	cmd = exec.Command(PortmapdPath(t), "serve", "--port", "0", "--socket", sock,
		"--lock-file", filepath.Join(other, "lock2"), "--log-level", "error")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), sock) || !strings.Contains(string(out), "in use") {
		t.Fatalf("second daemon on a live local socket: err %v\n%s", err, out)
	}
}
