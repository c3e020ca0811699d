package e2e

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/nftset"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
)

// serve --nft-set is tested on two hosts made of namespaces joined by a
// veth pair: host A (10.98.0.1, fd98::1) drops every input but port 111
// and the elements of @rpc_services, and runs portmapd with --nft-set
// and real services (rpc.statd, rpc.mountd); host B (10.98.0.2, fd98::2)
// reaches them with rpcinfo and showmount.

const (
	nftHostA   = "10.98.0.1"
	nftHostB   = "10.98.0.2"
	nftHostA6  = "fd98::1"
	nftHostB6  = "fd98::2"
	nftSetSpec = "inet filter rpc_services"
)

// nftSetup declares the set; nftFirewall adds a drop-by-default input
// chain that admits port 111, the set's elements, and ICMPv6 (IPv6 finds
// its neighbours with it). No rule admits established flows, so that a
// port taken out of the set is closed to every new packet at once.
var (
	nftSetup = []string{
		"add table inet filter",
		"add set inet filter rpc_services { type inet_proto . inet_service; }",
	}
	nftFirewall = []string{
		"add chain inet filter input { type filter hook input priority 0; policy drop; }",
		"add rule inet filter input iif lo accept",
		"add rule inet filter input meta l4proto ipv6-icmp accept",
		"add rule inet filter input meta l4proto { tcp, udp } th dport 111 accept",
		"add rule inet filter input meta l4proto . th dport @rpc_services accept",
	}
)

// knockEnv makes the test binary, started with it, a client that calls
// NULL of "PROG VERS" at "NETWORK HOST:PORT" directly, without asking the
// portmapper, and prints how the port behaved: "answered", "refused" (a
// reset or port unreachable: nothing listens, but the packet got there)
// or "no answer" (dropped).
const knockEnv = "PORTMAPD_E2E_KNOCK"

func init() {
	if arg := os.Getenv(knockEnv); arg != "" {
		fmt.Println(knock(arg))
		os.Exit(0)
	}
}

func knock(arg string) string {
	var network, addr string
	var prog, vers uint32
	if _, err := fmt.Sscan(arg, &network, &addr, &prog, &vers); err != nil {
		return "usage: " + err.Error()
	}
	const wait = time.Second
	c, err := net.DialTimeout(network, addr, wait)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "refused"
		}
		return "no answer"
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	call := NewCall(0x6b6e6f63, prog, vers, 0).Bytes()
	if strings.HasPrefix(network, "udp") {
		c.Write(call)
		_, err = c.Read(make([]byte, 512))
	} else if err = rpc.WriteRecord(c, call); err == nil {
		_, err = rpc.NewRecordReader(c, 1<<16).Next()
	}
	switch {
	case err == nil:
		return "answered"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	return "no answer"
}

type nftNet struct {
	t    *testing.T
	a, b *Namespace
	pm   *Daemon
}

func requireNFT(t *testing.T) {
	t.Helper()
	RequireNamespaces(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("e2e: nft not found (apt-get install nftables)")
	}
}

// newNFTNet makes host A with the set (and, with firewall, the chain),
// and host B if two.
func newNFTNet(t *testing.T, firewall, two bool) *nftNet {
	t.Helper()
	requireNFT(t)
	PortmapdPath(t)
	n := &nftNet{t: t, a: NewNamespace(t)}
	rules := nftSetup
	if firewall {
		rules = slices.Concat(nftSetup, nftFirewall)
	}
	for _, r := range rules {
		n.must(n.a, append([]string{"nft"}, strings.Fields(r)...)...)
	}
	if !two {
		return n
	}
	n.b = NewNamespace(t)
	vethPair(t, n.b, n.a)
	n.must(n.b, "ip", "addr", "add", nftHostB+"/24", "dev", "veth0")
	n.must(n.b, "ip", "addr", "add", nftHostB6+"/64", "dev", "veth0", "nodad")
	n.must(n.b, "ip", "link", "set", "veth0", "up")
	n.must(n.a, "ip", "addr", "add", nftHostA+"/24", "dev", "veth1")
	n.must(n.a, "ip", "addr", "add", nftHostA6+"/64", "dev", "veth1", "nodad")
	n.must(n.a, "ip", "link", "set", "veth1", "up")
	return n
}

func (n *nftNet) must(ns *Namespace, argv ...string) Output {
	n.t.Helper()
	out := ns.Run(0, argv...)
	if out.Exit != 0 || out.Err != "" {
		n.t.Fatalf("e2e: %s: %s\n%s%s", strings.Join(argv, " "), out.Status(), out.Stdout, out.Stderr)
	}
	return out
}

