package e2e

import (
	"strings"
	"testing"
)

// TestWarmStartImportsRpcbind replaces a running rpcbind the way an
// administrator would: rpcbind -w is stopped with SIGTERM, which writes its
// warm-start files to /run/rpcbind, and portmapd -w starts in its place.
// Every registration rpcbind had, with its netid, address and owner, must
// be served by portmapd, in rpcbind's order, as rpcinfo shows them.
func TestWarmStartImportsRpcbind(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Rpcbind("-w"))
	reg := d.Client(
		"v2 udp set 400051 1 17 4051",
		"v2 tcp set 400051 1 6 4051",
		"v3 local set 400052 2 tcp6 ::.15.211",
		"v4 tcp:priv set 400053 1 udp 0.0.0.0.15.212",
		"v3 tcp:unpriv set 400054 1 tcp 127.0.0.1.15.213",
	)
	for _, line := range splitLines(reg.Stdout) {
		if len(line) < 6 || line[len(line)-4:] != "true" {
			t.Fatalf("registering with rpcbind: %q", reg.Stdout)
		}
	}
	user := d.NS.Run(ReadyTimeout, ClientPath(t), "-u", "1000", "v3 local set 400055 1 udp 0.0.0.0.15.214")
	if user.Stdout == "" {
		t.Fatalf("registering as uid 1000: %s", user.Status())
	}
	before := d.Run(ReadyTimeout, "rpcinfo")
	beforeP := d.Run(ReadyTimeout, "rpcinfo", "-p")
	for _, prog := range []string{"400051", "400052", "400053", "400054", "400055   "} {
		if !strings.Contains(before.Stdout, prog) {
			t.Fatalf("rpcbind does not list %s:\n%s", prog, before.Stdout)
		}
	}
	d.Stop()
	if d.Alive() {
		t.Fatal("rpcbind still running after SIGTERM")
	}

	p := StartDaemonIn(t, d.NS, Portmapd("--warm-start"))
	after := p.Run(ReadyTimeout, "rpcinfo")
	afterP := p.Run(ReadyTimeout, "rpcinfo", "-p")
	if before.Stdout != after.Stdout {
		t.Errorf("rpcinfo after the switch:\n%s\nportmapd log:\n%s", lineDiff("rpcbind", before.Stdout, "portmapd", after.Stdout), p.Stderr())
	}
	if beforeP.Stdout != afterP.Stdout {
		t.Errorf("rpcinfo -p after the switch:\n%s", lineDiff("rpcbind", beforeP.Stdout, "portmapd", afterP.Stdout))
	}

	// And portmapd's own state carries them across its own restart.
	p.Stop()
	p2 := StartDaemonIn(t, d.NS, Portmapd("--warm-start"))
	if again := p2.Run(ReadyTimeout, "rpcinfo"); again.Stdout != before.Stdout {
		t.Errorf("rpcinfo after restarting portmapd:\n%s", lineDiff("rpcbind", before.Stdout, "portmapd", again.Stdout))
	}
}
