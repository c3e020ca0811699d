package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/netns"
)

// lanHost is one host of a LAN built by newLAN: a namespace whose eth0 has
// 10.77.0.N/24 and the MAC address 02:00:00:00:00:0N, hence the
// link-local address fe80::ff:fe00:N, the same in every run, so that two
// LANs' answers can be compared.
type lanHost struct {
	ns   *Namespace
	d    *Daemon
	addr string
}

// newLAN builds n hosts joined by a bridge that lives in a namespace of
// its own, and starts spec's daemon on each once its interfaces are up
// (daemons join the IPv6 multicast group at start). Everything lives in
// namespaces made for the test and goes away with them.
func newLAN(t *testing.T, spec DaemonSpec, n int) []*lanHost {
	t.Helper()
	RequireNamespaces(t)
	ClientPath(t)
	spec.Argv(t)
	sw := NewNamespace(t)
	mustRun(t, sw, "ip", "link", "add", "br0", "type", "bridge")
	mustRun(t, sw, "ip", "link", "set", "br0", "up")
	hosts := make([]*lanHost, n)
	for i := range hosts {
		ns := NewNamespace(t)
		h := &lanHost{ns: ns, addr: fmt.Sprintf("10.77.0.%d", i+1)}
		// Without duplicate address detection the link-local address is
		// usable at once; nothing else could claim it on this bridge.
		mustRun(t, ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
		port := fmt.Sprintf("port%d", i+1)
		if err := netns.Veth(sw.Namespace, ns.Namespace, port, "eth0"); err != nil {
			t.Fatalf("e2e: %v", err)
		}
		mustRun(t, sw, "ip", "link", "set", port, "master", "br0", "up")
		mustRun(t, ns, "ip", "link", "set", "eth0", "address", fmt.Sprintf("02:00:00:00:00:%02x", i+1))
		mustRun(t, ns, "ip", "addr", "add", h.addr+"/24", "broadcast", "+", "dev", "eth0")
		mustRun(t, ns, "ip", "link", "set", "eth0", "up")
		hosts[i] = h
	}
	for i, h := range hosts {
		ll := fmt.Sprintf("fe80::ff:fe00:%x", i+1)
		deadline := time.Now().Add(10 * time.Second)
		for {
			out := h.ns.Run(0, "ip", "-6", "addr", "show", "dev", "eth0")
			if strings.Contains(out.Stdout, ll) && !strings.Contains(out.Stdout, "tentative") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("e2e: %s never got %s:\n%s", h.addr, ll, out.Stdout)
			}
			time.Sleep(20 * time.Millisecond)
		}
		h.d = StartDaemonIn(t, h.ns, spec)
	}
	return hosts
}

