package e2e

import "testing"

// TestStatsDifferential compares GETSTAT counters after a fixed sequence of
// calls (the harness's readiness check adds exactly one v2 NULL).
func TestStatsDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), statsSteps())
}

func statsSteps() []Step {
	return []Step{
		Client("v2 calls",
			"v2 udp:unpriv null", "v2 tcp:priv set 400030 1 6 4300", "v2 tcp:priv set 400030 1 6 4301",
			"v2 udp:unpriv getport 400030 1 6", "v2 udp:unpriv getport 400030 2 6",
			"v2 udp:unpriv getport 400031 1 17", "v2 udp:unpriv dump", "v2 udp:priv unset 400030 1",
			"v2 udp:priv unset 400030 1"),
		Client("v3 and v4 calls",
			"v3 udp:unpriv getaddr 100000 2", "v3 tcp:unpriv getaddr 400031 1",
			"v4 udp:unpriv getversaddr 100000 4", "v4 udp:unpriv getaddrlist 100000 2",
			"v3 tcp:priv set 400032 1 tcp 0.0.0.0.16.0", "v4 udp:priv unset 400032 1 -",
			"v4 udp:unpriv gettime", "v3 udp:unpriv dump"),
		Client("calls through clnt_create (lookups included)", "v2 udp getport 400031 1 17", "v4 tcp null"),
		Client("GETSTAT", "v4 udp:unpriv getstat"),
		Command("rpcinfo -m", "rpcinfo", "-m", "127.0.0.1"),
	}
}
