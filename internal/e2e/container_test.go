package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// container is a throw-away system container: this machine's root seen
// through an overlay whose upper layer is a tmpfs, booted by
// systemd-nspawn with systemd as PID 1 and a private network, so that
// nothing it does (installing packages, binding port 111) reaches the
// machine. The overlay and the tmpfs exist only in a private mount
// namespace that dies with nspawn.
type container struct {
	t       testing.TB
	name    string
	dir     string // holds the console log
	nspawn  *exec.Cmd
	exited  chan struct{}
	init    int    // the container's PID 1, as this machine sees it
	cleanup func() // removes what nspawn left in this machine's /run
}

// containerSetup is the shell run in a private mount namespace (unshare
// -m): mount the overlay, prepare its upper layer, then exec nspawn.
// Units that would slow the boot or need the outside world are masked.
const containerSetup = `set -eu
mount -t tmpfs -o mode=0755 pmct "$CT"
mkdir "$CT/upper" "$CT/work" "$CT/root"
mount -t overlay pmct -o "lowerdir=/,upperdir=$CT/upper,workdir=$CT/work" "$CT/root"
# nspawn keeps per-container state under /run/systemd/nspawn: here, not
# in this machine's /run.
mkdir -p /run/systemd/nspawn
mount -t tmpfs -o mode=0755 pmnspawn /run/systemd/nspawn
R="$CT/root"
# The machine's policy-rc.d forbids starting services; the container's
# package scripts must be able to.
rm -f "$R/usr/sbin/policy-rc.d"
for u in $MASK; do ln -sf /dev/null "$R/etc/systemd/system/$u"; done
mkdir -p "$R/var/tmp/pm"
for f in $FILES; do cp "$f" "$R/var/tmp/pm/"; done
chmod -R a+rX "$R/var/tmp/pm"
exec systemd-nspawn -D "$R" -b --register=no --keep-unit --private-network -M "$NAME" \
	--console=read-only $NSPAWN_ARGS -- systemd.firstboot=off
`

// containerMask: slow or pointless in a test container.
var containerMask = []string{
	"systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer",
	"man-db.timer", "e2scrub_all.timer", "fstrim.timer", "dpkg-db-backup.timer",
	"getty@tty1.service", "console-getty.service", "postgresql.service",
}

// containerPrereqs returns why a container cannot boot here, or "".
func containerPrereqs() string {
	if os.Geteuid() != 0 {
		return "needs root"
	}
	for _, tool := range []string{"systemd-nspawn", "unshare", "nsenter", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not installed (package systemd-container / util-linux)"
		}
	}
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		return "systemd not installed"
	}
	fs, _ := os.ReadFile("/proc/filesystems")
	if !bytes.Contains(fs, []byte("\toverlay\n")) {
		return "no overlayfs in this kernel"
	}
	return ""
}

