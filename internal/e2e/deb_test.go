package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ganeshaConf exports a tmpfs (overlayfs cannot hand out the file handles
// ganesha's VFS layer needs) over NFSv3, whose MOUNT protocol registers
// with the portmapper, and NFSv4.
const ganeshaConf = `NFS_CORE_PARAM { Protocols = 3, 4; }
EXPORT {
	Export_Id = 1;
	Path = /srv/nfs;
	Pseudo = /srv/nfs;
	Access_Type = RW;
	Squash = No_Root_Squash;
	SecType = sys;
	FSAL { Name = VFS; }
}
`

// abstractNull makes a NULL call to RPCBIND v3 over the abstract socket
// (python3 is in the container: nfs-common depends on it) and prints ok
// for an accepted, successful reply with the call's xid.
const abstractNull = `import socket, struct
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect("\0/run/rpcbind.sock")
call = struct.pack(">10I", 0x1d2c3b4a, 0, 2, 100000, 3, 0, 0, 0, 0, 0)
s.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)
reply = b""
while len(reply) < 28:
    chunk = s.recv(64)
    if not chunk:
        break
    reply += chunk
mark, xid, mtype, stat, flavor, vlen, accept = struct.unpack(">7I", reply[:28])
print("ok" if (xid, mtype, stat, accept) == (0x1d2c3b4a, 1, 0, 0) else "bad reply %r" % reply)
`

// TestDebPackageUnderSystemd: the package built by make deb replaces
// Debian's rpcbind on a machine running the NFS stack under a real
// systemd (a throw-away container over this machine's root), and:
// apt-get removes rpcbind and keeps nfs-common and nfs-ganesha; the
// services registered with rpcbind stay registered across the swap; the
// first call socket-activates the daemon, which reports ready, runs as
// _rpc and serves the abstract socket too; rpc-statd.service and
// nfs-ganesha register and showmount lists the export; a restart, a
// kill -9 and a reinstall (after purging rpcbind's leftovers, the
// README's repair) keep the registrations; the journal has the daemon's
// structured lines; systemd-analyze verify finds nothing in the units; a
// stop is clean; apt-get installing rpcbind swaps back, and purging
// portmapd then leaves rpcbind's files and units alone.
func TestDebPackageUnderSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a container: not in -short")
	}
	if why := containerPrereqs(); why != "" {
		t.Skip("systemd container: " + why)
	}
	for _, tool := range []string{"make", "dpkg-deb", "dpkg-shlibdeps", "/usr/bin/ganesha.nfsd", "/sbin/rpc.statd", "/sbin/rpcbind"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing (make deps installs dpkg-dev, nfs-common, nfs-ganesha-vfs, rpcbind)", tool)
		}
	}
	if err := exec.Command("dpkg-query", "-W", "nfs-ganesha-vfs").Run(); err != nil {
		t.Skip("nfs-ganesha-vfs not installed (make deps installs it)")
	}
	deb := buildDeb(t)
	if _, err := exec.LookPath("lintian"); err == nil {
		out, _ := exec.Command("lintian", "--pedantic", deb).CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "W:") {
				t.Errorf("lintian: %s", l)
			}
		}
	}
	files := []string{deb}
	// Debian's rpcbind package, for swapping back; the container has no
	// network, so it is fetched here (apt's cache, else apt-get download).
	rpcbindDeb := rpcbindPackage(t)
	if rpcbindDeb != "" {
		files = append(files, rpcbindDeb)
	}

	c := bootContainer(t, "pmdeb", files, "--tmpfs=/srv/nfs:mode=0755")

	// A machine serving NFS with Debian's rpcbind.
	if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(c.init), "root/etc/ganesha/ganesha.conf"), []byte(ganeshaConf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must(60*time.Second, "systemctl", "enable", "--now", "rpcbind.socket", "rpcbind.service")
	c.must(60*time.Second, "systemctl", "stop", "rpc-statd.service", "nfs-ganesha-lock.service")
	c.must(60*time.Second, "systemctl", "restart", "nfs-ganesha.service")
	c.waitFor(60*time.Second, "ganesha registers with rpcbind", func() (bool, string) {
		out, _ := c.run(10*time.Second, "rpcinfo", "-p")
		return registered(out, "100005", "100003"), out
	})
	if exe := c.sh(10*time.Second, `readlink /proc/$(systemctl show -P MainPID rpcbind.service)/exe`); !strings.Contains(exe, "/rpcbind") {
		t.Fatalf("before the install, the portmapper is %s, not Debian's rpcbind", exe)
	}

	// The install, as the README has it.
	out := c.sh(120*time.Second, "cd /var/tmp/pm && apt-get install -y ./"+filepath.Base(deb))
	if !strings.Contains(out, "Removing rpcbind") {
		t.Errorf("apt-get did not remove rpcbind:\n%s", out)
	}
	for pkg, want := range map[string]string{"portmapd": "install ok installed", "nfs-common": "install ok installed",
		"nfs-ganesha": "install ok installed", "rpcbind": "deinstall ok config-files"} {
		if got := strings.TrimSpace(c.must(10*time.Second, "dpkg-query", "-W", "-f=${Status}", pkg)); got != want {
			t.Errorf("after the install, %s is %q, want %q", pkg, got, want)
		}
	}

	// The socket is listening and the daemon not yet started.
	if got := c.show("rpcbind.socket", "ActiveState"); got != "active" {
		t.Errorf("rpcbind.socket %s after the install", got)
	}
	if got := c.show("rpcbind.service", "ActiveState"); got != "inactive" {
		t.Errorf("rpcbind.service %s before any call, want inactive (socket activation)", got)
	}
	listening := c.must(10*time.Second, "ss", "-lx")
	for _, sock := range []string{" /run/rpcbind.sock ", " @/run/rpcbind.sock "} {
		if !strings.Contains(listening, sock) {
			t.Errorf("%s not listening:\n%s", strings.TrimSpace(sock), listening)
		}
	}

	// The first call starts it; ganesha, registered with rpcbind before
	// the swap, is still registered (rpcbind's warm-start files imported).
	first := c.must(30*time.Second, "rpcinfo", "-p", "127.0.0.1")
	if !registered(first, "100005", "100003") {
		t.Errorf("ganesha's registrations were lost in the swap:\n%s", first)
	}
	if got := c.show("rpcbind.service", "ActiveState") + "/" + c.show("rpcbind.service", "SubState"); got != "active/running" {
		t.Fatalf("rpcbind.service %s after the first call", got)
	}
	if status := c.show("rpcbind.service", "StatusText"); !strings.HasPrefix(status, "serving") {
		t.Errorf("StatusText %q: the daemon did not report ready", status)
	}
	pid := c.show("rpcbind.service", "MainPID")
	if exe := c.must(10*time.Second, "readlink", "/proc/"+pid+"/exe"); strings.TrimSpace(exe) != "/usr/sbin/portmapd" {
		t.Errorf("rpcbind.service runs %s", exe)
	}
	if uid := c.sh(10*time.Second, "awk '/^Uid:/ {print $2}' /proc/"+pid+"/status"); strings.TrimSpace(uid) != strings.TrimSpace(c.must(10*time.Second, "id", "-u", "_rpc")) {
		t.Errorf("the daemon runs as uid %s, not _rpc", uid)
	}

	// The abstract socket is served too: a NULL call to RPCBIND v3 over it.
	if out, err := c.run(30*time.Second, "python3", "-c", abstractNull); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("NULL call over @/run/rpcbind.sock: %v\n%s", err, out)
	}

	// rpc-statd.service (nfs-common) starts and registers.
	c.must(60*time.Second, "systemctl", "start", "rpc-statd.service")
	c.waitFor(30*time.Second, "rpc.statd registers", func() (bool, string) {
		out, _ := c.run(10*time.Second, "rpcinfo", "-p")
		return registered(out, "100024"), out
	})

	// nfs-ganesha unregisters when it stops and registers when it starts;
	// showmount asks its mountd for the export.
	c.must(60*time.Second, "systemctl", "stop", "nfs-ganesha.service")
	c.waitFor(30*time.Second, "ganesha unregisters mountd", func() (bool, string) {
		out, _ := c.run(10*time.Second, "rpcinfo", "-p")
		return !strings.Contains(out, " 100005 "), out
	})
	c.must(60*time.Second, "systemctl", "start", "nfs-ganesha.service")
	c.waitFor(60*time.Second, "ganesha registers with portmapd", func() (bool, string) {
		out, _ := c.run(10*time.Second, "rpcinfo", "-p")
		return registered(out, "100005", "100003", "100021"), out
	})
	showmount := func(when string) {
		t.Helper()
		out, err := c.run(30*time.Second, "showmount", "-e", "127.0.0.1")
		if err != nil || !strings.Contains(out, "/srv/nfs") {
			t.Errorf("showmount -e %s: %v\n%s", when, err, out)
		}
	}
	showmount("with ganesha registered")
	if fs, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(fs), "nfsd") {
		t.Log("no kernel nfsd here: the kernel's rpc.mountd (nfs-server.service) cannot run; ganesha's mountd registered instead")
	}

	// Restarts keep every registration: a systemctl restart, then a
	// SIGKILL of the daemon, which systemd restarts.
	table := func() []string {
		lines := strings.Split(strings.TrimSpace(c.must(30*time.Second, "rpcinfo")), "\n")
		slices.Sort(lines)
		return lines
	}
	before := table()
	c.must(60*time.Second, "systemctl", "restart", "rpcbind.service")
	if after := table(); !slices.Equal(before, after) {
		t.Errorf("systemctl restart changed the table:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	pid = c.show("rpcbind.service", "MainPID")
	if n, err := strconv.Atoi(pid); err != nil || n <= 1 {
		t.Fatalf("rpcbind.service MainPID %q before the kill", pid)
	}
	c.must(10*time.Second, "kill", "-9", pid)
	c.waitFor(30*time.Second, "systemd restarts the killed daemon", func() (bool, string) {
		state := c.show("rpcbind.service", "ActiveState") + " " + c.show("rpcbind.service", "MainPID")
		return strings.HasPrefix(state, "active ") && !strings.HasSuffix(state, " "+pid) && !strings.HasSuffix(state, " 0"), state
	})
	if n := c.show("rpcbind.service", "NRestarts"); n != "1" {
		t.Errorf("NRestarts %s after one kill", n)
	}
	if after := table(); !slices.Equal(before, after) {
		t.Errorf("kill -9 changed the table:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	showmount("after the daemon was killed")

	// A -h in /etc/default/rpcbind (Debian's file suggests one) leaves the
	// addresses rpcbind.socket's, as it does for rpcbind under socket
	// activation, rather than failing on ports systemd holds.
	c.sh(10*time.Second, `echo 'OPTIONS="$OPTIONS -h 127.0.0.1"' >> /etc/default/rpcbind`)
	c.must(60*time.Second, "systemctl", "restart", "rpcbind.service")
	if after := table(); !slices.Equal(before, after) {
		t.Errorf("with -h in /etc/default/rpcbind the table changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	c.sh(10*time.Second, `sed -i '/ -h 127.0.0.1"$/d' /etc/default/rpcbind`)

	// Purging rpcbind's leftovers (config-files state since the install)
	// runs its postrm, which disables the units named rpcbind.* and
	// deletes /run/rpcbind.sock, portmapd's now; reinstalling portmapd (an
	// upgrade, as dpkg runs it) and restarting the units, as the README
	// says, repairs that, keeping the registrations (but statd's, see
	// below) and the options file.
	c.must(60*time.Second, "dpkg", "--purge", "rpcbind")
	c.sh(120*time.Second, "cd /var/tmp/pm && apt-get install -y --reinstall ./"+filepath.Base(deb))
	c.must(60*time.Second, "systemctl", "restart", "rpcbind.socket", "rpcbind.service")
	if got := strings.TrimSpace(c.must(10*time.Second, "systemctl", "is-enabled", "rpcbind.socket")); got != "enabled" {
		t.Errorf("after purging rpcbind and reinstalling portmapd, rpcbind.socket is %s", got)
	}
	if _, err := c.run(10*time.Second, "test", "-S", "/run/rpcbind.sock"); err != nil {
		t.Errorf("/run/rpcbind.sock missing after the repair")
	}
	if out, err := c.run(10*time.Second, "grep", "-q", "^OPTIONS=\"-w\"", "/etc/default/rpcbind"); err != nil {
		t.Errorf("/etc/default/rpcbind lost warm start: %v %s", err, out)
	}
	// Restarting rpcbind.socket restarts rpc-statd.service too (it
	// requires the socket), which registers again on new ports; ganesha
	// only wants the service and keeps its registrations.
	// statd forks before it registers: wait for it.
	notStatd := func(l string) bool { return strings.Contains(l, " 100024 ") }
	c.waitFor(30*time.Second, "rpc.statd registers again after the repair", func() (bool, string) {
		out, _ := c.run(10*time.Second, "rpcinfo", "-p")
		return registered(out, "100024"), out
	})
	after := table()
	if b, a := slices.DeleteFunc(slices.Clone(before), notStatd), slices.DeleteFunc(after, notStatd); !slices.Equal(b, a) {
		t.Errorf("the repair changed the table:\nbefore:\n%s\nafter:\n%s", strings.Join(b, "\n"), strings.Join(a, "\n"))
	}

	// The journal: the daemon's lines, under its unit, carry their fields.
	checkJournal(t, c)

	// The installed units as systemd reads them.
	if id := c.show("portmap.service", "Id"); id != "rpcbind.service" {
		t.Errorf("portmap.service is %q, want the alias of rpcbind.service", id)
	}
	if out, err := c.run(60*time.Second, "systemd-analyze", "verify", "/lib/systemd/system/rpcbind.socket",
		"/lib/systemd/system/rpcbind.service"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// A clean stop.
	c.must(60*time.Second, "systemctl", "stop", "rpcbind.service", "rpcbind.socket")
	for _, unit := range []string{"rpcbind.service", "rpcbind.socket"} {
		if got := c.show(unit, "ActiveState") + "/" + c.show(unit, "Result"); got != "inactive/success" {
			t.Errorf("%s after stop: %s", unit, got)
		}
	}
	if got := c.show("rpcbind.service", "ExecMainStatus"); got != "0" {
		t.Errorf("the daemon exited with status %s on stop", got)
	}
	if _, err := c.run(10*time.Second, "test", "-e", "/run/rpcbind.sock"); err == nil {
		t.Errorf("/run/rpcbind.sock left behind after stop")
	}

	if rpcbindDeb == "" {
		return
	}
	// Swapping back: apt-get install rpcbind removes portmapd, keeps the
	// NFS packages, and Debian's rpcbind runs again.
	c.must(60*time.Second, "systemctl", "start", "rpcbind.socket")
	c.must(30*time.Second, "rpcinfo", "-p")
	out = c.sh(120*time.Second, "cd /var/tmp/pm && apt-get install -y ./"+filepath.Base(rpcbindDeb))
	if !strings.Contains(out, "Removing portmapd") {
		t.Errorf("apt-get install rpcbind did not remove portmapd:\n%s", out)
	}
	for pkg, want := range map[string]string{"portmapd": "deinstall ok config-files", "nfs-common": "install ok installed",
		"nfs-ganesha": "install ok installed", "rpcbind": "install ok installed"} {
		if got := strings.TrimSpace(c.must(10*time.Second, "dpkg-query", "-W", "-f=${Status}", pkg)); got != want {
			t.Errorf("after swapping back, %s is %q, want %q", pkg, got, want)
		}
	}
	c.waitFor(30*time.Second, "Debian's rpcbind runs again", func() (bool, string) {
		out, _ := c.run(10*time.Second, "sh", "-c", `readlink /proc/$(systemctl show -P MainPID rpcbind.service)/exe; rpcinfo -p 127.0.0.1 | head -2`)
		return strings.HasPrefix(out, "/usr/sbin/rpcbind\n") && strings.Contains(out, "portmapper"), out
	})
	// Purging portmapd now removes its leftovers and nothing of rpcbind's.
	c.must(60*time.Second, "dpkg", "--purge", "portmapd")
	if out, err := c.run(10*time.Second, "dpkg-query", "-W", "portmapd"); err == nil {
		t.Errorf("portmapd still known to dpkg after purge: %s", out)
	}
	if owner := c.must(10*time.Second, "dpkg", "-S", "/etc/default/rpcbind"); !strings.HasPrefix(owner, "rpcbind:") {
		t.Errorf("/etc/default/rpcbind belongs to %s", owner)
	}
	for _, gone := range []string{"/run/portmapd", "/usr/sbin/portmapd", "/usr/lib/tmpfiles.d/portmapd.conf", "/usr/share/doc/portmapd"} {
		if _, err := c.run(10*time.Second, "test", "-e", gone); err == nil {
			t.Errorf("%s left behind after purge", gone)
		}
	}
	if got := strings.TrimSpace(c.must(10*time.Second, "systemctl", "is-enabled", "rpcbind.socket")); got != "enabled" {
		t.Errorf("purging portmapd left rpcbind.socket %s", got)
	}
}

// checkJournal: the daemon's "serving" line is in rpcbind.service's
// journal under the identifier portmapd, with its fields as JSON.
func checkJournal(t *testing.T, c *container) {
	t.Helper()
	out := c.must(30*time.Second, "journalctl", "-u", "rpcbind.service", "-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=portmapd")
	found := 0
	for _, line := range strings.Split(out, "\n") {
		var e struct {
			Message string `json:"MESSAGE"`
			Unit    string `json:"_SYSTEMD_UNIT"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Unit != "rpcbind.service" {
			continue
		}
		_, rest, ok := strings.Cut(e.Message, "\tserving\t")
		if !ok {
			continue
		}
		var fields struct {
			Transports    []string `json:"transports"`
			Registrations *int     `json:"registrations"`
		}
		if err := json.Unmarshal([]byte(rest), &fields); err != nil || fields.Registrations == nil || len(fields.Transports) == 0 {
			t.Errorf("journal: a serving line without its fields: %q (%v)", e.Message, err)
			continue
		}
		found++
	}
	// Started by the first call, by the restart and after the kill.
	if found < 3 {
		t.Errorf("journal: %d serving lines from rpcbind.service, want 3:\n%s", found, out)
	}
}

// registered reports whether rpcinfo -p output lists every program.
func registered(rpcinfo string, progs ...string) bool {
	for _, p := range progs {
		if !strings.Contains(rpcinfo, " "+p+" ") {
			return false
		}
	}
	return true
}

// buildDeb runs make deb into a temporary directory and returns the package.
func buildDeb(t *testing.T) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	if out, err := exec.Command("make", "-C", root, "deb", "DIST="+dist).CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "portmapd_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v", debs)
	}
	return debs[0]
}

// rpcbindPackage returns Debian's rpcbind .deb, from apt's cache or
// downloaded, or "" (logged) when neither works.
func rpcbindPackage(t *testing.T) string {
	t.Helper()
	if debs, _ := filepath.Glob("/var/cache/apt/archives/rpcbind_*.deb"); len(debs) > 0 {
		return debs[len(debs)-1]
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // apt downloads as _apt
	cmd := exec.Command("apt-get", "download", "rpcbind")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("swapping back to rpcbind not tested: apt-get download rpcbind: %v\n%s", err, out)
		return ""
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "rpcbind_*.deb"))
	if len(debs) == 0 {
		t.Log("swapping back to rpcbind not tested: apt-get download rpcbind fetched nothing")
		return ""
	}
	return debs[0]
}
