package rpc

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/nstest"
	"github.com/portmapd/portmapd/xdr"
	"golang.org/x/sys/unix"
)

// A storm of connections that each carry one call and close: every call
// is answered, and once the clients are gone the server holds none of
// their connections and has counted each one opened and closed once.
func TestServerNewConnectionPerCall(t *testing.T) {
	obs := &countingObserver{}
	ts := startServer(t, &Server{Observer: obs})
	const clients, calls = 16, 20
	var wg sync.WaitGroup
	for i := range clients {
		network, addr := "tcp", ts.tcp.Addr().String()
		if i%2 == 1 {
			network, addr = "unix", ts.unixPath
		}
		wg.Go(func() {
			for k := range uint32(calls) {
				c, err := net.Dial(network, addr)
				if err != nil {
					t.Error(err)
					return
				}
				sc := &streamClient{conn: c, rr: NewRecordReader(c, 1<<20)}
				sc.send(t, testCall(k, 1, procNull))
				expectReply(t, sc, AppendSuccess(nil, k))
				c.Close()
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.mu.Lock()
		open := len(ts.conns)
		ts.mu.Unlock()
		if open == 0 && obs.closed.Load() == clients*calls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still tracked, %d of %d counted closed", open, obs.closed.Load(), clients*calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := obs.opened.Load(); n != clients*calls {
		t.Errorf("%d connections counted opened, want %d", n, clients*calls)
	}
}

// A connection whose first call was answered on the fast path goes on to
// the general path with its next ones, on both kinds of socket.
func TestServerSecondCallAfterTheFirst(t *testing.T) {
	ts := startServer(t, &Server{})
	for _, dial := range []struct{ network, addr string }{{"tcp", ts.tcp.Addr().String()}, {"unix", ts.unixPath}} {
		c := dialStream(t, dial.network, dial.addr)
		for k := range uint32(3) {
			c.send(t, testCall(k, 1, procNull))
			expectReply(t, c, AppendSuccess(nil, k))
			// Let the connection settle in the tail between calls.
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A first call whose reply waits (a change being written to disk) is
// answered by the fast path once the wait ends, a failed wait with
// SYSTEM_ERR, and the accepting goroutine is not held meanwhile: new
// connections are served while the wait lasts.
func TestServerReplyAfterOnFirstCall(t *testing.T) {
	release := make(chan struct{})
	ts := heldServer(t, release)
	var held []*streamClient
	for _, dial := range []struct{ network, addr string }{{"tcp", ts.tcp.Addr().String()}, {"unix", ts.unixPath}} {
		c := dialStream(t, dial.network, dial.addr)
		c.send(t, testCall(1, 1, 1))
		held = append(held, c)
		other := dialStream(t, dial.network, dial.addr)
		other.send(t, testCall(2, 1, procNull))
		expectReply(t, other, AppendSuccess(nil, 2))
		failed := dialStream(t, dial.network, dial.addr)
		failed.send(t, testCall(3, 1, 2))
		expectReply(t, failed, AppendAccepted(nil, 3, SystemErr))
	}
	for _, c := range held {
		if got, err := c.recv(t, silenceWait); err == nil {
			t.Fatalf("held reply %x sent before its wait ended", got)
		}
	}
	close(release)
	for _, c := range held {
		expectReply(t, c, xdr.AppendUint32(AppendSuccess(nil, 1), 7))
		// The connection goes on to serve its next call.
		c.send(t, testCall(4, 1, procNull))
		expectReply(t, c, AppendSuccess(nil, 4))
	}
}

// A caller over IPv6 link-local keeps its scope through the fast path:
// GETADDR answers such a caller with an address of the same link, which
// it finds by the zone. The test runs again in a network namespace of its
// own and gives that namespace's loopback a link-local address.
func TestFastPathKeepsALinkLocalCallersZone(t *testing.T) {
	if !nstest.Inside(t, "ip") {
		return
	}
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "fe80::1/64", "dev", "lo", "nodad"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListenStream("tcp6", "[fe80::1%lo]:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: testMux()}
	done := make(chan error, 1)
	go func() { done <- s.ServeStream(l, NetidTCP6) }()
	defer func() {
		_ = s.Shutdown(context.Background())
		<-done
	}()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp6", net.JoinHostPort("fe80::1%lo", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := &streamClient{conn: c, rr: NewRecordReader(c, 1<<20)}
	sc.send(t, testCall(1, 1, procWhoami))
	w := parseWhoami(t, expectReply(t, sc, nil))
	want := netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(strconv.Itoa(lo.Index)), netip.MustParseAddrPort(c.LocalAddr().String()).Port())
	if w.remote != want.String() {
		t.Errorf("remote %q, want %q (the scope as a numeric zone)", w.remote, want)
	}
}

// Every event loop's thread runs with the short slice (where the kernel
// has custom slices), and has its own back once the loop ends.
func TestEventLoopThreadsAskForAShortSlice(t *testing.T) {
	probe := make(chan uint64)
	go func() {
		restore := shortenSlice()
		defer restore()
		var got uint64
		if attr, err := unix.SchedGetAttr(0, 0); err == nil {
			got = attr.Runtime
		}
		probe <- got
	}()
	if got := <-probe; got != uint64(loopSlice) {
		t.Skipf("this kernel keeps no custom slice (asked for %v, got %d ns)", loopSlice, got)
	}
	// The probe's thread and an earlier test's loops give theirs back.
	waitShortSliceThreads(t, 0)
	ts := startServer(t, &Server{})
	for _, dial := range [][2]string{{"tcp", ts.tcp.Addr().String()}, {"unix", ts.unixPath}} {
		c := dialStream(t, dial[0], dial[1])
		c.send(t, testCall(1, 1, procNull))
		expectReply(t, c, AppendSuccess(nil, 1))
		c.close()
	}
	waitShortSliceThreads(t, 2*min(runtime.GOMAXPROCS(0), maxTails)) // the TCP and the local listener's loops
	ts.stop(t)
	waitShortSliceThreads(t, 0)
}

// waitShortSliceThreads waits for this process to have want threads with
// the loops' slice.
func waitShortSliceThreads(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := shortSliceThreads(t)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d threads with a %v slice, want %d", n, loopSlice, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shortSliceThreads counts this process's threads whose slice is
// loopSlice.
func shortSliceThreads(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip(err)
	}
	n := 0
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if attr, err := unix.SchedGetAttr(tid, 0); err == nil && attr.Runtime == uint64(loopSlice) {
			n++
		}
	}
	return n
}

// The daemon's TCP listeners are plain TCP, as rpcbind's are, not the
// MPTCP that Go's listeners are by default where the kernel has it.
func TestStreamListenerIsPlainTCP(t *testing.T) {
	l, err := ListenStream("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw, err := l.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var proto int
	var perr error
	if err := raw.Control(func(fd uintptr) { proto, perr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) }); err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatal(perr)
	}
	if proto != unix.IPPROTO_TCP {
		t.Errorf("listener protocol %d, want IPPROTO_TCP (%d)", proto, unix.IPPROTO_TCP)
	}
}
