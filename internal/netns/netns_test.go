package netns

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

func newNamespace(t *testing.T, opts Options) *Namespace {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ns, err := New(opts)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		t.Skipf("cannot create namespaces here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

func TestSetupRefusesOutsideAPrivateNamespace(t *testing.T) {
	// This test process is not PID 1: the guard must refuse before it
	// touches the network or mounts anything.
	err := setup("")
	if err == nil || !strings.Contains(err.Error(), "PID 1") {
		t.Fatalf("setup outside a namespace = %v; want a refusal", err)
	}
}

func TestSysctlsStayUnderProcSys(t *testing.T) {
	for _, bad := range []string{"../../etc/passwd=x\n", "/etc/passwd=x\n", "net/ipv4/tcp_tw_reuse\n"} {
		if _, err := decodeSysctls(bad); err == nil {
			t.Errorf("decodeSysctls(%q) accepted it", bad)
		}
	}
	want := map[string]string{"net/ipv4/ip_local_port_range": "1024 65535", "net/ipv4/tcp_tw_reuse": "1"}
	got, err := decodeSysctls(encodeSysctls(want))
	if err != nil || len(got) != len(want) || got["net/ipv4/ip_local_port_range"] != "1024 65535" || got["net/ipv4/tcp_tw_reuse"] != "1" {
		t.Errorf("round trip: %v, %v; want %v", got, err, want)
	}
}

// TestANamespaceIsPrivate checks what both the e2e tests and the load
// generator rely on: inside, only loopback (up), the namespace's own /proc
// and /run, its sysctls, and a process tree that Close takes down.
func TestANamespaceIsPrivate(t *testing.T) {
	ns := newNamespace(t, Options{Sysctls: map[string]string{"net/ipv4/ip_local_port_range": "1024 65535"}})
	out := ns.Run(0, "sh", "-c", "ip -o link show | cut -d: -f2; cat /proc/sys/net/ipv4/ip_local_port_range; cat /proc/1/comm; ls /run; stat -c %U /run/rpcbind; echo $LC_ALL")
	if out.Exit != 0 {
		t.Fatalf("%s\n%s", out.Status(), out.Stderr)
	}
	lines := strings.Fields(out.Stdout)
	if len(lines) < 5 || lines[0] != "lo" || lines[1] != "1024" || lines[2] != "65535" || lines[4] != "rpcbind" || lines[len(lines)-1] != "C" {
		t.Errorf("inside the namespace: %q", out.Stdout)
	}
	if host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); strings.Join(strings.Fields(string(host)), " ") == "1024 65535" {
		t.Log("the machine's own port range is 1024-65535 as well: the sysctl check above proves less")
	}
	if _, err := os.Stat(ns.HostPath("/run/rpcbind")); err != nil {
		t.Errorf("HostPath: %v", err)
	}

	p, err := ns.Start("sleeper", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(p.Inside()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(5*time.Second) || !strings.Contains(p.ExitStatus(), "terminated") {
		t.Errorf("after SIGTERM: %s", p.ExitStatus())
	}
	// What is left runs until Close; the kernel then ends it with the
	// namespace's PID 1.
	left, err := ns.Start("left", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	if !left.Exited() {
		t.Errorf("%s still runs after Close", left.Name)
	}
	if _, err := ns.Start("late", "true"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// TestVethJoinsTwoNamespaces checks that each end lands in its own
// namespace, and only there.
func TestVethJoinsTwoNamespaces(t *testing.T) {
	a, b := newNamespace(t, Options{}), newNamespace(t, Options{})
	if err := Veth(a, b, "va", "vb"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ns         *Namespace
		has, lacks string
	}{{a, ": va@", ": vb@"}, {b, ": vb@", ": va@"}} {
		out := c.ns.Run(0, "ip", "-o", "link", "show")
		if out.Exit != 0 || !strings.Contains(out.Stdout, c.has) || strings.Contains(out.Stdout, c.lacks) {
			t.Errorf("links: %s\n%s%s; want %s and no %s", out.Status(), out.Stdout, out.Stderr, c.has, c.lacks)
		}
	}
}

// TestSpawnRunsHere needs no namespace: it is what a program inside one
// uses for its daemon.
func TestSpawnRunsHere(t *testing.T) {
	p, err := Spawn("sh", "sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Inside(); len(got) != 1 || got[0] != p.Pid() {
		t.Errorf("Inside = %v; want the process itself, %d", got, p.Pid())
	}
	if !p.Wait(10 * time.Second) {
		t.Fatal("sh did not exit")
	}
	if p.Stdout() != "out\n" || p.Stderr() != "err\n" || p.ExitStatus() != "exit status 3" {
		t.Errorf("stdout %q, stderr %q, %s", p.Stdout(), p.Stderr(), p.ExitStatus())
	}
	if _, err := Spawn("nothing"); err == nil {
		t.Error("Spawn of an empty command succeeded")
	}
}
