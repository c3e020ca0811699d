package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeInstall: make install puts the binary, the units pointing at it
// and the man pages generated from the commands under DESTDIR/PREFIX.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "-C", root, "install", "DESTDIR="+dest, "PREFIX=/opt/pm", "BIN="+filepath.Join(t.TempDir(), "portmapd"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"opt/pm/sbin/portmapd", "opt/pm/lib/systemd/system/portmapd.service",
		"opt/pm/lib/systemd/system/portmapd.socket", "opt/pm/share/man/man8/portmapd-serve.8", "opt/pm/share/man/man8/portmapd.8"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %s", f)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "opt/pm/lib/systemd/system/portmapd.service"))
	if !strings.Contains(string(unit), "ExecStart=/opt/pm/sbin/portmapd serve") {
		t.Errorf("unit does not run the installed binary:\n%s", unit)
	}
	page, _ := os.ReadFile(filepath.Join(dest, "opt/pm/share/man/man8/portmapd-serve.8"))
	if !strings.Contains(string(page), `\fB--warm-start\fP`) {
		t.Errorf("man page lacks serve's options")
	}
}
