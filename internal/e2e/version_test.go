package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionAsPortmapdAndAsRpcbind: portmapd --version prints "portmapd
// VERSION" on stdout; the binary run as rpcbind takes -v as rpcbind
// 1.2.8 does, printing "rpcbind VERSION" and its built-in configuration on
// stderr, and exits 0 without serving.
func TestVersionAsPortmapdAndAsRpcbind(t *testing.T) {
	bin := PortmapdPath(t)
	out, err := exec.Command(bin, "--version").Output()
	m := regexp.MustCompile(`^portmapd (\S+)\n$`).FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("portmapd --version: %q, %v", out, err)
	}
	link := filepath.Join(t.TempDir(), "rpcbind")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-v"}, {"-w", "-fv"}} {
		cmd := exec.Command(link, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		lines := strings.Split(stderr.String(), "\n")
		if err != nil || len(stdout) != 0 || len(lines) != 3 || lines[0] != "rpcbind "+m[1]+" (portmapd)" ||
			!strings.HasPrefix(lines[1], "debug: ") || !strings.Contains(lines[1], ", warm start: yes") {
			t.Errorf("rpcbind %v: %v\nstdout %q\nstderr %q", args, err, stdout, stderr.String())
		}
	}
}
