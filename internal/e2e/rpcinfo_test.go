package e2e

import (
	"slices"
	"testing"
)

// TestRpcinfoDifferential runs rpcinfo, the client users read, in every
// mode that talks to the local portmapper: the default listing (v3 DUMP
// over the local socket), -s, -p, -m, -l, -T with udp6, tcp6 and local,
// -a, -u/-t and -d, each against a table holding registrations of
// several owners, netids and well-known programs.
func TestRpcinfoDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), rpcinfoSteps())
}

// rpcinfoOwn is rpcinfo's header and the daemon's own rows.
var rpcinfoOwn = []string{
	"   program version netid     address                service    owner",
	"    100000    4    tcp6      ::.0.111               portmapper superuser",
	"    100000    3    tcp6      ::.0.111               portmapper superuser",
	"    100000    4    udp6      ::.0.111               portmapper superuser",
	"    100000    3    udp6      ::.0.111               portmapper superuser",
	"    100000    4    tcp       0.0.0.0.0.111          portmapper superuser",
	"    100000    3    tcp       0.0.0.0.0.111          portmapper superuser",
	"    100000    2    tcp       0.0.0.0.0.111          portmapper superuser",
	"    100000    4    udp       0.0.0.0.0.111          portmapper superuser",
	"    100000    3    udp       0.0.0.0.0.111          portmapper superuser",
	"    100000    2    udp       0.0.0.0.0.111          portmapper superuser",
	"    100000    4    local     /run/rpcbind.sock      portmapper superuser",
	"    100000    3    local     /run/rpcbind.sock      portmapper superuser",
}

// rpcinfoP0 is rpcinfo -p of a daemon with its own rows only.
var rpcinfoP0 = []string{
	"   program vers proto   port  service",
	"    100000    4   tcp    111  portmapper",
	"    100000    3   tcp    111  portmapper",
	"    100000    2   tcp    111  portmapper",
	"    100000    4   udp    111  portmapper",
	"    100000    3   udp    111  portmapper",
	"    100000    2   udp    111  portmapper",
}

// everyVersion is what rpcinfo prints when it pings every version of
// 100000 on one transport.
var everyVersion = []string{
	"program 100000 version 2 ready and waiting",
	"program 100000 version 3 ready and waiting",
	"program 100000 version 4 ready and waiting",
}

