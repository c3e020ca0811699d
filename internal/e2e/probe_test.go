package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/netns"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// The probe is tested on a small network made of namespaces: a "server"
// running portmapd on port 111 and a Go RPC service, a "client" running
// portmapd probe, joined by a veth pair (10.99.0.1 and 10.99.0.2).
// Firewalls are nftables rules in the server's namespace.

const (
	probeServer  = "10.99.0.1"
	probeClient  = "10.99.0.2"
	probeSvcPort = 4600
	probeSvcEnv  = "PORTMAPD_E2E_FAKE_SERVICE"
)

func init() {
	if addr := os.Getenv(probeSvcEnv); addr != "" {
		os.Exit(probeServiceMain(addr))
	}
}

// probeServiceMain serves, over UDP and TCP at addr, program 400300
// versions 1 and 2, program 400301 (which refuses every credential) and
// program 400302 (which never answers).
func probeServiceMain(addr string) int {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				rr := rpc.NewRecordReader(conn, 1<<16)
				for {
					rec, err := rr.Next()
					if err != nil {
						return
					}
					if reply := probeServiceReply(rec); reply != nil {
						rpc.WriteRecord(conn, reply)
					}
				}
			}()
		}
	}()
	fmt.Println("serving")
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return 1
		}
		if reply := probeServiceReply(buf[:n]); reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

func probeServiceReply(msg []byte) []byte {
	h, err := rpc.ParseCall(xdr.NewDecoder(msg))
	if err != nil {
		return nil
	}
	switch h.Prog {
	case 400300:
		if h.Vers < 1 || h.Vers > 2 {
			return rpc.AppendProgMismatch(nil, h.XID, 1, 2)
		}
		return rpc.AppendSuccess(nil, h.XID)
	case 400301:
		return rpc.AppendAuthError(nil, h.XID, rpc.AuthTooWeak)
	case 400302:
		return nil
	}
	return rpc.AppendAccepted(nil, h.XID, rpc.ProgUnavail)
}

// probeNet is the two-host network.
type probeNet struct {
	t       *testing.T
	server  *Namespace
	client  *Namespace
	daemon  *Daemon
	service *Proc
	bin     string
}

func newProbeNet(t *testing.T) *probeNet {
	t.Helper()
	RequireNamespaces(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("e2e: nft not found (apt-get install nftables)")
	}
	n := &probeNet{t: t, bin: PortmapdPath(t)}
	spec := Portmapd()
	spec.Argv(t)
	n.server = NewNamespace(t)
	n.client = NewNamespace(t)
	vethPair(t, n.client, n.server)
	n.must(n.client, "ip", "addr", "add", probeClient+"/24", "dev", "veth0")
	n.must(n.client, "ip", "link", "set", "veth0", "up")
	n.must(n.server, "ip", "addr", "add", probeServer+"/24", "dev", "veth1")
	n.must(n.server, "ip", "link", "set", "veth1", "up")
	n.daemon = StartDaemonIn(t, n.server, spec)
	n.startService()
	out := n.daemon.Client(
		"v2 udp set 400300 1 17 4600", "v2 udp set 400300 1 6 4600",
		"v2 udp set 400300 2 17 4600", "v2 udp set 400300 2 6 4600",
		"v2 udp set 400301 1 17 4600", "v2 udp set 400301 1 6 4600",
		"v2 udp set 400302 1 17 4600", "v2 udp set 400302 1 6 4600")
	if strings.Count(out.Stdout, ": true") != 8 {
		t.Fatalf("e2e: registering the service: %s\n%s%s", out.Status(), out.Stdout, out.Stderr)
	}
	return n
}

// vethPair joins two namespaces by a veth pair, veth0 in a and veth1 in
// b, both down and without addresses. The pair is made in a's network
// namespace with its peer moved to b's; both ends go away with their
// namespaces.
func vethPair(t testing.TB, a, b *Namespace) {
	t.Helper()
	if err := netns.Veth(a.Namespace, b.Namespace, "veth0", "veth1"); err != nil {
		t.Fatalf("e2e: %v", err)
	}
}

func (n *probeNet) must(ns *Namespace, argv ...string) {
	n.t.Helper()
	if out := ns.Run(0, argv...); out.Exit != 0 || out.Err != "" {
		n.t.Fatalf("e2e: %s: %s\n%s%s", strings.Join(argv, " "), out.Status(), out.Stdout, out.Stderr)
	}
}

