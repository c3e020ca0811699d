package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// The differential tests of "portmapd info" run every command line twice
// against identical daemons, once with Debian's rpcinfo and once with
// portmapd info (or portmapd invoked as rpcinfo), and compare stdout,
// stderr and exit status. Both sides drive their own daemon through the
// same history, so rpcinfo -m, which prints the daemon's count of every
// procedure and lookup, also proves that both clients made the same
// calls in the same order over the same transports.

// Names of the sides of an info diff; the daemon's name picks the client.
const (
	infoRef     = "rpcinfo"
	infoOurs    = "portmapd info"
	infoAsLink  = "portmapd as rpcinfo"
	infoLinkDir = "PORTMAPD_E2E_INFO_LINKDIR"
)

// infoClients resolves, once per test, how each side runs rpcinfo.
type infoClients struct {
	portmapd string // the binary
	linkDir  string // a directory holding "rpcinfo", a link to it
}

func newInfoClients(t *testing.T) *infoClients {
	t.Helper()
	RequireNamespaces(t)
	if _, err := os.Stat("/usr/sbin/rpcinfo"); err != nil {
		if _, err := os.Stat("/usr/bin/rpcinfo"); err != nil {
			t.Skip("e2e: rpcinfo not installed (apt-get install rpcbind)")
		}
	}
	// A directory every user can read: the binary is run as uid 1000 too,
	// and the build's directory is private.
	dir, err := os.MkdirTemp("", "portmapd-info-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "portmapd")
	data, err := os.ReadFile(PortmapdPath(t))
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = os.Symlink(bin, filepath.Join(dir, "rpcinfo"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return &infoClients{portmapd: bin, linkDir: dir}
}

// argv is the command line of rpcinfo with args on side name.
func (ic *infoClients) argv(side string, args ...string) []string {
	switch side {
	case infoOurs:
		return append([]string{ic.portmapd, "info"}, args...)
	case infoAsLink:
		// Found on PATH, as the reference is, so that argv[0] (which
		// getopt's messages start with) is "rpcinfo" on both sides.
		return append([]string{"sh", "-c", `PATH="$0:$PATH" exec rpcinfo "$@"`, ic.linkDir}, args...)
	}
	return append([]string{"rpcinfo"}, args...)
}

// info is a step running rpcinfo with args on each side.
func (ic *infoClients) info(name string, args ...string) Step {
	return ic.infoT(name, 0, args...)
}

// infoT is info with a timeout for commands that wait for one.
func (ic *infoClients) infoT(name string, timeout time.Duration, args ...string) Step {
	s := Action(name, func(d *Daemon) Output {
		return d.Run(timeout, ic.argv(d.Spec.Name, args...)...)
	})
	s.Argv = append([]string{"rpcinfo"}, args...) // for reports
	return s
}

// infoSetup registers a table like a busy NFS server's: several owners,
// every netid, a local socket, well-known and unknown programs, and two
// echo services (program 400300 version 1 on udp 4500 and udp6 4501).
func infoSetup() []Step {
	return []Step{
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
			"v2 udp set 400300 1 17 4500", "true",
			"v4 udp set 400300 1 udp6 ::1.17.149", "true",
			"v4 local set 2147483648 1 udp 0.0.0.0.3.4", "true",
			"v4 local set 400400 4294967295 udp 0.0.0.0.3.5", "true",
			"v4 local set 400400 2147483648 tcp 0.0.0.0.3.5", "true",
		),
		rpcbStep("registrations from an unprivileged port",
			"v3 udp:unpriv set 400101 1 udp 0.0.0.0.39.16", "true",
			"v4 tcp6:unpriv set 400101 1 tcp6 ::.39.16", "true",
		),
		ClientOpts("registrations as uid 1000", []string{"-u", "1000"},
			"v4 local set 400102 2 udp 0.0.0.0.39.17", "lib rpcb_set 400102 2 tcp 0.0.0.0.39.17").Expect(
			"v4 local set 400102 2 udp 0.0.0.0.39.17: true",
			"lib rpcb_set 400102 2 tcp 0.0.0.0.39.17: true",
		),
		Action("echo services 400300 on udp 4500 and udp6 4501", func(d *Daemon) Output {
			for _, where := range []string{"udp 4500", "udp6 4501"} {
				if err := infoStartEcho(d, where); err != nil {
					return Output{Err: err.Error()}
				}
			}
			return Output{}
		}),
	}
}

// infoStartEcho runs the C client's echo service next to d until the
// namespace goes away (at most 120 seconds).
func infoStartEcho(d *Daemon, where string) error {
	p := d.NS.Start("echo "+where, ClientPath(d.t), "serve "+where+" 400300 1 120")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Stdout(), "serving") {
		if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("echo service %s did not start (%s): %s", where, p.ExitStatus(), p.Stdout()+p.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// infoSteps covers every mode of rpcinfo over every transport, its
// fallbacks and its error messages, against a real daemon.
func infoSteps(ic *infoClients) []Step {
	i := ic.info
	steps := []Step{
		i("listing of a fresh daemon"),
		i("-s of a fresh daemon", "-s"),
		i("-p of a fresh daemon", "-p"),
		i("-m of a fresh daemon", "-m"),
	}
	steps = append(steps, infoSetup()...)
	steps = append(steps,
		// Listings, local and over each transport rpcinfo picks.
		i("listing over the local socket"),
		i("listing of 127.0.0.1 (tcp)", "127.0.0.1"),
		i("listing of ::1 (tcp6)", "::1"),
		i("listing of localhost", "localhost"),
		i("listing with -T udp", "-T", "udp", "127.0.0.1"),
		i("listing with -T udp6", "-T", "udp6", "::1"),
		i("listing with -T tcp of an IPv6 host", "-T", "tcp", "::1"),
		i("listing with -T local", "-T", "local", "localhost"),
		i("-T without a host is ignored", "-T", "udp"),
		i("-s", "-s"),
		i("-s ::1", "-s", "::1"),
		i("-s -T udp6", "-s", "-T", "udp6", "::1"),
		i("-p", "-p"),
		i("-p 127.0.0.1", "-p", "127.0.0.1"),
		i("-p ::1", "-p", "::1"),
		i("-p localhost", "-p", "localhost"),
		i("-l 127.0.0.1 100000 4", "-l", "127.0.0.1", "100000", "4"),
		i("-l ::1 100005 3", "-l", "::1", "100005", "3"),
		i("-l localhost 100003 4", "-l", "localhost", "100003", "4"),
		i("-l of a version not registered", "-l", "127.0.0.1", "100021", "2"),
		i("-l -T udp", "-l", "-T", "udp", "127.0.0.1", "100021", "1"),
		i("-l -T tcp6", "-l", "-T", "tcp6", "::1", "100003", "3"),
		i("-l with a program name", "-l", "127.0.0.1", "nfs", "3"),
		i("-l with a version of 2^32-1", "-l", "127.0.0.1", "400400", "--", "-1"),

		// Pings through the portmapper.
		i("-u of the echo service, every version", "-u", "127.0.0.1", "400300"),
		i("-u of the echo service, version 1", "-u", "127.0.0.1", "400300", "1"),
		i("-t of the echo service (registered on udp only)", "-t", "127.0.0.1", "400300"),
		i("-u of a registered program nobody serves (port unreachable)", "-u", "127.0.0.1", "100021", "1"),
		i("-t of a registered program nobody serves (refused)", "-t", "127.0.0.1", "100003", "3"),
		i("-u of an unregistered program", "-u", "127.0.0.1", "400177"),
		i("-t of the portmapper, every version", "-t", "127.0.0.1", "100000"),
		i("-u of the portmapper, a version it lacks", "-u", "127.0.0.1", "100000", "5"),
		i("-u ::1", "-u", "::1", "100000", "2"),
		i("-u of a program by name", "-u", "127.0.0.1", "portmapper", "2"),
		i("-u of a number too large for 32 bits", "-u", "127.0.0.1", "4294967296000"),
		i("-u with a version of -1", "-u", "--", "127.0.0.1", "100000", "-1"),
		i("-T udp of the echo service", "-T", "udp", "127.0.0.1", "400300"),
		i("-T udp6 of the echo service", "-T", "udp6", "::1", "400300", "1"),
		i("-T tcp6 of a program registered on tcp only", "-T", "tcp6", "::1", "100021", "4"),
		i("-T tcp6 of the portmapper, every version", "-T", "tcp6", "::1", "100000"),
		i("-T udp6 of the portmapper, PROG_MISMATCH", "-T", "udp6", "::1", "100000", "5"),
		i("-T local of the portmapper", "-T", "local", "localhost", "100000"),
		i("-T local with a path as host", "-T", "local", "/run/rpcbind.sock", "100000", "3"),
		i("-T tcp of a version of -1", "-T", "tcp", "--", "127.0.0.1", "100000", "-1"),
		i("-T rawip", "-T", "rawip", "127.0.0.1", "100000", "2"),
		// Pings at an address, without the portmapper.
		i("-a udp echo", "-a", "127.0.0.1.17.148", "-T", "udp", "400300"),
		i("-a udp6 echo", "-a", "::1.17.149", "-T", "udp6", "400300", "1"),
		i("-a local", "-a", "/run/rpcbind.sock", "-T", "local", "100000", "4"),
		i("-a tcp6, every version", "-a", "::1.0.111", "-T", "tcp6", "100000"),
		i("-a of an address nobody serves", "-a", "127.0.0.1.0.9", "-T", "tcp", "100000", "2"),
		i("-a with an address of the wrong family", "-a", "127.0.0.1.0.111", "-T", "udp6", "100000", "2"),
		i("-a rawip", "-a", "127.0.0.1.0.111", "-T", "rawip", "100000", "2"),
		i("-a without -T", "-a", "127.0.0.1.0.111", "100000"),

		// Errors of the command line.
		i("no such option", "-x"),
		i("two modes", "-p", "-s"),
		i("-T without its argument", "-T"),
		i("-n that is not a number", "-n", "5x", "-p"),
		i("-p with two hosts", "-p", "a", "b"),
		i("a ping without -T", "127.0.0.1", "100000"),
		i("-l with too few arguments", "-l", "127.0.0.1", "100000"),
		i("-u with too many arguments", "-u", "127.0.0.1", "1", "2", "3"),
		i("unknown service name", "-u", "127.0.0.1", "nosuchservice"),
		i("program number with a letter", "-u", "127.0.0.1", "12a", "2"),
		i("program number with a dash", "-u", "127.0.0.1", "12-", "2"),
		i("empty program number", "-u", "127.0.0.1", "", "2"),
		i("illegal version", "-u", "127.0.0.1", "100000", "2x"),
		i("-d with two illegal numbers (the version is read first)", "-d", "x", "y"),
		i("unknown netid in a listing", "-T", "foo", "127.0.0.1"),
		i("unknown netid in a ping", "-T", "foo", "127.0.0.1", "1"),
		i("unknown netid for -d", "-d", "-T", "foo", "1", "1"),
		i("unknown netid for -l", "-l", "-T", "foo", "127.0.0.1", "1", "1"),
		i("-T rawip listing", "-T", "rawip", "127.0.0.1"),
		i("options after the arguments (GNU getopt)", "127.0.0.1", "-p"),
		i("clustered options", "-pT", "udp"),
		i("a lone dash is an argument", "-s", "-"),
		i("-b with nothing to broadcast on", "-b", "100000", "2"),
		i("-b with too few arguments", "-b", "100000"),

		// Hosts that cannot be reached.
		i("listing of a name that does not resolve", "nosuch.invalid"),
		i("-p of a name that does not resolve", "-p", "nosuch.invalid"),
		i("-u of a name that does not resolve", "-u", "nosuch.invalid", "100000"),
		i("-T of a name that does not resolve", "-T", "tcp", "nosuch.invalid", "100000"),
		i("-l of a name that does not resolve", "-l", "nosuch.invalid", "1", "1"),
		i("-m of a name that does not resolve", "-m", "nosuch.invalid"),
		i("listing of an unreachable host", "10.255.255.1"),
		i("-p of an unreachable host", "-p", "10.255.255.1"),
		i("-u of an unreachable host", "-u", "10.255.255.1", "100000"),
		i("-T udp of an unreachable host", "-T", "udp", "10.255.255.1", "100000"),

		// Deletions, through the local socket as the caller's uid.
		Action("-d of its own entry as uid 1000", func(d *Daemon) Output {
			return d.Run(0, append([]string{"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"},
				ic.argv(d.Spec.Name, "-d", "400102", "2")...)...)
		}),
		Action("-d of a superuser entry as uid 1000", func(d *Daemon) Output {
			return d.Run(0, append([]string{"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"},
				ic.argv(d.Spec.Name, "-d", "100005", "3")...)...)
		}),
		i("-d removes every netid", "-d", "100003", "4"),
		i("-d -T udp removes one netid", "-d", "-T", "udp", "100005", "3"),
		i("-d -T tcp6 of a netid not registered", "-d", "-T", "tcp6", "100021", "1"),
		i("-d of nothing", "-d", "400177", "1"),
		i("-d by program name", "-d", "nlockmgr", "4"),
		i("listing after -d"),
		i("-s after -d", "-s", "127.0.0.1"),
		i("-p after -d", "-p"),

		// The statistics: every call both clients made, counted.
		i("-m", "-m"),
		i("-m 127.0.0.1", "-m", "127.0.0.1"),
		i("-m ::1 (extra arguments ignored)", "-m", "::1", "extra"),
	)
	return steps
}

// TestInfoDifferential compares portmapd info with Debian's rpcinfo, and
// portmapd invoked as rpcinfo with it, against Debian's rpcbind; then
// portmapd info with rpcinfo against portmapd.
func TestInfoDifferential(t *testing.T) {
	ic := newInfoClients(t)
	for _, c := range []struct {
		name   string
		daemon DaemonSpec
		ours   string
	}{
		{"rpcbind/info", Rpcbind(), infoOurs},
		{"rpcbind/link", Rpcbind(), infoAsLink},
		{"portmapd/info", Portmapd(), infoOurs},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			RunDiff(t, c.daemon.Named(infoRef), c.daemon.Named(c.ours), infoSteps(ic))
		})
	}
}

// TestInfoUnixNetid checks libtirpc's warning about the netid "unix",
// which it follows with ten seconds of sleep (portmapd info prints the
// warning without the sleep).
func TestInfoUnixNetid(t *testing.T) {
	t.Parallel()
	ic := newInfoClients(t)
	RunDiff(t, Rpcbind().Named(infoRef), Rpcbind().Named(infoOurs), []Step{
		ic.infoT("-T unix of the portmapper", 30*time.Second, "-T", "unix", "127.0.0.1", "100000", "2"),
	})
}

// TestInfoExtensions checks what rpcinfo lacks, against portmapd in a
// namespace: JSON, several hosts at once and -n PORT.
func TestInfoExtensions(t *testing.T) {
	t.Parallel()
	ic := newInfoClients(t)
	d := StartDaemon(t, Portmapd())
	second := d.NS.Start("second portmapd", ic.portmapd, "serve", "--port", "4111", "--socket=",
		"--lock-file=", "--no-ipv6", "--log-level", "warn")
	_ = second
	deadline := time.Now().Add(ReadyTimeout)
	for !listeningOn(d.NS.Pid(), "tcp", "100F") {
		if time.Now().After(deadline) {
			t.Fatalf("second portmapd not listening on 4111: %s", second.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := d.Client("v4 local set 400300 1 udp 0.0.0.0.17.148"); out.Stdout != "v4 local set 400300 1 udp 0.0.0.0.17.148: true\n" {
		t.Fatalf("register: %q %s", out.Stdout, out.Status())
	}
	run := func(args ...string) Output {
		t.Helper()
		return d.Run(0, append([]string{ic.portmapd, "info"}, args...)...)
	}

	t.Run("json listing", func(t *testing.T) {
		out := run("--json")
		var res struct {
			Query    string
			Exit     int
			Mappings []struct {
				Prog    uint32
				Vers    uint32
				Netid   string
				Addr    string
				Owner   string
				Service string
			}
		}
		if err := json.Unmarshal([]byte(out.Stdout), &res); err != nil || out.Exit != 0 {
			t.Fatalf("%v %s\n%s%s", err, out.Status(), out.Stdout, out.Stderr)
		}
		found := false
		for _, m := range res.Mappings {
			if m.Prog == 400300 && m.Netid == "udp" && m.Addr == "0.0.0.0.17.148" && m.Owner == "superuser" {
				found = true
			}
			if m.Prog == 100000 && m.Service != "portmapper" {
				t.Errorf("service of 100000 is %q", m.Service)
			}
		}
		if res.Query != "dump" || !found {
			t.Errorf("unexpected result:\n%s", out.Stdout)
		}
	})
	t.Run("json of an error", func(t *testing.T) {
		out := run("--json", "-u", "127.0.0.1", "400177")
		var res struct {
			Query string
			Host  string
			Error string
			Exit  int
		}
		if err := json.Unmarshal([]byte(out.Stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, out.Stdout)
		}
		if out.Exit != 1 || res.Exit != 1 || res.Host != "127.0.0.1" || res.Error != "127.0.0.1: RPC: Program not registered" {
			t.Errorf("%s %+v", out.Status(), res)
		}
	})
	t.Run("several hosts at once", func(t *testing.T) {
		out := run("-p", "--host", "127.0.0.1", "--host", "::1,10.255.255.1", "--timeout", "3s")
		for _, want := range []string{"127.0.0.1:\n   program vers proto   port  service\n", "\n::1:\n   program vers proto", "\n10.255.255.1:\n"} {
			if !strings.Contains(out.Stdout, want) {
				t.Errorf("missing %q in\n%s", want, out.Stdout)
			}
		}
		if out.Exit != 1 || out.Stderr != "10.255.255.1: 10.255.255.1: RPC: Remote system error - Network is unreachable\n" {
			t.Errorf("%s, stderr %q", out.Status(), out.Stderr)
		}
		out = run("--json", "-s", "--host", "127.0.0.1,::1")
		var res []struct {
			Host     string
			Programs []struct{ Prog uint32 }
		}
		if err := json.Unmarshal([]byte(out.Stdout), &res); err != nil || len(res) != 2 || res[1].Host != "::1" || len(res[0].Programs) == 0 {
			t.Errorf("%v %s\n%s", err, out.Status(), out.Stdout)
		}
	})
	t.Run("-n names the portmapper, or with -u/-t the service", func(t *testing.T) {
		out := run("-n", "4111", "-p")
		if out.Exit != 0 || strings.Contains(out.Stdout, "400300") || !strings.Contains(out.Stdout, "100000    2   tcp   4111  portmapper") {
			t.Errorf("the second portmapper (port 4111, without 400300) was not asked: %s\n%s%s", out.Status(), out.Stdout, out.Stderr)
		}
		out = run("-n", "4111", "-T", "tcp", "127.0.0.1", "100000", "4")
		if out.Stdout != "program 100000 version 4 ready and waiting\n" {
			t.Errorf("%s\n%s%s", out.Status(), out.Stdout, out.Stderr)
		}
		// With -u, -n is the service's own port (rpcinfo(8)): program
		// 400300 is called at port 111, where the portmapper answers that
		// it is not that program, without being asked for a lookup.
		out = run("-n", "111", "-u", "127.0.0.1", "400300", "1")
		if out.Exit != 1 || !strings.Contains(out.Stderr, "Program unavailable") {
			t.Errorf("-n 111 -u calls port 111 itself: %s\n%s%s", out.Status(), out.Stdout, out.Stderr)
		}
	})
}

// listeningOn is listening for another port (hex, as in /proc/net).
func listeningOn(pid int, proto, hexPort string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, proto))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], ":"+strings.ToUpper(hexPort)) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// A fake portmapper for the hostile differential: the test binary
// itself, started in a namespace with infoFakeEnv naming how the
// portmapper (program 100000) behaves. Programs 400501 to 400510 each
// answer their NULL call in a way a real server could, correct or not,
// at the portmapper's own port; 400599 is not registered.
const infoFakeEnv = "PORTMAPD_E2E_FAKE_PORTMAPPER"

func init() {
	if mode := os.Getenv(infoFakeEnv); mode != "" {
		os.Exit(fakePortmapperMain(mode))
	}
}

// fakePortmapper is a DaemonSpec for the fake in the given mode.
func fakePortmapper(mode string) DaemonSpec {
	return DaemonSpec{
		Name: "fake " + mode,
		Argv: func(t testing.TB) []string {
			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			return []string{"env", infoFakeEnv + "=" + mode, self}
		},
		Ready: []string{"udp", "tcp", "udp6", "tcp6", "local"},
	}
}

func fakePortmapperMain(mode string) int {
	os.Remove("/run/rpcbind.sock")
	for _, l := range []struct{ network, addr, netid string }{
		{"tcp4", "0.0.0.0:111", "tcp"}, {"tcp6", "[::]:111", "tcp6"}, {"unix", "/run/rpcbind.sock", "local"},
	} {
		ln, err := net.Listen(l.network, l.addr)
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
					rr := rpc.NewRecordReader(conn, 1<<20)
					for {
						rec, err := rr.Next()
						if err != nil {
							return
						}
						if reply := fakeReply(mode, l.netid, rec); reply != nil {
							rpc.WriteRecord(conn, reply)
						}
					}
				}()
			}
		}()
	}
	for _, l := range []struct{ network, addr, netid string }{
		{"udp4", "0.0.0.0:111", "udp"}, {"udp6", "[::]:111", "udp6"},
	} {
		pc, err := net.ListenPacket(l.network, l.addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if reply := fakeReply(mode, l.netid, buf[:n]); reply != nil {
					pc.WriteTo(reply, from)
				}
			}
		}()
	}
	select {}
}