var nftElemRE = regexp.MustCompile(`\b(tcp|udp) \. ([0-9]+)\b`)

// set reads the set's elements with nft, as "tcp . 4000" strings in
// order.
func (n *nftNet) set() []string {
	n.t.Helper()
	out := n.must(n.a, "nft", "list", "set", "inet", "filter", "rpc_services")
	var got []string
	for _, m := range nftElemRE.FindAllStringSubmatch(out.Stdout, -1) {
		got = append(got, m[1]+" . "+m[2])
	}
	slices.Sort(got)
	return got
}

// waitSet waits, a bounded while, for the set to hold exactly want.
func (n *nftNet) waitSet(why string, want ...string) {
	n.t.Helper()
	slices.Sort(want)
	var got []string
	for range 100 {
		if got = n.set(); slices.Equal(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("%s: the set holds %q, want %q\nportmapd:\n%s", why, got, want, n.pm.Stderr())
}

// knock calls the service at A's port directly from B (knockEnv).
func (n *nftNet) knock(network, addr, prog, vers string, want string) {
	n.t.Helper()
	self, err := os.Executable()
	if err != nil {
		n.t.Fatal(err)
	}
	var out Output
	var got string
	// An answer that comes late on a loaded machine reads as none: an
	// answer expected is asked for up to three times.
	for range 3 {
		out = n.b.Run(10*time.Second, "env", knockEnv+"="+network+" "+addr+" "+prog+" "+vers, self)
		if got = strings.TrimSpace(out.Stdout); got == want || want != "answered" {
			break
		}
	}
	if got != want {
		n.t.Errorf("from B, NULL of %s %s at %s %s: %q, want %q (%s)\n%s", prog, vers, network, addr, got, want, out.Status(), out.Stderr)
	}
}

// reaches runs a command on B and reports whether it succeeded within
// a few seconds; a dropped SYN or datagram makes it hang until killed.
func (n *nftNet) reaches(argv ...string) (bool, Output) {
	out := n.b.Run(4*time.Second, argv...)
	return out.Exit == 0 && out.Err == "", out
}

func (n *nftNet) expectReach(want bool, argv ...string) {
	n.t.Helper()
	if got, out := n.reaches(argv...); got != want {
		n.t.Errorf("from B, %s: reached=%v, want %v (%s)\n%s%s", strings.Join(argv, " "), got, want, out.Status(), out.Stdout, out.Stderr)
	}
}

// startService starts a service on A and waits until rpcinfo on A shows
// prog registered.
func (n *nftNet) startService(name, prog string, argv ...string) *Proc {
	n.t.Helper()
	p := n.a.Start(name, argv...)
	for range 200 {
		if out := n.a.Run(0, "rpcinfo", "-p"); strings.Contains(out.Stdout, " "+prog+" ") {
			return p
		}
		if p.Exited() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("e2e: %s did not register (%s)\n%s%s", name, p.ExitStatus(), p.Stdout(), p.Stderr())
	return nil
}

// TestNFTSetFollowsRealServices: B reaches rpc.statd and rpc.mountd on A
// through A's drop-by-default firewall, over IPv4 and IPv6, exactly while
// they are registered; a restart with warm start keeps the set.
func TestNFTSetFollowsRealServices(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/usr/sbin/rpc.statd", "/usr/sbin/rpc.mountd", "/usr/sbin/exportfs", "/usr/sbin/showmount"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("e2e: %s not installed (apt-get install nfs-common nfs-kernel-server)", p)
		}
	}
	n := newNFTNet(t, true, true)
	spec := Portmapd("--nft-set", nftSetSpec, "--warm-start", "--state-dir", "/run/pmstate")
	n.pm = StartDaemonIn(t, n.a, spec)
	n.waitSet("the portmapper's own port is never added")
	n.expectReach(true, "rpcinfo", "-p", nftHostA)

	// statd as statd_test.go runs it, with its state under /run.
	n.must(n.a, "sh", "-c", statdStateDir)
	statd := n.startService("rpc.statd", "100024", statdArgv...)
	defer statd.Stop()
	n.waitSet("statd registered", "tcp . 4000", "udp . 4000")
	n.expectReach(true, "rpcinfo", "-t", nftHostA, "100024", "1")
	n.expectReach(true, "rpcinfo", "-u", nftHostA, "100024", "1")
	n.expectReach(true, "rpcinfo", "-T", "tcp6", nftHostA6, "100024", "1")
	n.expectReach(true, "rpcinfo", "-T", "udp6", nftHostA6, "100024", "1")

	// probe from B finds statd through the firewall; on A, with the
	// port dropped on the way out, it names the set and says the port
	// is in it, so the drop is elsewhere.
	bin := PortmapdPath(t)
	if out := n.b.Run(0, bin, "probe", "--timeout", "1s", nftHostA, "100024", "1"); out.Exit != 0 {
		t.Errorf("probe from B: %s\n%s", out.Status(), out.Stdout)
	}
	n.must(n.a, "nft", "add", "chain", "inet", "filter", "output", "{ type filter hook output priority 0; }")
	n.must(n.a, "nft", "add", "rule", "inet", "filter", "output", "meta", "l4proto", "{ tcp, udp }", "th", "dport", "4000", "drop")
	out := n.a.Run(0, "env", "PORTMAPD_NFT_SET="+nftSetSpec, bin, "probe", "--timeout", "1s", nftHostA, "100024", "1")
	if out.Exit != 8 || !strings.Contains(out.Stdout, "remedy: tcp . 4000 is in nftables set inet filter rpc_services, which portmapd keeps (--nft-set), so something else drops it") {
		t.Errorf("probe on A with the port dropped: %s\n%s", out.Status(), out.Stdout)
	}
	// A set that lacks the port (here another one, empty) is named as
	// lacking it.
	n.must(n.a, "nft", "add", "set", "inet", "filter", "other", "{ type inet_proto . inet_service; }")
	out = n.a.Run(0, "env", "PORTMAPD_NFT_SET=inet filter other", bin, "probe", "--timeout", "1s", "--proto", "tcp", nftHostA, "100024", "1")
	if out.Exit != 8 || !strings.Contains(out.Stdout, "remedy: tcp . 4000 is not in nftables set inet filter other, which portmapd keeps (--nft-set)") {
		t.Errorf("probe on A with the port dropped and not in the set: %s\n%s", out.Status(), out.Stdout)
	}
	n.must(n.a, "nft", "delete", "chain", "inet", "filter", "output")

	// mountd with an export, without nfsd: MOUNT's EXPORT procedure is
	// answered from /etc/exports (a copy of A's own, on its /run).
	n.must(n.a, "sh", "-c", "mount -t tmpfs tmpfs /var/lib/nfs && mkdir -p /run/export && "+
		"echo '/run/export *(ro,no_subtree_check)' > /run/exports && touch /etc/exports && "+
		"mount --bind /run/exports /etc/exports && exportfs -ra")
	mountd := n.startService("rpc.mountd", "100005", "/usr/sbin/rpc.mountd", "-F", "-p", "4002")
	defer mountd.Stop()
	n.waitSet("mountd registered", "tcp . 4000", "udp . 4000", "tcp . 4002", "udp . 4002")
	if ok, out := n.reaches("showmount", "-e", nftHostA); !ok || !strings.Contains(out.Stdout, "/run/export *") {
		t.Errorf("from B, showmount -e %s: %s\n%s%s", nftHostA, out.Status(), out.Stdout, out.Stderr)
	}
	n.expectReach(true, "rpcinfo", "-t", nftHostA, "100005", "3")
	n.expectReach(true, "rpcinfo", "-T", "udp6", nftHostA6, "100005", "3")

	// A restart with warm start keeps the set: at the stop, and at the
	// start from the saved table, before anything registers again.
	n.pm.Stop()
	n.waitSet("after a stop with warm start", "tcp . 4000", "udp . 4000", "tcp . 4002", "udp . 4002")
	n.pm = StartDaemonIn(t, n.a, spec)
	n.waitSet("after the restart", "tcp . 4000", "udp . 4000", "tcp . 4002", "udp . 4002")
	n.expectReach(true, "rpcinfo", "-u", nftHostA, "100005", "3")

	// UNSET closes the port while statd still listens: B's calls to it
	// are dropped, though the same calls went through before.
	statdAt := map[string]string{"tcp": nftHostA + ":4000", "udp": nftHostA + ":4000",
		"tcp6": "[" + nftHostA6 + "]:4000", "udp6": "[" + nftHostA6 + "]:4000"}
	for _, network := range []string{"tcp", "udp", "tcp6", "udp6"} {
		n.knock(network, statdAt[network], "100024", "1", "answered")
	}
	n.must(n.a, "rpcinfo", "-d", "100024", "1")
	n.waitSet("statd unset", "tcp . 4002", "udp . 4002")
	for _, network := range []string{"tcp", "udp", "tcp6", "udp6"} {
		n.knock(network, statdAt[network], "100024", "1", "no answer")
	}
	if statd.Exited() {
		t.Fatalf("statd exited: %s", statd.ExitStatus())
	}

	// A service stopping unregisters, and its port leaves the set: the
	// port is dropped, not refused (which it would be, were it still
	// open with nothing behind it).
	n.knock("tcp", nftHostA+":4002", "100005", "3", "answered")
	if err := mountd.Signal(syscall.SIGTERM); err != nil || !mountd.Wait(5*time.Second) {
		t.Fatalf("stopping mountd: %v", err)
	}
	n.waitSet("mountd stopped")
	n.expectReach(false, "showmount", "-e", nftHostA)
	n.knock("tcp", nftHostA+":4002", "100005", "3", "no answer")
	n.knock("udp6", "["+nftHostA6+"]:4002", "100005", "3", "no answer")
	n.expectReach(true, "rpcinfo", "-p", nftHostA)
	if !n.pm.Alive() {
		t.Fatalf("portmapd exited:\n%s", n.pm.Stderr())
	}
}

// TestNFTSetRefcountsAndEmptiesAtStop: registrations sharing a port share
// its element, loopback-only ones add none, nor does one --port-range
// refuses, an element the table does not have is dropped at start, and a
// stop without warm start empties the set.
func TestNFTSetRefcountsAndEmptiesAtStop(t *testing.T) {
	t.Parallel()
	n := newNFTNet(t, false, false)
	ClientPath(t)
	n.must(n.a, "nft", "add", "element", "inet", "filter", "rpc_services", "{ tcp . 9999, udp . 111 }")
	// The set comes from the environment, as from a unit's or the options
	// file's PORTMAPD_NFT_SET.
	spec := Portmapd()
	spec.Argv = func(t testing.TB) []string {
		return []string{"env", "PORTMAPD_NFT_SET=" + nftSetSpec, PortmapdPath(t), "serve",
			"--port-range", "100-5010", "--port-range-refuse"}
	}
	n.pm = StartDaemonIn(t, n.a, spec)
	n.waitSet("at start the set is the table")
	out := n.pm.Client(
		"v3 local set 400600 1 tcp 0.0.0.0.19.136", // 5000
		"v3 local set 400601 1 tcp6 ::.19.136",
		"v3 local set 400602 1 udp 127.0.0.1.19.137", // loopback only
		"v3 local set 400603 1 udp6 ::1.19.137",
		"v3 local set 400604 1 udp 10.1.2.3.19.138",
		"v2 udp set 400605 1 17 111",               // the portmapper's own port
		"v3 local set 400607 1 tcp 0.0.0.0.23.112") // 6000: --port-range refuses it
	if strings.Count(out.Stdout, ": true") != 6 || !strings.Contains(out.Stdout, "400607 1 tcp 0.0.0.0.23.112: false") {
		t.Fatalf("registering: %s\n%s%s", out.Status(), out.Stdout, out.Stderr)
	}
	n.waitSet("registered", "tcp . 5000", "udp . 5002")
	n.pm.Client("v3 local unset 400600 1 tcp")
	n.waitSet("one of two registrations on the port gone", "tcp . 5000", "udp . 5002")
	n.pm.Client("v3 local unset 400601 1 tcp6", "v3 local unset 400604 1 udp")
	n.waitSet("the last registration on each port gone")
	n.pm.Client("v3 local set 400606 2 tcp 0.0.0.0.19.140")
	n.waitSet("registered again", "tcp . 5004")
	n.pm.Stop()
	if got := n.set(); len(got) != 0 {
		t.Errorf("after a stop without warm start the set holds %q", got)
	}
}

// TestNFTSetErrorsAtStart: a missing set, a set of another type, and an
// argument that names no set are errors at start that show the nft
// commands declaring the set; nothing is served.
func TestNFTSetErrorsAtStart(t *testing.T) {
	t.Parallel()
	requireNFT(t)
	bin := PortmapdPath(t)
	ns := NewNamespace(t)
	start := func() Output {
		return ns.Run(10*time.Second, bin, "serve", "--nft-set", nftSetSpec, "--socket=", "--lock-file=")
	}
	declare := "nft add set inet filter rpc_services '{ type inet_proto . inet_service; }'"
	for _, c := range []struct {
		name  string
		setup []string
		want  string
	}{
		{"no table", nil, "the set (or its table) does not exist"},
		{"no set", []string{"add table inet filter"}, "the set (or its table) does not exist"},
		{"another type", []string{"add set inet filter rpc_services { type ipv4_addr; }"},
			"its type is ipv4_addr, not inet_proto . inet_service"},
		{"interval", []string{"delete set inet filter rpc_services",
			"add set inet filter rpc_services { type inet_proto . inet_service; flags interval; }"}, "it has flags interval"},
	} {
		for _, cmd := range c.setup {
			if out := ns.Run(0, append([]string{"nft"}, strings.Fields(cmd)...)...); out.Exit != 0 {
				t.Fatalf("%s: nft %s: %s", c.name, cmd, out.Stderr)
			}
		}
		out := start()
		if out.Exit == 0 || out.Err != "" || !strings.Contains(out.Stderr, c.want) || !strings.Contains(out.Stderr, declare) {
			t.Errorf("%s: %s, want an error saying %q and %q:\n%s%s", c.name, out.Status(), c.want, declare, out.Stdout, out.Stderr)
		}
	}
	out := ns.Run(10*time.Second, bin, "serve", "--nft-set", "filter rpc_services", "--socket=", "--lock-file=")
	if out.Exit == 0 || !strings.Contains(out.Stderr, "want FAMILY TABLE SET") {
		t.Errorf("a spec of two words: %s\n%s", out.Status(), out.Stderr)
	}
	// A usable set, but a daemon without CAP_NET_ADMIN (as under a unit
	// whose bounding set lacks it).
	for _, cmd := range []string{"delete set inet filter rpc_services", "add set inet filter rpc_services { type inet_proto . inet_service; }"} {
		ns.Run(0, append([]string{"nft"}, strings.Fields(cmd)...)...)
	}
	if _, err := exec.LookPath("setpriv"); err == nil {
		out := ns.Run(10*time.Second, "setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin",
			bin, "serve", "--nft-set", nftSetSpec, "--socket=", "--lock-file=")
		if out.Exit == 0 || !strings.Contains(out.Stderr, "nftables needs root or CAP_NET_ADMIN") {
			t.Errorf("without CAP_NET_ADMIN: %s\n%s", out.Status(), out.Stderr)
		}
	}
}

// TestNFTSetChurnAndNetlinkErrors: a SET/UNSET loop costs a bounded
// number of netlink batches (at most one per pause) and leaves the set
// equal to the table; a set that disappears while serving makes netlink
// errors that are counted and retried, the daemon serving throughout,
// until the set is back and equal to the table again; a set emptied by
// another writer is whole again after the next change.
func TestNFTSetChurnAndNetlinkErrors(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("e2e: curl not found (apt-get install curl)")
	}
	n := newNFTNet(t, false, false)
	ClientPath(t)
	n.pm = StartDaemonIn(t, n.a, Portmapd("--nft-set", nftSetSpec, "--metrics", "127.0.0.1:9111"))
	metric := func(name string) float64 {
		t.Helper()
		out := n.must(n.a, "curl", "-sS", "http://127.0.0.1:9111/metrics")
		m := regexp.MustCompile(`(?m)^` + name + ` ([0-9.e+]+)$`).FindStringSubmatch(out.Stdout)
		if m == nil {
			t.Fatalf("no %s in the metrics:\n%s", name, out.Stdout)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}

	const rounds = 200
	var ops []string
	kept := map[string]bool{}
	for i := range rounds {
		port := 6000 + i%16
		addr := fmt.Sprintf("0.0.0.0.%d.%d", port>>8, port&0xff)
		ops = append(ops, fmt.Sprintf("v3 local set 400700 %d tcp %s", i, addr),
			fmt.Sprintf("v3 local set 400700 %d udp6 ::.%d.%d", i, port>>8, port&0xff))
		if i%10 != 0 { // one round in ten stays registered
			ops = append(ops, fmt.Sprintf("v3 local unset 400700 %d -", i))
		} else {
			kept[fmt.Sprintf("tcp . %d", port)], kept[fmt.Sprintf("udp . %d", port)] = true, true
		}
	}
	batches0 := metric("portmapd_nft_batches_total")
	start := time.Now()
	if out := n.pm.Client(ops...); strings.Count(out.Stdout, ": true") != len(ops) {
		t.Fatalf("churn: %s\n%s", out.Status(), out.Stderr)
	}
	want := n.tableElems()
	if !slices.Equal(want, slices.Sorted(maps.Keys(kept))) {
		t.Fatalf("the table opens %q, want %q", want, slices.Sorted(maps.Keys(kept)))
	}
	n.waitSet("quiet after the churn", want...)
	elapsed := time.Since(start)
	batches := metric("portmapd_nft_batches_total") - batches0
	t.Logf("%d registry changes in %v: %v netlink batches", len(ops), elapsed.Round(time.Millisecond), batches)
	if limit := 1 + float64(elapsed/nftset.Pause); batches > limit || batches >= rounds {
		t.Errorf("%v batches for %d rounds in %v; at most one per %v (%v) and fewer than the rounds", batches, rounds, elapsed, nftset.Pause, limit)
	}
	if got := metric("portmapd_nft_set_elements"); got != float64(len(want)) {
		t.Errorf("portmapd_nft_set_elements = %v, want %d", got, len(want))
	}

	// The set goes away under the daemon: the next change fails, is
	// counted and retried; the daemon serves on.
	n.must(n.a, "nft", "delete", "set", "inet", "filter", "rpc_services")
	n.pm.Client("v3 local unset 400700 0 -", "v3 local set 400701 1 tcp 0.0.0.0.31.64") // 8000
	for i := 0; metric("portmapd_nft_errors_total") == 0; i++ {
		if i == 100 {
			t.Fatalf("no netlink error counted:\n%s", n.pm.Stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := n.pm.Client("v3 udp null"); out.Stdout != "v3 udp null: ok\n" {
		t.Errorf("the daemon does not answer while the set is missing: %s", out.Stdout)
	}
	if !strings.Contains(n.pm.Stderr(), "nftables set not updated; retrying") {
		t.Errorf("the failure is not logged:\n%s", n.pm.Stderr())
	}
	n.must(n.a, "nft", "add", "set", "inet", "filter", "rpc_services", "{ type inet_proto . inet_service; }")
	n.waitSet("the set back", n.tableElems()...)

	// Another writer empties the set (a firewall reload): the next batch
	// starts from what the kernel has and puts everything back.
	n.must(n.a, "nft", "flush", "set", "inet", "filter", "rpc_services")
	n.pm.Client("v3 local set 400702 1 udp 0.0.0.0.31.65")
	n.waitSet("after a flush by hand and one change", n.tableElems()...)
	if !n.pm.Alive() {
		t.Fatalf("portmapd exited:\n%s", n.pm.Stderr())
	}
}

// tableElems is what the table on A opens, from rpcinfo's dump.
func (n *nftNet) tableElems() []string {
	n.t.Helper()
	out := n.must(n.a, "rpcinfo")
	set := map[string]bool{}
	for _, line := range strings.Split(out.Stdout, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		m := pmap.Mapping{Netid: f[2], Addr: f[3]}
		if e, ok := nftset.ElemOf(&m); ok && e.Port != 111 {
			set[e.String()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// TestNFTSetPruneDead: a service that dies without unsetting leaves the
// set when --prune-dead drops its registrations, and not before.
func TestNFTSetPruneDead(t *testing.T) {
	t.Parallel()
	n := newNFTNet(t, false, false)
	ClientPath(t)
	n.pm = StartDaemonIn(t, n.a, Portmapd("--nft-set", nftSetSpec, "--prune-dead", "200ms", "--prune-failures", "1"))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	svc := n.a.Start("service", "env", fmt.Sprintf("%s=127.0.0.1:%d", probeSvcEnv, probeSvcPort), self)
	for i := 0; !strings.Contains(svc.Stdout(), "serving"); i++ {
		if i == 200 || svc.Exited() {
			t.Fatalf("the service did not start (%s): %s", svc.ExitStatus(), svc.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := n.pm.Client("v2 udp set 400300 1 17 4600", "v2 udp set 400300 1 6 4600"); strings.Count(out.Stdout, ": true") != 2 {
		t.Fatalf("registering: %s\n%s", out.Status(), out.Stdout)
	}
	n.waitSet("registered", "tcp . 4600", "udp . 4600")
	// Rounds of probes that the service answers change nothing.
	time.Sleep(600 * time.Millisecond)
	n.waitSet("the service alive", "tcp . 4600", "udp . 4600")
	svc.Stop()
	n.waitSet("the service dead and pruned")
	if out := n.must(n.a, "rpcinfo", "-p"); strings.Contains(out.Stdout, "400300") {
		t.Errorf("still registered:\n%s", out.Stdout)
	}
}
