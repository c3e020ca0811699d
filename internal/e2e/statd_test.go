package e2e

import (
	"os/exec"
	"os/user"
	"slices"
	"testing"
)

// TestStatdDifferential runs a real RPC service, rpc.statd from
// nfs-common, next to each daemon: it registers NSM (100024 v1) on udp,
// tcp, udp6 and tcp6 through the local socket, rpcinfo shows it exactly
// as with rpcbind, clients find it through the portmapper, and on SIGTERM
// it unregisters.
func TestStatdDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), statdSteps(t))
}

// statdStateDir makes statd's state directory on the namespace's own /run
// (-P), so that nothing of the machine's /var/lib/nfs is touched, and,
// where the nfs module is loaded, puts /dev/null over the kernel's NSM
// state number, which statd writes at start.
const statdStateDir = "mkdir -p /run/statd/sm /run/statd/sm.bak && chown -R statd /run/statd && " +
	"if [ -e /proc/sys/fs/nfs/nsm_local_state ]; then " +
	"mount --bind /dev/null /proc/sys/fs/nfs/nsm_local_state; fi"

// statdArgv runs statd in the foreground on port 4000 with that state
// directory.
var statdArgv = []string{"/usr/sbin/rpc.statd", "-F", "-d", "--no-notify", "-p", "4000", "-o", "4001", "-P", "/run/statd"}

// statdSteps needs rpc.statd and its "statd" user, whose uid rpcinfo
// shows as the owner: statd registers after dropping to the owner of its
// state directory.
func statdSteps(t testing.TB) []Step {
	t.Helper()
	if _, err := exec.LookPath("/usr/sbin/rpc.statd"); err != nil {
		t.Skip("e2e: rpc.statd not installed (apt-get install nfs-common)")
	}
	u, err := user.Lookup("statd")
	if err != nil {
		t.Skipf("e2e: no statd user: %v", err)
	}
	owner := u.Uid
	svc := newServices()
	return []Step{
		Command("a state directory owned by statd", "sh", "-c", statdStateDir),
		svc.Start("rpc.statd", "Waiting for client connections", statdArgv...),
		Command("rpcinfo -p shows statd", "rpcinfo", "-p").Expect(slices.Concat(rpcinfoP0, []string{
			"    100024    1   udp   4000  status",
			"    100024    1   tcp   4000  status",
		})...),
		Command("rpcinfo shows statd", "rpcinfo").Expect(slices.Concat(rpcinfoOwn, []string{
			"    100024    1    udp       0.0.0.0.15.160         status     " + owner,
			"    100024    1    tcp       0.0.0.0.15.160         status     " + owner,
			"    100024    1    udp6      ::.15.160              status     " + owner,
			"    100024    1    tcp6      ::.15.160              status     " + owner,
		})...),
		Command("rpcinfo -s shows statd", "rpcinfo", "-s", "127.0.0.1").Expect(
			"   program version(s) netid(s)                         service     owner",
			"    100000  2,3,4     local,udp,tcp,udp6,tcp6          portmapper  superuser",
			"    100024  1         tcp6,udp6,tcp,udp                status      "+owner,
		),
		Command("rpcinfo -u finds statd through the portmapper and calls it",
			"rpcinfo", "-u", "127.0.0.1", "100024", "1").Expect("program 100024 version 1 ready and waiting"),
		Command("rpcinfo -T tcp6 finds statd through the portmapper and calls it",
			"rpcinfo", "-T", "tcp6", "::1", "status", "1").Expect("program 100024 version 1 ready and waiting"),
		Command("rpcinfo -l ::1 status 1", "rpcinfo", "-l", "::1", "status", "1").Expect(
			"   program vers  tp_family/name/class    address\t\t  service",
			"    100024  1    inet6/udp/clts          ::1.15.160               status       ",
			"    100024  1    inet6/tcp/cots_ord      ::1.15.160               status       ",
		),
		svc.Stop("rpc.statd").Expect("rpc.statd exited: exit status 0"),
		Command("statd unregistered when it stopped", "rpcinfo", "-p").Expect(rpcinfoP0...),
		Command("rpcinfo has only the daemon's own rows left", "rpcinfo").Expect(rpcinfoOwn...),
	}
}