// fakeSelf is the fake's own address as a universal address on netid.
func fakeSelf(netid string) string {
	switch netid {
	case "udp6", "tcp6":
		return "::1.0.111"
	case "local":
		return "/run/rpcbind.sock"
	}
	return "127.0.0.1.0.111"
}

func fakeReply(mode, netid string, msg []byte) []byte {
	d := xdr.NewDecoder(msg)
	h, err := rpc.ParseCall(d)
	if err != nil {
		return nil
	}
	x := h.XID
	ok := func(words ...uint32) []byte { return append(rpc.AppendSuccess(nil, x), Words(words...)...) }
	if h.Prog != 100000 {
		return fakeService(x, h.Prog, h.Vers)
	}
	switch mode {
	case "unavail":
		return rpc.AppendAccepted(nil, x, rpc.ProgUnavail)
	case "v2only":
		if h.Vers != 2 {
			return rpc.AppendProgMismatch(nil, x, 2, 2)
		}
	case "v4only":
		if h.Vers != 4 {
			return rpc.AppendProgMismatch(nil, x, 4, 4)
		}
	case "v5":
		return rpc.AppendProgMismatch(nil, x, 5, 6)
	case "tooweak":
		if h.Proc != 0 {
			return rpc.AppendAuthError(nil, x, rpc.AuthTooWeak)
		}
	}
	if h.Vers < 2 || h.Vers > 4 {
		return rpc.AppendProgMismatch(nil, x, 2, 4)
	}
	args := d.Rest()
	prog := func() uint32 {
		if len(args) < 4 {
			return 0
		}
		return uint32(args[0])<<24 | uint32(args[1])<<16 | uint32(args[2])<<8 | uint32(args[3])
	}()
	known := prog == 100000 || (prog > 400500 && prog < 400520)
	switch h.Proc {
	case 0:
		return ok()
	case 1, 2: // SET, UNSET
		return ok(1)
	case 3: // GETPORT, GETADDR
		if mode == "badresults" {
			return ok(0xfffffff0)
		}
		if h.Vers == 2 {
			if !known {
				return ok(0)
			}
			if mode == "badaddr" {
				return ok(0x10000) // xdr_u_short keeps 0 of it
			}
			return ok(111)
		}
		switch {
		case !known:
			return append(rpc.AppendSuccess(nil, x), XDRString("")...)
		case mode == "badaddr":
			return append(rpc.AppendSuccess(nil, x), XDRString("not-an-address")...)
		}
		return append(rpc.AppendSuccess(nil, x), XDRString(fakeSelf(netid))...)
	case 4: // DUMP
		if mode == "badresults" {
			return ok(1, 100000, 2)
		}
		if h.Vers == 2 {
			return ok(1, 100000, 2, 6, 111, 1, 100000, 2, 17, 111, 1, 400501, 1, 17, 111,
				1, 7, 1, 99, 65536+5, 1, 4294967295, 4294967295, 6, 4294967295, 0)
		}
		b := rpc.AppendSuccess(nil, x)
		for _, row := range []struct {
			prog, vers         uint32
			netid, addr, owner string
		}{
			{100000, 4, "tcp", "0.0.0.0.0.111", "superuser"},
			{100000, 3, "udp", "0.0.0.0.0.111", "superuser"},
			{400501, 1, "udp", "a-universal-address-longer-than-its-column", "1000"},
			{400501, 3, "a-long-netid", "::.0.111", "owner\x00hidden"},
			{4294967295, 2147483648, "", "", ""},
			{400502, 4294967295, "udp", "0.0.0.0.1.1", "unknown"},
			{400502, 4294967295, "tcp", "0.0.0.0.1.1", "unknown"},
		} {
			b = append(b, Words(1, row.prog, row.vers)...)
			b = append(b, XDRString(row.netid)...)
			b = append(b, XDRString(row.addr)...)
			b = append(b, XDRString(row.owner)...)
		}
		return append(b, Words(0)...)
	case 11: // GETADDRLIST
		if h.Vers != 4 {
			return rpc.AppendAccepted(nil, x, rpc.ProcUnavail)
		}
		if mode == "badresults" {
			return ok(1)
		}
		b := rpc.AppendSuccess(nil, x)
		for _, e := range []struct {
			addr, netid string
			sem         uint32
			fam, proto  string
		}{
			{"127.0.0.1.0.111", "tcp", 3, "inet", "tcp"},
			{"127.0.0.1.0.111", "udp", 1, "inet", "udp"},
			{"/run/rpcbind.sock", "local", 2, "loopback", "-"},
			{"a-merged-address-longer-than-its-column", "x", 9, "a-family-of-a-rather-long-name", "p"},
		} {
			b = append(b, Words(1)...)
			b = append(b, XDRString(e.addr)...)
			b = append(b, XDRString(e.netid)...)
			b = append(b, Words(e.sem)...)
			b = append(b, XDRString(e.fam)...)
			b = append(b, XDRString(e.proto)...)
		}
		return append(b, Words(0)...)
	case 12: // GETSTAT
		if h.Vers != 4 {
			return rpc.AppendAccepted(nil, x, rpc.ProcUnavail)
		}
		if mode == "badresults" {
			return ok(1, 2, 3)
		}
		b := rpc.AppendSuccess(nil, x)
		for v := uint32(0); v < 3; v++ {
			info := make([]uint32, 13)
			for i := range info {
				info[i] = v*100 + uint32(i)*7
			}
			info[5] = 3 // CALLIT, so that the remote call tables print
			info[10] = 4294967295
			b = append(b, Words(info...)...)
			b = append(b, Words(12345678, 4294967295)...)
			b = append(b, Words(1, 100003, 3, 5, 2)...)
			b = append(b, XDRString("tcp")...)
			b = append(b, Words(1, 3000000000, 4294967295, 2147483647, 1)...)
			b = append(b, XDRString("udp6")...)
			b = append(b, Words(0)...)
			b = append(b, Words(1, 100005, 1, 2, 9, 4294967295, 1)...)
			b = append(b, XDRString("udp")...)
			b = append(b, Words(1, 2500000000, 2, 3, 0, 1, 0)...)
			b = append(b, XDRString("a-long-netid")...)
			b = append(b, Words(0)...)
		}
		return b
	}
	return rpc.AppendAccepted(nil, x, rpc.ProcUnavail)
}