// startEcho runs the C client's echo service of program 400300 version 1
// ("udp PORT" or "udp6 PORT") next to d for the rest of the test.
func startEcho(t *testing.T, d *Daemon, where string) {
	t.Helper()
	p := d.NS.Start("echo "+where, ClientPath(t), "serve "+where+" 400300 1 120")
	deadline := time.Now().Add(serviceReadyTimeout)
	for !strings.Contains(p.Stdout(), "serving") {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("e2e: echo service %s did not start (%s): %s", where, p.ExitStatus(), p.Stdout()+p.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustRun(t *testing.T, ns *Namespace, argv ...string) {
	t.Helper()
	if out := ns.Run(0, argv...); out.Exit != 0 || out.Err != "" {
		t.Fatalf("e2e: %s: %s\n%s%s", strings.Join(argv, " "), out.Status(), out.Stdout, out.Stderr)
	}
}

// TestRemoteCallBroadcastDifferential broadcasts on a LAN of three hosts,
// each running its portmapper on port 111, with the echo service
// (program 400300 version 1, on udp and udp6) on hosts 2 and 3 only:
// once with Debian's rpcbind -r on every host, once with portmapd
// --remote-calls, comparing what host 1 hears.
func TestRemoteCallBroadcastDifferential(t *testing.T) {
	t.Parallel()
	const hosts = 3
	specs := []DaemonSpec{Rpcbind("-r"), Portmapd("--remote-calls")}
	steps := broadcastSteps()
	outs := make([][]Output, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		lan := newLAN(t, spec, hosts)
		for _, h := range lan[1:] {
			startEcho(t, h.d, "udp 4500")
			startEcho(t, h.d, "udp6 4501")
			out := h.d.Client("v2 udp set 400300 1 17 4500", "v4 udp set 400300 1 udp6 ::.17.149")
			if want := "v2 udp set 400300 1 17 4500: true\nv4 udp set 400300 1 udp6 ::.17.149: true\n"; out.Stdout != want {
				t.Fatalf("e2e: registering the echo on %s: %q %s", h.addr, out.Stdout, out.Status())
			}
		}
		outs[i] = make([]Output, len(steps))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j, s := range steps {
				outs[i][j] = lan[0].d.Run(s.Timeout, s.Argv...)
			}
		}()
	}
	wg.Wait()
	show := os.Getenv("PORTMAPD_E2E_SHOW") == "1"
	for j, s := range steps {
		ref, got := outs[0][j], outs[1][j]
		if show {
			t.Logf("step %d %q\nrpcbind: %s\n%sportmapd: %s\n%s", j+1, s.Name, ref.Status(), indent(ref.Stdout+ref.Stderr),
				got.Status(), indent(got.Stdout+got.Stderr))
		}
		if s.Want != "" && ref.Stdout != s.Want {
			t.Errorf("step %d %q: rpcbind no longer prints the recorded output:\n%s", j+1, s.Name,
				lineDiff("recorded", s.Want, "rpcbind", ref.Stdout))
		}
		if s.Check != nil {
			if err := s.Check(ref, got); err != nil {
				t.Errorf("step %d %q: tolerated difference (%s) is not the expected one: %v", j+1, s.Name, s.Why, err)
			}
			continue
		}
		if r := compare("rpcbind", ref, "portmapd", got); r != "" {
			t.Errorf("step %d %q:\n%s", j+1, s.Name, r)
		}
	}
}

// rpcinfoB runs rpcinfo -b for prog and vers and prints its answers
// sorted, one per responder: the order of answers and the rounds that
// repeat them vary from run to run.
func rpcinfoB(prog, vers string) Step {
	return Command("rpcinfo -b "+prog+" "+vers, "sh", "-c",
		`rpcinfo -b "$0" "$1" >/run/bcast.out; s=$?; sort -u /run/bcast.out; exit $s`, prog, vers)
}

// ipv6Broadcasts names the deliberate difference: Debian's rpcbind 1.2.6
// joins ff02::202 on a socket that it closes at once (seen with strace:
// setsockopt(4, IPV6_ADD_MEMBERSHIP) then close(4)), which drops the
// membership, so it never hears an IPv6 broadcast; portmapd joins on its
// udp6 socket and answers them too.
const ipv6Broadcasts = "rpcbind 1.2.6 drops its ff02::202 membership at start and answers no IPv6 broadcast; portmapd does"

// answersAlso accepts portmapd's output when it is exactly want: the
// reference's answers plus the IPv6 ones, and the same exit status.
func answersAlso(want ...string) func(ref, got Output) error {
	return func(ref, got Output) error {
		if w := strings.Join(want, "\n") + "\n"; got.Stdout != w {
			return fmt.Errorf("portmapd printed\n%swant\n%s", got.Stdout, w)
		}
		if ref.Status() != got.Status() || ref.Stderr != got.Stderr {
			return fmt.Errorf("status or stderr differs: %s %q vs %s %q", ref.Status(), ref.Stderr, got.Status(), got.Stderr)
		}
		return nil
	}
}

// floodIndirect is 100 INDIRECTs of the echo's NULL from one source to
// host 2, whose replies a token bucket limits; rpcbind answers all.
var floodIndirect = rpcbCall(0x7000, 4, 10, Words(400300, 1, 0, 0))

var floodReplies = regexp.MustCompile(`: sent (\d+) replies (\d+)\n$`)

// repliesBetween accepts a flood whose replies number from low to high.
func repliesBetween(low, high int) func(ref, got Output) error {
	return func(_, got Output) error {
		m := floodReplies.FindStringSubmatch(got.Stdout)
		if m == nil {
			return fmt.Errorf("unexpected output %q", got.Stdout)
		}
		n, _ := strconv.Atoi(m[2])
		if m[1] != "100" || n < low || n > high {
			return fmt.Errorf("sent %s, %d replies; want 100 sent and %d to %d replies", m[1], n, low, high)
		}
		return nil
	}
}

// broadcastSteps run on host 1 (10.77.0.1, fe80::ff:fe00:1), which has no
// echo service. The Expect lines are what Debian's rpcbind 1.2.6 -r on
// every host gave; what they show:
//
//   - Every host answers a broadcast of the portmapper's NULL, its own
//     host included, through PMAP v2 and RPCBIND v3 CALLIT alike.
//   - A broadcast of the echo is answered by hosts 2 and 3 only, each with
//     its own address merged for the caller: the hosts without the program
//     stay silent.
//   - rpcinfo -b prints the same responders.
//   - Over IPv6 (ff02::202) rpcbind answers nothing, portmapd answers with
//     the responders' link-local addresses (ipv6Broadcasts).
//   - A flood of INDIRECTs from another host is answered in full by
//     rpcbind and up to the token bucket (20 at once, 10 a second) by
//     portmapd.
func broadcastSteps() []Step {
	return []Step{
		ClientOpts("rpc_broadcast of the portmapper's NULL", []string{"-w", "500"},
			"lib rpc_broadcast - 100000 2 0").Expect(
			"lib rpc_broadcast - 100000 2 0: 3 answers",
			"  udp 10.77.0.1.0.111 res=",
			"  udp 10.77.0.2.0.111 res=",
			"  udp 10.77.0.3.0.111 res=",
		),
		ClientOpts("rpc_broadcast of the echo", []string{"-w", "500"},
			"lib rpc_broadcast - 400300 1 1 cafe").Expect(
			"lib rpc_broadcast - 400300 1 1 cafe: 2 answers",
			"  udp 10.77.0.2.17.148 res=cafe",
			"  udp 10.77.0.3.17.148 res=cafe",
		).Tolerate(ipv6Broadcasts, answersAlso(
			"lib rpc_broadcast - 400300 1 1 cafe: 4 answers",
			"  udp 10.77.0.2.17.148 res=cafe",
			"  udp 10.77.0.3.17.148 res=cafe",
			"  udp6 fe80::ff:fe00:2.17.149 res=cafe",
			"  udp6 fe80::ff:fe00:3.17.149 res=cafe",
		)),
		ClientOpts("rpc_broadcast of the portmapper version 4 over every datagram transport", []string{"-w", "500"},
			"lib rpc_broadcast datagram_v 100000 4 0").Expect(
			"lib rpc_broadcast datagram_v 100000 4 0: 3 answers",
			"  udp 10.77.0.1.0.111 res=",
			"  udp 10.77.0.2.0.111 res=",
			"  udp 10.77.0.3.0.111 res=",
		).Tolerate(ipv6Broadcasts, answersAlso(
			"lib rpc_broadcast datagram_v 100000 4 0: 6 answers",
			"  udp 10.77.0.1.0.111 res=",
			"  udp 10.77.0.2.0.111 res=",
			"  udp 10.77.0.3.0.111 res=",
			"  udp6 fe80::ff:fe00:1.0.111 res=",
			"  udp6 fe80::ff:fe00:2.0.111 res=",
			"  udp6 fe80::ff:fe00:3.0.111 res=",
		)),
		rpcinfoB("100000", "2").Expect(
			"10.77.0.1.0.111\tunknown",
			"10.77.0.2.0.111\tunknown",
			"10.77.0.3.0.111\tunknown",
		),
		rpcinfoB("400300", "1").Expect(
			"10.77.0.2.17.148\tunknown",
			"10.77.0.3.17.148\tunknown",
		).Tolerate(ipv6Broadcasts, answersAlso(
			"10.77.0.2.17.148\tunknown",
			"10.77.0.3.17.148\tunknown",
			"fe80::ff:fe00:2.17.149\tunknown",
			"fe80::ff:fe00:3.17.149\tunknown",
		)),
		ClientOpts("a flood of INDIRECTs from another host", []string{"-4", "10.77.0.2", "-w", "300"},
			"flood udp 100 "+floodIndirect.Hex()).Expect(
			"flood udp 100 "+floodIndirect.Hex()+": sent 100 replies 100",
		).Tolerate("portmapd limits remote calls per source (--remote-call-burst 20, --remote-call-rate 10/s); rpcbind does not",
			repliesBetween(20, 25)),
	}
}
