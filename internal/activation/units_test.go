package activation

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnitFilesVerify runs systemd-analyze verify on the shipped units,
// alone and with the rpcbind.* aliases that enabling them creates. Verify
// wants ExecStart's binary to exist, so the copies run /bin/true.
func TestUnitFilesVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	src := "../../cmd/portmapd"
	for _, alias := range []bool{false, true} {
		name := "as shipped"
		if alias {
			name = "enabled, with rpcbind.* aliases"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"portmapd.service", "portmapd.socket"} {
				b, err := os.ReadFile(filepath.Join(src, f))
				if err != nil {
					t.Fatal(err)
				}
				b = []byte(strings.ReplaceAll(string(b), "ExecStart=/usr/sbin/portmapd serve", "ExecStart=/bin/true serve"))
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if alias {
				os.Symlink("portmapd.service", filepath.Join(dir, "rpcbind.service"))
				os.Symlink("portmapd.socket", filepath.Join(dir, "rpcbind.socket"))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "systemd-analyze", "verify", "--man=no", "portmapd.service", "portmapd.socket")
			cmd.Dir = dir
			// The directory first, then the system's units (the targets
			// these refer to); a trailing colon appends the defaults.
			cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":", "SYSTEMD_LOG_LEVEL=notice")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				// Under the aliases each unit's Conflicts= names itself,
				// which systemd reports dropping; that is the design.
				if l == "" || alias && strings.Contains(l, "Dependency Conflict") && strings.HasSuffix(l, "is dropped.") ||
					alias && strings.Contains(l, "is dropped, as rpcbind.") {
					continue
				}
				t.Errorf("systemd-analyze verify: %s", l)
			}
		})
	}
}