// fakeService answers the NULL call of the test programs.
func fakeService(x, prog, vers uint32) []byte {
	switch prog {
	case 400501: // versions 1 to 3, each answering differently
		switch vers {
		case 1:
			return rpc.AppendSuccess(nil, x)
		case 2:
			return rpc.AppendAuthError(nil, x, rpc.AuthTooWeak)
		case 3:
			return rpc.AppendAccepted(nil, x, rpc.SystemErr)
		}
		return rpc.AppendProgMismatch(nil, x, 1, 3)
	case 400502:
		return rpc.AppendAccepted(nil, x, rpc.ProcUnavail)
	case 400503:
		return rpc.AppendAccepted(nil, x, rpc.GarbageArgs)
	case 400504:
		return rpc.AppendRPCMismatch(nil, x, 2, 2)
	case 400505: // an accept_stat RFC 5531 does not have
		return rpc.AppendAccepted(nil, x, rpc.AcceptStat(9))
	case 400506: // a reject_stat RFC 5531 does not have
		return DeniedReply(x, 7)
	case 400507: // a call instead of a reply
		return Words(x, 0, 2, 1, 1, 0, 0, 0, 0, 0)
	case 400508:
		return rpc.AppendAccepted(nil, x, rpc.ProgUnavail)
	case 400509: // version 0 and every version but the last
		if vers == 4294967295 {
			return rpc.AppendProgMismatch(nil, x, 5, 7)
		}
		return rpc.AppendSuccess(nil, x)
	case 400510:
		return rpc.AppendAuthError(nil, x, rpc.AuthStat(99))
	}
	return rpc.AppendAccepted(nil, x, rpc.ProgUnavail)
}