// rpcinfoSteps is the rpcinfo scenario. The Expect lines are what rpcinfo
// printed against Debian's rpcbind 1.2.6. Worth knowing:
//
//   - Without a host, rpcinfo and rpcinfo -p talk over the local socket;
//     rpcinfo -d goes through rpcb_unset, the local socket first, so the
//     caller's uid decides what it may remove.
//   - rpcbind answers PMAP v2 on IPv6 too: rpcinfo -p ::1 and
//     rpcinfo -T tcp6 ::1 100000 (which pings versions 2 to 4) work.
//   - rpcinfo -m's RPCB_GETADDR table is the daemon's lookup list, newest
//     first, including the lookups of version 0 rpcinfo makes to learn
//     the version range before pinging every version.
func rpcinfoSteps() []Step {
	return []Step{
		Command("rpcinfo on a fresh daemon", "rpcinfo").Expect(rpcinfoOwn...),
		Command("rpcinfo -s on a fresh daemon", "rpcinfo", "-s").Expect(
			"   program version(s) netid(s)                         service     owner",
			"    100000  2,3,4     local,udp,tcp,udp6,tcp6          portmapper  superuser",
		),
		Command("rpcinfo -p on a fresh daemon (v2 DUMP over the local socket)", "rpcinfo", "-p").Expect(
			rpcinfoP0...),

		rpcbStep("registrations as root",
			"v4 local set 100003 3 tcp 0.0.0.0.8.1", "true",
			"v4 local set 100003 4 tcp 0.0.0.0.8.1", "true",
			"v4 local set 100003 3 tcp6 ::.8.1", "true",
			"v4 local set 100003 4 tcp6 ::.8.1", "true",
			"v3 tcp set 100005 3 udp 0.0.0.0.78.80", "true",
			"v3 tcp set 100005 3 tcp 0.0.0.0.78.80", "true",
			"v4 tcp6 set 100005 3 udp6 ::.78.80", "true",
			"v2 udp set 100021 1 17 40001", "true",
			"v2 udp set 100021 4 6 40002", "true",
			"v4 local set 400100 1 local /run/e2e-400100.sock", "true",
		),
		rpcbStep("registrations from an unprivileged port and as uid 1000",
			"v3 udp:unpriv set 400101 1 udp 0.0.0.0.39.16", "true",
			"v4 tcp6:unpriv set 400101 1 tcp6 ::.39.16", "true",
		),
		ClientOpts("registrations as uid 1000", []string{"-u", "1000"},
			"v4 local set 400102 2 udp 0.0.0.0.39.17", "lib rpcb_set 400102 2 tcp 0.0.0.0.39.17").Expect(
			"v4 local set 400102 2 udp 0.0.0.0.39.17: true",
			"lib rpcb_set 400102 2 tcp 0.0.0.0.39.17: true",
		),

		Command("rpcinfo", "rpcinfo").Expect(slices.Concat(rpcinfoOwn, []string{
			"    100003    3    tcp       0.0.0.0.8.1            nfs        superuser",
			"    100003    4    tcp       0.0.0.0.8.1            nfs        superuser",
			"    100003    3    tcp6      ::.8.1                 nfs        superuser",
			"    100003    4    tcp6      ::.8.1                 nfs        superuser",
			"    100005    3    udp       0.0.0.0.78.80          mountd     superuser",
			"    100005    3    tcp       0.0.0.0.78.80          mountd     superuser",
			"    100005    3    udp6      ::.78.80               mountd     superuser",
			"    100021    1    udp       0.0.0.0.156.65         nlockmgr   superuser",
			"    100021    4    tcp       0.0.0.0.156.66         nlockmgr   superuser",
			"    400100    1    local     /run/e2e-400100.sock   -          superuser",
			"    400101    1    udp       0.0.0.0.39.16          -          unknown",
			"    400101    1    tcp6      ::.39.16               -          unknown",
			"    400102    2    udp       0.0.0.0.39.17          -          1000",
			"    400102    2    tcp       0.0.0.0.39.17          -          1000",
		})...),
		Command("rpcinfo 127.0.0.1", "rpcinfo", "127.0.0.1"),
		Command("rpcinfo ::1", "rpcinfo", "::1"),
		// Versions and netids in the order rpcinfo collects them: each new
		// one goes first.
		Command("rpcinfo -s", "rpcinfo", "-s").Expect(
			"   program version(s) netid(s)                         service     owner",
			"    100000  2,3,4     local,udp,tcp,udp6,tcp6          portmapper  superuser",
			"    100003  4,3       tcp6,tcp                         nfs         superuser",
			"    100005  3         udp6,tcp,udp                     mountd      superuser",
			"    100021  4,1       tcp,udp                          nlockmgr    superuser",
			"    400100  1         local                            -           superuser",
			"    400101  1         tcp6,udp                         -           unknown",
			"    400102  2         tcp,udp                          -           1000",
		),
		Command("rpcinfo -s ::1", "rpcinfo", "-s", "::1"),
		Command("rpcinfo -p", "rpcinfo", "-p").Expect(slices.Concat(rpcinfoP0, []string{
			"    100003    3   tcp   2049  nfs",
			"    100003    4   tcp   2049  nfs",
			"    100005    3   udp  20048  mountd",
			"    100005    3   tcp  20048  mountd",
			"    100021    1   udp  40001  nlockmgr",
			"    100021    4   tcp  40002  nlockmgr",
			"    400101    1   udp  10000",
			"    400102    2   udp  10001",
			"    400102    2   tcp  10001",
		})...),
		Command("rpcinfo -p 127.0.0.1", "rpcinfo", "-p", "127.0.0.1"),
		Command("rpcinfo -p ::1 (PMAP v2 over IPv6)", "rpcinfo", "-p", "::1"),
		Command("rpcinfo -l 127.0.0.1 100000 4", "rpcinfo", "-l", "127.0.0.1", "100000", "4").Expect(
			"   program vers  tp_family/name/class    address\t\t  service",
			"    100000  4    inet/tcp/cots_ord       127.0.0.1.0.111          portmapper   ",
			"    100000  4    inet/udp/clts           127.0.0.1.0.111          portmapper   ",
		),
		Command("rpcinfo -l ::1 100000 4", "rpcinfo", "-l", "::1", "100000", "4").Expect(
			"   program vers  tp_family/name/class    address\t\t  service",
			"    100000  4    inet6/tcp/cots_ord      ::1.0.111                portmapper   ",
			"    100000  4    inet6/udp/clts          ::1.0.111                portmapper   ",
		),
		Command("rpcinfo -l 127.0.0.1 100005 3", "rpcinfo", "-l", "127.0.0.1", "100005", "3"),
		Command("rpcinfo -l ::1 100003 4", "rpcinfo", "-l", "::1", "100003", "4"),
		Command("rpcinfo -l 127.0.0.1 100021 2 (no such version)", "rpcinfo", "-l", "127.0.0.1", "100021", "2").Expect(
			"No remote programs registered."),

		Command("rpcinfo -T tcp6 ::1 100000 4", "rpcinfo", "-T", "tcp6", "::1", "100000", "4").Expect(
			"program 100000 version 4 ready and waiting"),
		Command("rpcinfo -T tcp6 ::1 100000 (every version, PMAP v2 included)",
			"rpcinfo", "-T", "tcp6", "::1", "100000").Expect(everyVersion...),
		Command("rpcinfo -T udp6 ::1 100000 3", "rpcinfo", "-T", "udp6", "::1", "100000", "3"),
		// stderr: "rpcinfo: RPC: Program/version mismatch; low version = 2, high version = 4", exit 1.
		Command("rpcinfo -T udp6 ::1 100000 5 (PROG_MISMATCH)", "rpcinfo", "-T", "udp6", "::1", "100000", "5").Expect(
			"program 100000 version 5 is not available"),
		Command("rpcinfo -T udp 127.0.0.1 100000", "rpcinfo", "-T", "udp", "127.0.0.1", "100000"),
		Command("rpcinfo -T local localhost 100000 4", "rpcinfo", "-T", "local", "localhost", "100000", "4").Expect(
			"program 100000 version 4 ready and waiting"),
		Command("rpcinfo -T local localhost 100000 (every version)",
			"rpcinfo", "-T", "local", "localhost", "100000").Expect(everyVersion...),
		Command("rpcinfo -T local /run/rpcbind.sock 100000 3", "rpcinfo", "-T", "local", "/run/rpcbind.sock", "100000", "3"),
		Command("rpcinfo -a /run/rpcbind.sock -T local 100000 4",
			"rpcinfo", "-a", "/run/rpcbind.sock", "-T", "local", "100000", "4"),
		Command("rpcinfo -a 127.0.0.1.0.111 -T udp 100000 2",
			"rpcinfo", "-a", "127.0.0.1.0.111", "-T", "udp", "100000", "2"),
		Command("rpcinfo -a ::1.0.111 -T tcp6 100000", "rpcinfo", "-a", "::1.0.111", "-T", "tcp6", "100000"),
		// stderr: "rpcinfo: RPC: Program not registered", exit 1.
		Command("rpcinfo -T tcp6 of a program registered on tcp only",
			"rpcinfo", "-T", "tcp6", "::1", "100021", "4"),
		Command("rpcinfo -u 127.0.0.1 100000", "rpcinfo", "-u", "127.0.0.1", "100000"),
		Command("rpcinfo -t 127.0.0.1 100000 5", "rpcinfo", "-t", "127.0.0.1", "100000", "5"),
		Command("rpcinfo -u of a registered program nobody serves", "rpcinfo", "-u", "127.0.0.1", "100021", "1"),
		Command("rpcinfo -t of an unregistered program", "rpcinfo", "-t", "127.0.0.1", "400177"),

		// stderr: "rpcinfo: Could not delete registration for prog 100005 version 3", exit 1.
		Command("rpcinfo -d of a superuser entry as uid 1000 is refused",
			"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "rpcinfo", "-d", "100005", "3"),
		Command("rpcinfo -d of its own entry as uid 1000",
			"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "rpcinfo", "-d", "400102", "2"),
		Command("rpcinfo -d removes every netid", "rpcinfo", "-d", "100003", "4"),
		Command("rpcinfo -d -T udp removes one netid", "rpcinfo", "-d", "-T", "udp", "100005", "3"),
		Command("rpcinfo -d -T tcp6 of a netid not registered", "rpcinfo", "-d", "-T", "tcp6", "100021", "1"),
		Command("rpcinfo -d of nothing", "rpcinfo", "-d", "400177", "1"),
		Command("rpcinfo after rpcinfo -d", "rpcinfo").Expect(slices.Concat(rpcinfoOwn, []string{
			"    100003    3    tcp       0.0.0.0.8.1            nfs        superuser",
			"    100003    3    tcp6      ::.8.1                 nfs        superuser",
			"    100005    3    tcp       0.0.0.0.78.80          mountd     superuser",
			"    100005    3    udp6      ::.78.80               mountd     superuser",
			"    100021    1    udp       0.0.0.0.156.65         nlockmgr   superuser",
			"    100021    4    tcp       0.0.0.0.156.66         nlockmgr   superuser",
			"    400100    1    local     /run/e2e-400100.sock   -          superuser",
			"    400101    1    udp       0.0.0.0.39.16          -          unknown",
			"    400101    1    tcp6      ::.39.16               -          unknown",
		})...),
		Command("rpcinfo -s after rpcinfo -d", "rpcinfo", "-s", "127.0.0.1").Expect(
			"   program version(s) netid(s)                         service     owner",
			"    100000  2,3,4     local,udp,tcp,udp6,tcp6          portmapper  superuser",
			"    100003  3         tcp6,tcp                         nfs         superuser",
			"    100005  3         udp6,tcp                         mountd      superuser",
			"    100021  4,1       tcp,udp                          nlockmgr    superuser",
			"    400100  1         local                            -           superuser",
			"    400101  1         tcp6,udp                         -           unknown",
		),
		Command("rpcinfo -p after rpcinfo -d", "rpcinfo", "-p").Expect(slices.Concat(rpcinfoP0, []string{
			"    100003    3   tcp   2049  nfs",
			"    100005    3   tcp  20048  mountd",
			"    100021    1   udp  40001  nlockmgr",
			"    100021    4   tcp  40002  nlockmgr",
			"    400101    1   udp  10000",
		})...),

		Command("rpcinfo -m", "rpcinfo", "-m"),
		Command("rpcinfo -m 127.0.0.1", "rpcinfo", "-m", "127.0.0.1"),
	}
}
