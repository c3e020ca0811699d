package lockfile

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procHex prints an address the way the kernel does in /proc/net/*: each
// 32-bit word of the in-memory (network order) bytes, read in host order.
func procHex(ap netip.AddrPort) string {
	raw := ap.Addr().AsSlice()
	var b strings.Builder
	for i := 0; i < len(raw); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(raw[i:]))
	}
	fmt.Fprintf(&b, ":%04X", ap.Port())
	return b.String()
}

func TestParseSocketsKeepsBoundSocketsOnThePort(t *testing.T) {
	line := func(ap string, st string, inode int) string {
		return fmt.Sprintf("   0: %s %s %s 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0",
			procHex(netip.MustParseAddrPort(ap)), procHex(netip.MustParseAddrPort("0.0.0.0:0")), st, inode)
	}
	header := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	tests := []struct {
		name   string
		netid  string
		lines  []string
		inodes []uint64
		addrs  []string
	}{
		{"a TCP listener on the port", "tcp",
			[]string{line("0.0.0.0:111", "0A", 11)}, []uint64{11}, []string{"0.0.0.0:111"}},
		{"a TCP socket bound but not listening", "tcp",
			[]string{line("127.0.0.1:111", "07", 12)}, []uint64{12}, []string{"127.0.0.1:111"}},
		{"an accepted connection adds nothing", "tcp",
			[]string{line("127.0.0.1:111", "01", 13)}, nil, nil},
		{"another port is not ours", "tcp",
			[]string{line("0.0.0.0:2049", "0A", 14)}, nil, nil},
		{"a UDP socket in any state", "udp",
			[]string{line("10.0.0.1:111", "07", 15), line("10.0.0.2:111", "01", 16)}, []uint64{15, 16},
			[]string{"10.0.0.1:111", "10.0.0.2:111"}},
		{"IPv6 words", "tcp6",
			[]string{line("[2001:db8::1]:111", "0A", 17), line("[::]:111", "0A", 18)}, []uint64{17, 18},
			[]string{"[2001:db8::1]:111", "[::]:111"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSockets(strings.NewReader(header+"\n"+strings.Join(tt.lines, "\n")+"\n"), tt.netid, 111)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.inodes) {
				t.Fatalf("got %+v, want inodes %v", got, tt.inodes)
			}
			for i, u := range got {
				if u.Inode != tt.inodes[i] || u.Addr.String() != tt.addrs[i] || u.Netid != tt.netid {
					t.Errorf("got %+v, want inode %d at %s", u, tt.inodes[i], tt.addrs[i])
				}
			}
		})
	}
}

func TestParseSocketsRefusesGarbage(t *testing.T) {
	for _, in := range []string{
		"hdr\n 0: ZZ:006F 00000000:0000 0A 0:0 0:0 0 0 0 1\n",
		"hdr\n 0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 1\n",
		"hdr\n 0: 0100007F:006F 00000000:0000 0A 0:0 0:0 0 0 0 x\n",
		"hdr\n 0: 0100007F00:006F 00000000:0000 0A 0:0 0:0 0 0 0 1\n",
	} {
		if _, err := parseSockets(strings.NewReader(in), "tcp", 111); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestPortUsersFindsThisProcess(t *testing.T) {
	type sock struct {
		netid, addr string
	}
	tests := []sock{{"tcp", "127.0.0.1:0"}, {"udp", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}, {"udp6", "[::1]:0"}}
	for _, tt := range tests {
		t.Run(tt.netid, func(t *testing.T) {
			var port int
			if strings.HasPrefix(tt.netid, "tcp") {
				l, err := net.Listen(tt.netid, tt.addr)
				if err != nil {
					t.Skipf("%s: %v", tt.netid, err)
				}
				defer l.Close()
				port = l.Addr().(*net.TCPAddr).Port
			} else {
				c, err := net.ListenPacket(tt.netid, tt.addr)
				if err != nil {
					t.Skipf("%s: %v", tt.netid, err)
				}
				defer c.Close()
				port = c.LocalAddr().(*net.UDPAddr).Port
			}
			users, err := PortUsers(uint16(port), tt.netid)
			if err != nil {
				t.Fatal(err)
			}
			if len(users) != 1 || users[0].PID != os.Getpid() || users[0].Netid != tt.netid || users[0].Addr.Port() != uint16(port) {
				t.Fatalf("got %+v, want this process (pid %d)", users, os.Getpid())
			}
			want := fmt.Sprintf("%s (pid %d)", Command(os.Getpid()), os.Getpid())
			if got := Describe(users); got != want {
				t.Errorf("Describe: got %q, want %q", got, want)
			}
		})
	}
}

func TestPortUsersFindsAnotherProcess(t *testing.T) {
	h := startHelper(t, "listen")
	port, err := strconv.Atoi(h.ready)
	if err != nil {
		t.Fatal(err)
	}
	users, err := PortUsers(uint16(port))
	if err != nil {
		t.Fatal(err)
	}
	netids := map[string]bool{}
	for _, u := range users {
		if u.PID != h.cmd.Process.Pid {
			t.Errorf("socket %+v: want pid %d", u, h.cmd.Process.Pid)
		}
		netids[u.Netid] = true
	}
	if !netids["tcp"] || !netids["udp"] {
		t.Errorf("found %+v, want the helper's tcp and udp sockets", users)
	}
	// Two sockets, one process: named once.
	if got, want := Describe(users), fmt.Sprintf("%s (pid %d)", Command(h.cmd.Process.Pid), h.cmd.Process.Pid); got != want {
		t.Errorf("Describe: got %q, want %q", got, want)
	}
}

func TestPortUsersOfAFreePort(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	users, err := PortUsers(uint16(port), "tcp")
	if err != nil || users != nil {
		t.Errorf("got %+v, %v; want nothing", users, err)
	}
	if _, err := PortUsers(111, "sctp"); err == nil {
		t.Error("unknown netid accepted")
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		users []PortUser
		want  string
	}{
		{nil, "nothing"},
		{[]PortUser{{PID: 0}}, "a socket no visible process holds (the kernel's, or another user's)"},
		{[]PortUser{{PID: 7, Command: "rpcbind"}, {PID: 7, Command: "rpcbind"}, {PID: 0}}, "rpcbind (pid 7)"},
		{[]PortUser{{PID: 7, Command: "rpcbind"}, {PID: 9}}, "rpcbind (pid 7), process (pid 9)"},
	}
	for _, tt := range tests {
		if got := Describe(tt.users); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.users, got, tt.want)
		}
	}
}

// TestPortUsersNamesRpcbind runs Debian's rpcbind on port 111 in a private
// network and mount namespace (its /run a fresh tmpfs), then asks, from
// inside the namespace, who holds port 111.
func TestPortUsersNamesRpcbind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private network namespace")
	}
	rpcbind, err := exec.LookPath("rpcbind")
	if err != nil {
		for _, p := range []string{"/usr/sbin/rpcbind", "/sbin/rpcbind"} {
			if _, serr := os.Stat(p); serr == nil {
				rpcbind, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("rpcbind not installed (apt-get install rpcbind)")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	script := fmt.Sprintf(`set -e
ip link set lo up
mount -t tmpfs tmpfs /run
%s -f &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for i in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
echo "rpcbind-pid $pid"
%s=%q GORACE=atexit_sleep_ms=0 %s
`, rpcbind, childEnv, "ports 111", os.Args[0])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "unshare", "-n", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var pid, desc string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "rpcbind-pid "); ok {
			pid = v
		}
		if v, ok := strings.CutPrefix(l, "ready "); ok {
			desc = v
		}
	}
	if want := "rpcbind (pid " + pid + ")"; pid == "" || desc != want {
		t.Fatalf("got %q, want %q; output:\n%s", desc, want, out)
	}
	t.Logf("port 111 is in use by %s", desc)
}
