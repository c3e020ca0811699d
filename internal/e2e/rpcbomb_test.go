package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// rssKB reads a process's resident set size.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// rpcbombs builds, for every procedure of every version that takes a
// variable-length field, datagrams whose length prefixes claim about 1 GB
// (CVE-2017-8779): in each string of struct rpcb, in UADDR2TADDR's
// string, in TADDR2UADDR's netbuf, in the arguments of remote calls, and
// in the credential itself.
func rpcbombs() [][]byte {
	const huge = 0x3fffffff
	call := func(vers, proc uint32, args ...uint32) []byte {
		b := rpc.AppendCall(nil, 0xb0b, pmap.Program, vers, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
		for _, a := range args {
			b = xdr.AppendUint32(b, a)
		}
		return b
	}
	var out [][]byte
	for _, v := range []uint32{3, 4} {
		for _, proc := range []uint32{pmap.ProcSet, pmap.ProcUnset, pmap.ProcGetaddr, pmap.ProcGetversaddr, pmap.ProcGetaddrlist} {
			if v == 3 && proc > pmap.ProcTaddr2uaddr {
				continue
			}
			out = append(out,
				call(v, proc, 400001, 1, huge),          // r_netid
				call(v, proc, 400001, 1, 3, 0, huge),    // r_addr
				call(v, proc, 400001, 1, 0, 0, huge, 0), // r_owner
			)
		}
		out = append(out,
			call(v, pmap.ProcUaddr2taddr, huge),
			call(v, pmap.ProcTaddr2uaddr, huge, huge),
			call(v, pmap.ProcTaddr2uaddr, 16, huge),
			call(v, pmap.ProcCallit, 100024, 1, 0, huge),
		)
	}
	out = append(out, call(4, pmap.ProcIndirect, 100024, 1, 0, huge), call(2, pmap.ProcCallit, 100024, 1, 0, huge))
	// A credential that claims a gigabyte.
	cred := xdr.AppendUint32(xdr.AppendUint32(xdr.AppendUint32(nil, 0xb0c), rpc.MsgCall), rpc.Version)
	for _, w := range []uint32{pmap.Program, 2, pmap.ProcGetport, rpc.AuthSys, huge} {
		cred = xdr.AppendUint32(cred, w)
	}
	return append(out, cred)
}

// TestRpcbomb replays the rpcbomb shape thousands of times against a
// running portmapd: its memory stays within a few MB of idle and it keeps
// answering.
func TestRpcbomb(t *testing.T) {
	port, _ := startLoopbackDaemon(t)
	pid := daemonPid(t, port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetPort(ctx, pmap.Program, 2, pmap.ProtoUDP); err != nil {
		t.Fatal(err)
	}
	idle := rssKB(t, pid)

	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bombs := rpcbombs()
	sent := 0
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; round < 200 && time.Now().Before(deadline); round++ {
		for _, b := range bombs {
			conn.Write(b)
			sent++
		}
		// Pace the flood so the socket buffer does not simply drop it.
		time.Sleep(2 * time.Millisecond)
		if round%50 == 0 {
			if _, err := c.GetPort(ctx, pmap.Program, 2, pmap.ProtoUDP); err != nil {
				t.Fatalf("daemon stopped answering after %d bombs: %v", sent, err)
			}
		}
	}
	if p, err := c.GetPort(ctx, pmap.Program, 2, pmap.ProtoUDP); err != nil || p != uint32(port) {
		t.Fatalf("GETPORT after %d bombs: %d %v", sent, p, err)
	}
	after := rssKB(t, pid)
	t.Logf("%d datagrams of %d kinds; RSS %d kB idle, %d kB after", sent, len(bombs), idle, after)
	if after-idle > 8*1024 {
		t.Errorf("RSS grew by %d kB under the rpcbomb", after-idle)
	}
}

// daemonPid finds the portmapd that listens on port among our children.
func daemonPid(t *testing.T, port int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		for i, a := range args {
			if a == "--port" && i+1 < len(args) && args[i+1] == strconv.Itoa(port) {
				return pid
			}
		}
	}
	t.Fatalf("no daemon on port %d", port)
	return 0
}
