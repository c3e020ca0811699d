package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
)

// daemonCommand prepares a daemon process that cannot outlive the test:
// the kernel kills it if the test binary dies (PR_SET_PDEATHSIG), and a
// cleanup kills it when the test ends, whatever failed in between.
func daemonCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t.Cleanup(func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// TestDumpRestore saves a table by hand and restores it into another
// daemon, as administrators did with portmap's pmap_dump and pmap_set:
// the pmap_dump format keeps the udp/tcp rows, the JSON form every row.
func TestDumpRestore(t *testing.T) {
	bin := PortmapdPath(t)
	src, srcSock := startLoopbackDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", srcSock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []pmap.Mapping{
		{Prog: 100024, Vers: 1, Netid: "udp", Addr: "0.0.0.0.15.160"},
		{Prog: 100024, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.15.160"},
		{Prog: 100005, Vers: 3, Netid: "tcp6", Addr: "::.78.80"},
		{Prog: 100021, Vers: 4, Netid: "local", Addr: "/run/lockd.sock"},
	} {
		if ok, err := c.Set(ctx, m); err != nil || !ok {
			t.Fatalf("SET %v: %v %v", m, ok, err)
		}
	}
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("portmapd %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	at := func(port int) []string {
		return []string{"--network", "tcp", "--address", fmt.Sprintf("127.0.0.1:%d", port)}
	}

	text := run("", append([]string{"dump"}, at(src)...)...)
	wantText := "   100024    1   udp   4000\n   100024    1   tcp   4000\n"
	if !strings.HasSuffix(text, wantText) || !strings.HasPrefix(text, "   100000    4   tcp ") {
		t.Fatalf("dump:\n%s\nwant the portmapper's rows, then:\n%s", text, wantText)
	}
	asJSON := run("", append([]string{"dump", "--json"}, at(src)...)...)

	// pmap_dump's format into one daemon, JSON into another.
	for _, tc := range []struct {
		name, input string
		want        []string
	}{
		{"pmap_dump format", text, []string{"100024 1 udp 0.0.0.0.15.160", "100024 1 tcp 0.0.0.0.15.160"}},
		{"JSON", asJSON, []string{"100024 1 udp 0.0.0.0.15.160", "100024 1 tcp 0.0.0.0.15.160",
			"100005 3 tcp6 ::.78.80", "100021 4 local /run/lockd.sock"}},
	} {
		dst, _ := startLoopbackDaemon(t)
		run(tc.input, append([]string{"restore"}, at(dst)...)...)
		dc, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", dst))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := dc.Dump(ctx)
		dc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			if r.Prog != pmap.Program {
				got = append(got, fmt.Sprintf("%d %d %s %s", r.Prog, r.Vers, r.Netid, r.Addr))
			}
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: restored\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}
