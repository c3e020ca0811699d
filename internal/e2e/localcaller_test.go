package e2e

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLocalCallerOnAHostAddress: a program on this host that calls one of
// the host's own addresses (not 127.0.0.1) over UDP, as a client given the
// host's name does, is a local caller: a v3 DUMP (about 740 bytes for a
// 40-byte request, over the 4x amplification bound) is answered, as
// rpcbind answers it. A datagram from another host (here another network
// namespace, on a veth whose accept_local lets it in) with that same
// address as its source is still guarded. Who may SET stays decided by
// the source address: the host's own address is not loopback.
//
// Host A (the daemon's namespace) has 10.9.0.1 on a1 (one end of a veth
// pair kept inside A) and 10.9.1.1 on a0; host B has 10.9.1.2 and, to
// forge its source, 10.9.0.1 on b0, the other end of a0.
func TestLocalCallerOnAHostAddress(t *testing.T) {
	t.Parallel()
	a := NewNamespace(t)
	b := NewNamespace(t)
	sh := func(ns *Namespace, script string) {
		t.Helper()
		if out := ns.Run(10*time.Second, "sh", "-ec", script); out.Exit != 0 || out.Err != "" {
			t.Fatalf("%s: %s\n%s%s", script, out.Status(), out.Stdout, out.Stderr)
		}
	}
	sh(a, "ip link add a0 type veth peer name b0")
	// The namespaces' own /proc cannot see B's holder: move b0 from the
	// machine's PID namespace, entering only A's network namespace.
	if out, err := exec.Command("nsenter", "-t", strconv.Itoa(a.Pid()), "-n",
		"ip", "link", "set", "b0", "netns", strconv.Itoa(b.Pid())).CombinedOutput(); err != nil {
		t.Fatalf("moving b0 to B: %v %s", err, out)
	}
	sh(a, `ip link add a1 type veth peer name a1p
ip link set a0 up; ip link set a1 up; ip link set a1p up
ip addr add 10.9.1.1/24 dev a0
ip addr add 10.9.0.1/24 dev a1
echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter
echo 0 > /proc/sys/net/ipv4/conf/a0/rp_filter
echo 1 > /proc/sys/net/ipv4/conf/a0/accept_local`)
	sh(b, `ip link set b0 up
ip addr add 10.9.1.2/24 dev b0
ip addr add 10.9.0.1/32 dev b0
echo 2 > /proc/sys/net/ipv4/conf/b0/arp_announce`)
	d := StartDaemonIn(t, a, Portmapd())
	client := ClientPath(t)
	dump := NewCall(0x10ca1, 100000, 3, 4).Hex()

	// From A itself, bound to 10.9.0.1, to 10.9.0.1: answered.
	out := a.Run(0, client, "-S", "10.9.0.1", "-4", "10.9.0.1", "-w", "1000",
		"raw udp "+dump, "v3 udp:unpriv set 400900 1 udp 0.0.0.0.4.1")
	lines := strings.Split(out.Stdout, "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], ": reply 00010ca10000000100000000") {
		t.Errorf("a local caller using the host's address got no DUMP:\n%s%s", out.Stdout, out.Stderr)
	}
	if !strings.HasSuffix(lines[1], ": error RPC_AUTHERROR(AUTH_TOOWEAK)") {
		t.Errorf("SET from the host's own address (not loopback) must stay refused:\n%s", out.Stdout)
	}

	// From B with the same source address, to A's address on that link:
	// the datagram arrives (accept_local) and its reply is refused. The
	// reply would go to A's own 10.9.0.1 in any case, so B sees nothing
	// either way: the daemon's log tells.
	const refused = "reply to a non-local source larger than its request allows; not sent"
	out = b.Run(0, client, "-S", "10.9.0.1", "-4", "10.9.1.1", "-w", "300", "raw udp "+dump)
	if !strings.HasSuffix(strings.TrimSpace(out.Stdout), ": noreply") {
		t.Errorf("B: %s%s", out.Stdout, out.Stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.Stderr(), refused) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(d.Stderr(), refused) || !strings.Contains(d.Stderr(), `"remote": "10.9.0.1:`) {
		t.Errorf("the forged datagram from B was not refused by the amplification guard; daemon log:\n%s", d.Stderr())
	}
	if strings.Count(d.Stderr(), refused) != 1 {
		t.Errorf("want exactly one refusal (B's), got:\n%s", d.Stderr())
	}
}