// bootContainer boots a container named name with files copied to
// /var/tmp/pm inside it, and waits (bounded) until systemd reports the
// boot finished. extra are more systemd-nspawn options.
func bootContainer(t testing.TB, name string, files []string, extra ...string) *container {
	t.Helper()
	dir := t.TempDir()
	ct := filepath.Join(dir, "ct")
	if err := os.Mkdir(ct, 0o755); err != nil {
		t.Fatal(err)
	}
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	_, nspawnDirErr := os.Stat("/run/systemd/nspawn")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", containerSetup)
	cmd.Env = append(os.Environ(), "CT="+ct, "NAME="+name, "MASK="+strings.Join(containerMask, " "),
		"FILES="+strings.Join(files, " "), "NSPAWN_ARGS="+strings.Join(extra, " "))
	cmd.Stdout, cmd.Stderr = console, console
	cmd.Stdin = nil
	// Its own process group: a signal meant for the test's group (a ^C)
	// reaches nspawn only through shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting systemd-nspawn: %v", err)
	}
	c := &container{t: t, name: name, dir: dir, nspawn: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(c.exited) }()
	c.cleanup = func() {
		// Where this machine's /run is not a tmpfs, nspawn leaves the
		// directory it made, empty (its contents were on our tmpfs).
		if errors.Is(nspawnDirErr, os.ErrNotExist) {
			os.Remove("/run/systemd/nspawn")
		}
	}
	t.Cleanup(c.shutdown)

	// unshare and sh exec, so cmd's process is nspawn; its child that runs
	// systemd is the container's PID 1.
	deadline := time.Now().Add(60 * time.Second)
	for c.init == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("container's systemd did not start in 60s; console:\n%s", c.console())
		}
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited: %v; console:\n%s", cmd.ProcessState, c.console())
		case <-time.After(200 * time.Millisecond):
		}
		c.init = childRunning(cmd.Process.Pid, "systemd")
	}
	// systemctl needs the manager's socket, made early in the boot.
	bus := fmt.Sprintf("/proc/%d/root/run/systemd/private", c.init)
	for _, err := os.Stat(bus); err != nil; _, err = os.Stat(bus) {
		if time.Now().After(deadline) {
			t.Fatalf("container's systemd made no %s in 60s; console:\n%s", bus, c.console())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// is-system-running --wait returns once the boot is done: "running",
	// or "degraded" when a unit failed (the machine's own NFS server units
	// may, without a kernel nfsd), which is no concern here.
	out, _ := c.run(120*time.Second, "systemctl", "is-system-running", "--wait")
	if state := strings.TrimSpace(out); state != "running" && state != "degraded" {
		t.Fatalf("container did not finish booting: %q; console:\n%s", state, c.console())
	}
	return c
}

// childRunning returns the pid of parent's child running comm, or 0.
func childRunning(parent int, comm string) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", parent))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(c)) == comm {
				return pid
			}
		}
	}
	return 0
}

// run runs argv inside the container (in the namespaces and root of its
// PID 1) with a clean environment, and returns its combined output.
func (c *container) run(timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"-t", strconv.Itoa(c.init), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	cmd.WaitDelay = 5 * time.Second
	// Its own process group, so that nothing run in the container (a kill
	// of a pid that turned out 0) can signal the test binary's group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%q timed out after %v", strings.Join(argv, " "), timeout)
	}
	return string(out), err
}

// must runs argv in the container and fails the test if it fails.
func (c *container) must(timeout time.Duration, argv ...string) string {
	c.t.Helper()
	out, err := c.run(timeout, argv...)
	if err != nil {
		c.t.Fatalf("in container: %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

// sh runs a shell command line in the container; it must succeed.
func (c *container) sh(timeout time.Duration, script string) string {
	c.t.Helper()
	return c.must(timeout, "sh", "-c", script)
}

// show returns systemctl show's value of property for unit.
func (c *container) show(unit, property string) string {
	c.t.Helper()
	return strings.TrimSpace(c.must(10*time.Second, "systemctl", "show", "-P", property, unit))
}

// waitFor polls cond (bounded by timeout) and fails with what describes
// the last state when it never holds.
func (c *container) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %v; last state:\n%s", what, timeout, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c *container) console() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "console.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// shutdown powers the container off (through systemctl, else by nspawn's
// SIGTERM, which asks the container's systemd to power off), and kills
// nspawn if it does not go within 30 seconds.
func (c *container) shutdown() {
	if _, err := c.run(10*time.Second, "systemctl", "--no-block", "poweroff"); c.init == 0 || err != nil {
		c.nspawn.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		// Killing nspawn alone would orphan the container: killing its
		// PID 1 ends every process of its PID namespace.
		c.t.Logf("container did not power off in 30s; killing it")
		if c.init != 0 {
			syscall.Kill(c.init, syscall.SIGKILL)
		}
		c.nspawn.Process.Signal(syscall.SIGKILL)
		<-c.exited
	}
	c.cleanup()
}