// infoHostileSteps are the command lines run against every fake.
func infoHostileSteps(ic *infoClients) []Step {
	i := ic.info
	steps := []Step{
		i("listing over the local socket"),
		i("listing over tcp", "127.0.0.1"),
		i("listing over udp", "-T", "udp", "127.0.0.1"),
		i("listing over tcp6", "::1"),
		i("-s", "-s"),
		i("-s over udp6", "-s", "-T", "udp6", "::1"),
		i("-p", "-p"),
		i("-p 127.0.0.1", "-p", "127.0.0.1"),
		i("-p ::1", "-p", "::1"),
		i("-m", "-m"),
		i("-m ::1", "-m", "::1"),
		i("-l", "-l", "127.0.0.1", "100000", "4"),
		i("-l -T udp6", "-l", "-T", "udp6", "::1", "100000", "4"),
		i("-d", "-d", "400501", "1"),
		i("-u of an unregistered program", "-u", "127.0.0.1", "400599"),
		i("-T tcp of an unregistered program", "-T", "tcp", "127.0.0.1", "400599"),
	}
	for prog := 400501; prog <= 400510; prog++ {
		p := fmt.Sprint(prog)
		steps = append(steps,
			i("-u "+p, "-u", "127.0.0.1", p),
			i("-T udp6 "+p+" version 2", "-T", "udp6", "::1", p, "2"),
			i("-a "+p, "-a", "127.0.0.1.0.111", "-T", "udp", p, "1"),
		)
		// Over a stream, libtirpc skips a record it cannot decode and
		// waits out its 10 seconds; the two that do are asked once.
		if prog != 400506 && prog != 400507 {
			steps = append(steps, i("-t "+p, "-t", "127.0.0.1", p, "3"))
		}
	}
	return append(steps,
		i("-t of a reply with an unknown reject_stat (skipped, then timed out)", "-t", "127.0.0.1", "400506", "1"),
		i("-T local of a call instead of a reply (skipped, then timed out)", "-T", "local", "x", "400507", "1"),
	)
}

