package rpcinfo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Servers that answer rpcinfo's calls with what no portmapper should: the
// client must end every query, within its timeout, without allocating
// what a length claims.

// udpServer answers each datagram on a loopback port with respond's
// datagrams (none: silence) until the test ends.
func udpServer(t *testing.T, respond func(call []byte) [][]byte) int {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			for _, out := range respond(append([]byte(nil), buf[:n]...)) {
				pc.WriteToUDP(out, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// tcpServer runs serve on every connection to a loopback port.
func tcpServer(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func xidOf(call []byte) uint32 {
	if len(call) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(call)
}

// runInfo runs rpcinfo with args and returns what it printed, its exit
// status and how long it took.
func runInfo(t *testing.T, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	var o, e bytes.Buffer
	start := time.Now()
	code = Run(args, Options{Stdout: &o, Stderr: &e, Socket: "/nonexistent/rpcbind.sock"})
	return o.String(), e.String(), code, time.Since(start)
}

func TestHostileDatagrams(t *testing.T) {
	t.Parallel()
	const timeout = 600 * time.Millisecond
	for _, c := range []struct {
		name    string
		respond func(call []byte) [][]byte
		stderr  string
	}{
		{"silence", func([]byte) [][]byte { return nil },
			"rpcinfo: can't contact rpcbind: : RPC: Timed out\n"},
		{"a reply that is not one", func(call []byte) [][]byte { return [][]byte{xdr.AppendUint32(call[:4:4], 7)} },
			"rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n"},
		{"a row whose string claims 4 GB", func(call []byte) [][]byte {
			b := rpc.AppendSuccess(nil, xidOf(call))
			for _, w := range []uint32{1, 100000, 4, 0xffffffff} {
				b = xdr.AppendUint32(b, w)
			}
			return [][]byte{b}
		}, "rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n"},
		{"a list longer than the datagram", func(call []byte) [][]byte {
			b := rpc.AppendSuccess(nil, xidOf(call))
			for range 2000 {
				for _, w := range []uint32{1, 100000, 4, 0, 0, 0} {
					b = xdr.AppendUint32(b, w)
				}
			}
			return [][]byte{b}
		}, "rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n"},
		{"a flood of other calls' replies", func(call []byte) [][]byte {
			var out [][]byte
			for i := range uint32(200) {
				out = append(out, rpc.AppendSuccess(nil, xidOf(call)+1+i))
			}
			return out
		}, "rpcinfo: can't contact rpcbind: : RPC: Timed out\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			port := udpServer(t, c.respond)
			_, stderr, code, took := runInfo(t, "-n", fmt.Sprint(port), "--timeout", timeout.String(), "-T", "udp", "127.0.0.1")
			if code != 1 || stderr != c.stderr {
				t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, c.stderr)
			}
			if took > timeout+2*time.Second {
				t.Errorf("took %v with a timeout of %v", took, timeout)
			}
		})
	}
}

func TestHostileStreams(t *testing.T) {
	t.Parallel()
	const timeout = 600 * time.Millisecond
	readCall := func(c net.Conn) []byte {
		rec, err := rpc.NewRecordReader(c, 1<<16).Next()
		if err != nil {
			return nil
		}
		return rec
	}
	for _, c := range []struct {
		name   string
		serve  func(net.Conn)
		stderr string
	}{
		{"silence", func(c net.Conn) { readCall(c); io.Copy(io.Discard, c) },
			"rpcinfo: can't contact rpcbind: : RPC: Timed out\n"},
		{"a record header claiming 2 GB", func(c net.Conn) {
			readCall(c)
			c.Write([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
			io.Copy(io.Discard, c)
		}, "rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n"},
		{"records that are not replies, without end", func(c net.Conn) {
			readCall(c)
			junk := rpc.MarkRecord(xdr.AppendUint32(xdr.AppendUint32(make([]byte, 4, 64), 0), 0))
			for {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(junk); err != nil {
					return
				}
			}
		}, "rpcinfo: can't contact rpcbind: : RPC: Timed out\n"},
		{"empty fragments without end", func(c net.Conn) {
			readCall(c)
			for {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte{0, 0, 0, 0}); err != nil {
					return
				}
			}
		}, "rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n"},
		{"a connection closed at once", func(c net.Conn) {},
			"rpcinfo: can't contact rpcbind: : RPC: Unable to receive; errno = Connection reset by peer\n"},
		{"a reply cut short", func(c net.Conn) {
			call := readCall(c)
			b := rpc.AppendSuccess(nil, xidOf(call))
			b = xdr.AppendUint32(b, 1)
			c.Write(rpc.MarkRecord(append(make([]byte, 4), b...)))
			io.Copy(io.Discard, c)
		}, "rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			port := tcpServer(t, c.serve)
			_, stderr, code, took := runInfo(t, "-n", fmt.Sprint(port), "--timeout", timeout.String(), "-T", "tcp", "127.0.0.1")
			if code != 1 || stderr != c.stderr {
				t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, c.stderr)
			}
			if took > timeout+2*time.Second {
				t.Errorf("took %v with a timeout of %v", took, timeout)
			}
		})
	}
}

// TestHostileVersionRange: a service that claims every version is pinged
// for the first maxVersionsPinged, where rpcinfo would go on for four
// billion.
func TestHostileVersionRange(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		respond func(call []byte) [][]byte
	}{
		{"answers every version", func(call []byte) [][]byte { return [][]byte{rpc.AppendSuccess(nil, xidOf(call))} }},
		{"names the widest range", func(call []byte) [][]byte {
			if binary.BigEndian.Uint32(call[16:]) == 7 {
				return [][]byte{rpc.AppendSuccess(nil, xidOf(call))}
			}
			return [][]byte{rpc.AppendProgMismatch(nil, xidOf(call), 0, 0xffffffff)}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			port := udpServer(t, c.respond)
			addr := fmt.Sprintf("127.0.0.1.%d.%d", port>>8, port&255)
			stdout, stderr, code, took := runInfo(t, "--timeout", "2s", "-a", addr, "-T", "udp", "400000")
			lines := strings.Count(stdout, "\n")
			if lines != maxVersionsPinged {
				t.Errorf("%d pings printed, want %d", lines, maxVersionsPinged)
			}
			want := fmt.Sprintf("rpcinfo: the server claims versions 0 to 4294967295; pinging the first %d\n", maxVersionsPinged)
			if !strings.HasPrefix(stderr, want) {
				t.Errorf("stderr %q", stderr)
			}
			if took > 30*time.Second {
				t.Errorf("took %v", took)
			}
			_ = code
		})
	}
}