func (n *probeNet) startService() {
	n.t.Helper()
	self, err := os.Executable()
	if err != nil {
		n.t.Fatal(err)
	}
	n.service = n.server.Start("service", "env", fmt.Sprintf("%s=%s:%d", probeSvcEnv, probeServer, probeSvcPort), self)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(n.service.Stdout(), "serving") {
		if n.service.Exited() || time.Now().After(deadline) {
			n.t.Fatalf("e2e: the service did not start (%s): %s", n.service.ExitStatus(), n.service.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firewall replaces the server's input rules by rules (nft syntax, one
// per element); none removes them.
func (n *probeNet) firewall(rules ...string) {
	n.t.Helper()
	n.server.Run(0, "nft", "delete", "table", "inet", "probe")
	if len(rules) == 0 {
		return
	}
	n.must(n.server, "nft", "add", "table", "inet", "probe")
	n.must(n.server, "nft", "add", "chain", "inet", "probe", "input", "{ type filter hook input priority 0; }")
	for _, r := range rules {
		n.must(n.server, append([]string{"nft", "add", "rule", "inet", "probe", "input"}, strings.Fields(r)...)...)
	}
}

// probe runs portmapd probe in the client's namespace.
func (n *probeNet) probe(args ...string) Output {
	n.t.Helper()
	return n.client.Run(30*time.Second, append([]string{n.bin, "probe", "--timeout", "1s"}, args...)...)
}

// expect checks the exit status and that every pattern matches a line.
func expectProbe(t *testing.T, out Output, exit int, patterns ...string) {
	t.Helper()
	if out.Exit != exit || out.Err != "" {
		t.Errorf("exit %s, want %d", out.Status(), exit)
	}
	for _, p := range patterns {
		if !regexp.MustCompile("(?m)" + p).MatchString(out.Stdout) {
			t.Errorf("no line matches %q", p)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s%s", out.Stdout, out.Stderr)
	}
}

// TestProbeTopologies breaks the path to a service in each way the probe
// tells apart, on a real network of two namespaces, and checks its lines,
// verdict and exit status.
func TestProbeTopologies(t *testing.T) {
	t.Parallel()
	n := newProbeNet(t)
	const ms = `\[[0-9.]+(ms|s)\]$`

	t.Run("healthy", func(t *testing.T) {
		expectProbe(t, n.probe(probeServer, "400300", "1"), 0,
			`^ok   resolve           10\.99\.0\.1: an address `+ms,
			`^ok   portmapper   tcp  10\.99\.0\.1:111: answers `+ms,
			`^ok   registration tcp  program 400300 version 1: at 10\.99\.0\.1\.17\.248 \(port 4600\) `+ms,
			`^ok   port         tcp  10\.99\.0\.1:4600: accepts connections `+ms,
			`^ok   call         tcp  NULL of program 400300 version 1: answers `+ms,
			`^ok   portmapper   udp  10\.99\.0\.1:111: answers `+ms,
			`^ok   port         udp  10\.99\.0\.1:4600: answers `+ms,
			`^ok   call         udp  NULL of program 400300 version 1: answers `+ms,
			`^verdict: ok \(exit 0\): program 400300 answers on 10\.99\.0\.1 over tcp and udp$`)
	})
	t.Run("the portmapper alone", func(t *testing.T) {
		expectProbe(t, n.probe(probeServer), 0, `^verdict: ok \(exit 0\): the portmapper of 10\.99\.0\.1 answers over tcp and udp$`)
	})
	t.Run("a name that does not resolve", func(t *testing.T) {
		expectProbe(t, n.probe("server.invalid", "400300"), 3,
			`^FAIL resolve           server\.invalid: does not resolve `+ms,
			`^verdict: unresolved \(exit 3\)`, `^remedy: check the name`)
	})
	t.Run("a name from the hosts file", func(t *testing.T) {
		hosts := filepath.Join(t.TempDir(), "hosts")
		if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"+probeServer+" server.test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		n.must(n.client, "mount", "--bind", hosts, "/etc/hosts")
		defer n.client.Run(0, "umount", "/etc/hosts")
		expectProbe(t, n.probe("server.test", "nlockmgr"), 6,
			`^ok   resolve           server\.test: 10\.99\.0\.1 `+ms,
			`^FAIL registration tcp  program 100021: not registered `+ms,
			`^verdict: not-registered \(exit 6\): program 100021 is not registered with the portmapper of server\.test over tcp$`)
	})
	t.Run("a program not registered", func(t *testing.T) {
		expectProbe(t, n.probe(probeServer, "400399", "1"), 6,
			`^FAIL registration tcp  program 400399 version 1: not registered `+ms,
			`^remedy: start the service on 10\.99\.0\.1`)
	})
	t.Run("a version the service lacks", func(t *testing.T) {
		expectProbe(t, n.probe(probeServer, "400300", "5", "--json"), 9)
		var rep struct {
			Steps []struct {
				Name, Transport, Status, Detail string
				Ms                              float64
			}
			Verdict struct {
				Code int
				Name string
			}
		}
		out := n.probe(probeServer, "400300", "5", "--json")
		if err := json.Unmarshal([]byte(out.Stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out.Stdout)
		}
		last := rep.Steps[len(rep.Steps)-1]
		if rep.Verdict.Code != 9 || rep.Verdict.Name != "version-mismatch" || last.Name != "call" ||
			last.Detail != "version mismatch: the service has versions 1 to 2" {
			t.Errorf("%+v", rep)
		}
		reg := rep.Steps[2]
		if reg.Name != "registration" || reg.Detail != "at 10.99.0.1.17.248 (port 4600); but version 5 is not registered (versions 1, 2 are): this is another version's address" {
			t.Errorf("registration step %+v", reg)
		}
	})
	t.Run("an auth error", func(t *testing.T) {
		expectProbe(t, n.probe(probeServer, "400301"), 10,
			`^FAIL call         tcp  NULL of program 400301: authentication error: credential too weak `+ms,
			`^verdict: auth-error \(exit 10\)`)
	})
	t.Run("a service that hangs", func(t *testing.T) {
		expectProbe(t, n.probe(probeServer, "400302", "1", "--proto", "tcp"), 11,
			`^FAIL call         tcp  NULL of program 400302 version 1: connected, but no answer within 1s \[1\.[0-9]+s\]$`,
			`^verdict: service-timeout \(exit 11\)`)
	})
	t.Run("a firewall dropping the service's port", func(t *testing.T) {
		n.firewall("tcp dport 4600 drop", "udp dport 4600 drop")
		defer n.firewall()
		expectProbe(t, n.probe(probeServer, "400300", "1"), 8,
			`^ok   portmapper   tcp  10\.99\.0\.1:111: answers `+ms,
			`^FAIL port         tcp  10\.99\.0\.1:4600: no answer within 1s \(dropped: filtered, or nothing there answers\) \[1\.[0-9]+s\]$`,
			`^FAIL port         udp  10\.99\.0\.1:4600: no answer within 1s`,
			`^verdict: service-filtered \(exit 8\): program 400300 is registered at tcp port 4600, which gets no answer`,
			`^remedy: let tcp/4600 through the firewall.* run portmapd serve --nft-set 'inet filter rpc_services'$`)
	})
	t.Run("a firewall dropping port 111", func(t *testing.T) {
		n.firewall("tcp dport 111 drop", "udp dport 111 drop")
		defer n.firewall()
		expectProbe(t, n.probe(probeServer, "400300", "1"), 5,
			`^FAIL portmapper   tcp  10\.99\.0\.1:111: no answer within 1s \(dropped: filtered, or nothing there answers\) \[1\.[0-9]+s\]$`,
			`^FAIL portmapper   udp  10\.99\.0\.1:111: no answer within 1s`,
			`^verdict: portmapper-filtered \(exit 5\): tcp to port 111 of 10\.99\.0\.1 gets no answer`,
			`^remedy: let tcp/111 through the firewalls`)
	})
	t.Run("a firewall dropping port 111 over UDP only", func(t *testing.T) {
		n.firewall("udp dport 111 drop")
		defer n.firewall()
		expectProbe(t, n.probe(probeServer, "400300", "1"), 5,
			`^ok   call         tcp  NULL of program 400300 version 1: answers `+ms,
			`^FAIL portmapper   udp  10\.99\.0\.1:111: no answer within 1s`,
			`^verdict: portmapper-filtered \(exit 5\): udp to port 111`)
		expectProbe(t, n.probe(probeServer, "400300", "1", "--proto", "tcp"), 0)
	})
	t.Run("a firewall rejecting port 111", func(t *testing.T) {
		n.firewall("tcp dport 111 reject with tcp reset", "udp dport 111 reject")
		defer n.firewall()
		expectProbe(t, n.probe(probeServer, "400300", "1"), 4,
			`^FAIL portmapper   tcp  10\.99\.0\.1:111: refused `+ms,
			`^FAIL portmapper   udp  10\.99\.0\.1:111: refused `+ms,
			`^verdict: portmapper-refused \(exit 4\)`)
	})
	t.Run("a host that is unreachable", func(t *testing.T) {
		n.firewall("ip saddr " + probeClient + " reject with icmp type host-unreachable")
		defer n.firewall()
		expectProbe(t, n.probe(probeServer), 5,
			`^FAIL portmapper   tcp  10\.99\.0\.1:111: unreachable \(no route to host\) `+ms,
			`^verdict: portmapper-filtered \(exit 5\)`)
	})
	t.Run("the service is down", func(t *testing.T) {
		n.service.Stop()
		defer n.startService()
		expectProbe(t, n.probe(probeServer, "400300", "2"), 7,
			`^ok   registration tcp  program 400300 version 2: at 10\.99\.0\.1\.17\.248 \(port 4600\) `+ms,
			`^FAIL port         tcp  10\.99\.0\.1:4600: refused `+ms,
			`^FAIL port         udp  10\.99\.0\.1:4600: refused `+ms,
			`^verdict: service-refused \(exit 7\): program 400300 is registered at tcp port 4600, but nothing listens there`,
			`^remedy: restart the service`)
	})
	t.Run("the portmapper is down", func(t *testing.T) {
		n.daemon.Stop()
		expectProbe(t, n.probe(probeServer, "400300"), 4,
			`^FAIL portmapper   tcp  10\.99\.0\.1:111: refused `+ms,
			`^FAIL portmapper   udp  10\.99\.0\.1:111: refused `+ms,
			`^verdict: portmapper-refused \(exit 4\): nothing listens on tcp port 111 of 10\.99\.0\.1`)
	})
}
