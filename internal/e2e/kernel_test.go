package e2e

import (
	"slices"
	"testing"
)

// TestKernelRegistrationDifferential registers services the way the Linux
// kernel's RPC client (net/sunrpc/rpcb_clnt.c) does for nfsd, lockd and
// NFS_ACL (100227): RPCBIND v4 SET and UNSET with r_owner "0", over the
// local socket or, failing that, over TCP from 127.0.0.1 with a privileged
// source port; UNSET with empty netid and address to clear a program
// before it registers and when it stops; PMAP v2 SET over TCP where v4 is
// not available.
func TestKernelRegistrationDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), kernelSteps())
}

// kernelSteps: the Expect lines are what Debian's rpcbind 1.2.6 answered.
// The owner is never taken from r_owner "0": it is "superuser" for root
// on the local socket and for a privileged port, "unknown" for an
// unprivileged one and the uid for another user on the local socket.
func kernelSteps() []Step {
	nlm := []string{
		"  100021 1 udp 0.0.0.0.156.65 superuser",
		"  100021 1 tcp 0.0.0.0.156.65 superuser",
		"  100021 1 udp6 ::.156.65 superuser",
		"  100021 1 tcp6 ::.156.65 superuser",
	}
	nfs := []string{
		"  100003 3 tcp 0.0.0.0.8.1 superuser",
		"  100003 3 tcp6 ::.8.1 superuser",
		"  100003 4 tcp 0.0.0.0.8.1 superuser",
		"  100003 4 tcp6 ::.8.1 superuser",
	}
	return []Step{
		rpcbStep("lockd clears its program before registering (v4 UNSET, empty netid, over TCP)",
			"v4 tcp:priv unset 100021 1 - - 0", "true",
			"v4 tcp:priv unset 100021 3 - - 0", "true",
			"v4 tcp:priv unset 100021 4 - - 0", "true",
		),
		rpcbStep("lockd registers over TCP from a privileged port",
			"v4 tcp:priv set 100021 1 udp 0.0.0.0.156.65 0", "true",
			"v4 tcp:priv set 100021 1 tcp 0.0.0.0.156.65 0", "true",
			"v4 tcp:priv set 100021 1 udp6 ::.156.65 0", "true",
			"v4 tcp:priv set 100021 1 tcp6 ::.156.65 0", "true",
		),
		rpcbStep("nfsd clears and registers over the local socket",
			"v4 local unset 100003 3 - - 0", "true",
			"v4 local unset 100003 4 - - 0", "true",
			"v4 local set 100003 3 tcp 0.0.0.0.8.1 0", "true",
			"v4 local set 100003 3 tcp6 ::.8.1 0", "true",
			"v4 local set 100003 4 tcp 0.0.0.0.8.1 0", "true",
			"v4 local set 100003 4 tcp6 ::.8.1 0", "true",
		),
		rpcbStep("a registration repeated after a restart of the service is TRUE",
			"v4 tcp:priv set 100021 1 udp 0.0.0.0.156.65 0", "true",
			"v4 local set 100003 4 tcp6 ::.8.1 0", "true",
		),
		rpcbStep("PMAP v2 SET over TCP, the kernel's fallback for IPv4",
			"v2 tcp:priv set 100021 3 17 40003", "true",
			"v2 tcp:priv set 100021 3 6 40003", "true",
		),
		// Port 20049, not 2049: who may map ports below 1024 and 2049 is
		// another question.
		rpcbStep("r_owner \"0\" from an unprivileged port is not believed",
			"v4 tcp:unpriv set 100227 3 tcp 0.0.0.0.78.81 0", "true",
		),
		rpcbStep("r_owner \"0\" from uid 1000 on the local socket is not believed",
			"v4 local set 100227 3 tcp6 ::.78.81 0", "true",
		).withOpts("-u", "1000"),
		Client("v4 DUMP shows the kernel's registrations", "v4 udp dump").Expect(
			dumpOut("v4 udp dump", slices.Concat(nlm, nfs, []string{
				"  100021 3 udp 0.0.0.0.156.67 superuser",
				"  100021 3 tcp 0.0.0.0.156.67 superuser",
				"  100227 3 tcp 0.0.0.0.78.81 unknown",
				"  100227 3 tcp6 ::.78.81 1000",
			})...)...),
		Command("rpcinfo", "rpcinfo"),
		Command("rpcinfo -p", "rpcinfo", "-p"),
		Command("rpcinfo -s", "rpcinfo", "-s"),
		rpcbStep("clients find the kernel's services",
			"v3 udp getaddr 100021 1", `"127.0.0.1.156.65"`,
			"v4 tcp6 getversaddr 100003 4", `"::1.8.1"`,
			"v2 udp getport 100003 3 6", "2049",
			"v4 udp getaddr 100003 3", `""`,
		),
		rpcbStep("UNSET by \"0\" from an unprivileged port is refused for superuser entries",
			"v4 tcp:unpriv unset 100021 1 - - 0", "false",
			"v4 udp getversaddr 100021 1", `"127.0.0.1.156.65"`,
		),
		rpcbStep("the kernel unregisters when the service stops (v4 UNSET, empty netid)",
			"v4 tcp:priv unset 100021 1 - - 0", "true",
			"v4 tcp:priv unset 100021 3 - - 0", "true",
			"v4 local unset 100003 3 - - 0", "true",
			"v4 local unset 100003 4 - - 0", "true",
			"v4 local unset 100227 3 - - 0", "true",
		),
		Client("nothing is left", "v4 local dump").Expect(dumpOut("v4 local dump")...),
	}
}
