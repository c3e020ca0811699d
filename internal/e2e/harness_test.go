package e2e

import (
	"strings"
	"testing"
)

// TestHarnessRpcbindSelfDiff runs every scenario against two rpcbinds: any
// difference is non-determinism in the harness or the scenario, and every
// recorded Expect must hold.
func TestHarnessRpcbindSelfDiff(t *testing.T) {
	for name, steps := range map[string]func(testing.TB) []Step{
		"pmapv2":      func(testing.TB) []Step { return pmapV2Steps() },
		"owner":       func(testing.TB) []Step { return ownerSteps() },
		"stats":       func(testing.TB) []Step { return statsSteps() },
		"rpcbv34":     func(testing.TB) []Step { return rpcbV34Steps() },
		"rpcbv34err":  func(testing.TB) []Step { return rpcbV34ErrorSteps() },
		"rpcinfo":     func(testing.TB) []Step { return rpcinfoSteps() },
		"libtirpc":    func(testing.TB) []Step { return libtirpcSteps() },
		"kernel":      func(testing.TB) []Step { return kernelSteps() },
		"remotecalls": func(testing.TB) []Step { return remoteCallsOffSteps() },
		"statd":       statdSteps,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			RunDiff(t, Rpcbind(), Rpcbind(), steps(t))
		})
	}
}

// TestHarnessDetectsDifference shows that the harness reports a real
// difference: rpcbind -i accepts SET from 127.0.0.2, plain rpcbind refuses.
func TestHarnessDetectsDifference(t *testing.T) {
	t.Parallel()
	steps := []Step{
		Client("same on both", "v2 udp null"),
		ClientOpts("SET from 127.0.0.2", []string{"-S", "127.0.0.2"}, "v2 udp:priv set 400001 1 17 4001"),
		Client("DUMP differs too", "v2 udp getport 400001 1 17"),
	}
	ms, _, _ := Diff(t, Rpcbind(), Rpcbind("-i").Named("rpcbind-i"), steps)
	if len(ms) != 2 || ms[0].Step != 1 || ms[1].Step != 2 {
		t.Fatalf("want mismatches at steps 2 and 3, got %d: %v", len(ms), ms)
	}
	for _, want := range []string{"-v2 udp:priv set 400001 1 17 4001: error RPC_AUTHERROR(AUTH_TOOWEAK)",
		"+v2 udp:priv set 400001 1 17 4001: true", "--- rpcbind", "+++ rpcbind-i"} {
		if !strings.Contains(ms[0].Report, want) {
			t.Errorf("report lacks %q:\n%s", want, ms[0].Report)
		}
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff("a", "x\ny\nz\n", "b", "x\nz\nw")
	want := "  --- a\n  +++ b\n   x\n  -y\n   z\n  +w⏎(no newline at end)\n"
	if got != want {
		t.Errorf("lineDiff:\n%s\nwant:\n%s", got, want)
	}
}

func TestCallBytes(t *testing.T) {
	c := NewCall(1, 100000, 2, 3, 7)
	c.Cred = AuthSysCred(0, "ab", 0, 0, 5)
	want := "00000001" + "00000000" + "00000002" + "000186a0" + "00000002" + "00000003" +
		"00000001" + "0000001c" + "00000000" + "00000002" + "61620000" + "00000000" + "00000000" + "00000001" + "00000005" +
		"00000000" + "00000000" +
		"00000007"
	if got := c.Hex(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	w, err := ReplyWords("raw udp 00: reply " + Hex(AcceptedReply(9, ProgMismatch, 2, 4)))
	if err != nil || len(w) != 8 || w[0] != 9 || w[5] != ProgMismatch || w[7] != 4 {
		t.Errorf("ReplyWords = %v, %v", w, err)
	}
}

// TestHarnessRestart stops rpcbind with SIGTERM and starts it again with -w
// in the same namespace: its warm-start files in the namespace's /run bring
// the registration back, the entries of program 100000 are not duplicated.
func TestHarnessRestart(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Rpcbind())
	if out := d.Client("v2 udp set 400040 1 17 4400"); out.Stdout != "v2 udp set 400040 1 17 4400: true\n" {
		t.Fatalf("SET: %q %s", out.Stdout, out.Status())
	}
	d.Stop()
	if d.Alive() {
		t.Fatal("rpcbind still running after Stop")
	}
	d2 := StartDaemonIn(t, d.NS, Rpcbind("-w"))
	out := d2.Client("v2 udp getport 400040 1 17", "v2 tcp dump")
	want := "v2 udp getport 400040 1 17: 4400\n" +
		"v2 tcp dump: 7 rows\n" +
		"  100000 4 6 111\n  100000 3 6 111\n  100000 2 6 111\n" +
		"  100000 4 17 111\n  100000 3 17 111\n  100000 2 17 111\n" +
		"  400040 1 17 4400\n"
	if out.Stdout != want {
		t.Errorf("after restart:\n%s", lineDiff("want", want, "got", out.Stdout))
	}
}