// TestInfoHostileDifferential runs rpcinfo and portmapd info against fake
// portmappers and services that answer everything RFC 5531 allows and
// some things it does not: version ranges, each error status, unknown
// statuses, replies that are not replies, results cut short, lengths of
// four gigabytes and addresses that are not addresses.
func TestInfoHostileDifferential(t *testing.T) {
	ic := newInfoClients(t)
	for _, mode := range []string{"zoo", "v2only", "v4only", "v5", "unavail", "tooweak", "badresults", "badaddr"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			spec := fakePortmapper(mode)
			RunDiff(t, spec.Named(infoRef), spec.Named(infoOurs), infoHostileSteps(ic))
		})
	}
}

// TestInfoBroadcastDifferential broadcasts a NULL call to the echo
// service (program 400300 version 1) from host 1 of a LAN of three, whose
// hosts 2 and 3 serve it, with rpcinfo -b and portmapd info -b. rpc_broadcast
// sends RPCBIND v3 and PMAP v2 CALLITs to every broadcast address (and
// to ff02::202), for two rounds of 4 and 8 seconds; the answers, sorted,
// must be the same. With portmapd on the LAN the IPv6 answers come too.
func TestInfoBroadcastDifferential(t *testing.T) {
	ic := newInfoClients(t)
	for _, spec := range []DaemonSpec{Rpcbind("-r"), Portmapd("--remote-calls")} {
		t.Run(spec.Name, func(t *testing.T) {
			t.Parallel()
			lan := newLAN(t, spec, 3)
			for _, h := range lan[1:] {
				startEcho(t, h.d, "udp 4500")
				startEcho(t, h.d, "udp6 4501")
				out := h.d.Client("v2 udp set 400300 1 17 4500", "v4 udp set 400300 1 udp6 ::.17.149")
				if strings.Count(out.Stdout, ": true") != 2 {
					t.Fatalf("registering the echo on %s: %q %s", h.addr, out.Stdout, out.Status())
				}
			}
			// Names for every address, so that getnameinfo answers from
			// the file: with no DNS server in reach, glibc's answer for an
			// address it cannot name varies between the numeric form and
			// an error, which rpcinfo prints as "unknown".
			hosts := filepath.Join(t.TempDir(), "hosts")
			if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"+
				"10.77.0.1 host1\n10.77.0.2 host2\n10.77.0.3 host3\n"+
				"fe80::ff:fe00:1 host1-ll\nfe80::ff:fe00:2 host2-ll\nfe80::ff:fe00:3 host3-ll\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			mustRun(t, lan[0].ns, "mount", "--bind", hosts, "/etc/hosts")
			sorted := func(out string, argv []string) []string {
				return append([]string{"sh", "-c", `out=$0; "$@" >$out; s=$?; sort -u $out; exit $s`, out}, argv...)
			}
			var outs [2]Output
			done := make(chan int)
			for i, side := range []string{infoRef, infoOurs} {
				go func() {
					outs[i] = lan[0].ns.Run(40*time.Second, sorted(fmt.Sprintf("/run/bcast%d.out", i), ic.argv(side, "-b", "400300", "1"))...)
					done <- i
				}()
			}
			<-done
			<-done
			// Both ran at once, so each also hears... nothing of the other:
			// answers go to the port the broadcast left from.
			if r := compare(infoRef, outs[0], infoOurs, outs[1]); r != "" {
				t.Errorf("rpcinfo -b 400300 1:\n%s", r)
			}
			if !strings.Contains(outs[0].Stdout, "10.77.0.2.17.148\thost2\n") {
				t.Errorf("no answer from host 2 in\n%s", outs[0].Stdout)
			}
			if os.Getenv("PORTMAPD_E2E_SHOW") == "1" {
				t.Logf("rpcinfo:\n%s%sportmapd info:\n%s%s", outs[0].Stdout, outs[0].Stderr, outs[1].Stdout, outs[1].Stderr)
			}
		})
	}
}

// TestInfoWithoutLocalSocket runs rpcinfo against portmapd without its
// local socket: the listings without a host fail, and rpcinfo -d goes
// through libtirpc's fallback, TCP to ::1 from a reserved port, so that
// root may still remove root's entries.
func TestInfoWithoutLocalSocket(t *testing.T) {
	t.Parallel()
	ic := newInfoClients(t)
	spec := Portmapd("--socket=")
	RunDiff(t, spec.Named(infoRef), spec.Named(infoOurs), []Step{
		rpcbStep("registrations as root, over TCP from a reserved port",
			"v4 tcp:priv set 100005 3 udp 0.0.0.0.78.80", "true",
			"v4 tcp:priv set 100005 3 tcp 0.0.0.0.78.80", "true",
			"v4 tcp:priv set 100021 4 tcp 0.0.0.0.156.66", "true"),
		ic.info("listing without the local socket"),
		ic.info("-p without the local socket", "-p"),
		ic.info("-m without the local socket", "-m"),
		ic.info("-d through TCP from a reserved port", "-d", "100005", "3"),
		Action("-d as uid 1000 of root's entry", func(d *Daemon) Output {
			return d.Run(0, append([]string{"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"},
				ic.argv(d.Spec.Name, "-d", "100021", "4")...)...)
		}),
		ic.info("listing of 127.0.0.1 after -d", "127.0.0.1"),
		ic.info("-m of ::1", "-m", "::1"),
	})
}
