package daemon_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// startDaemon runs a whole daemon on loopback.
func startDaemon(tb testing.TB) int {
	tb.Helper()
	cfg := daemon.Config{}
	d, err := daemontest.New(tb, &cfg, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	daemontest.Serve(tb, d)
	for i := 0; i < 100; i++ {
		d.Registry.Set(pmap.Mapping{Prog: 300000 + uint32(i), Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1", Owner: "superuser"})
		d.Registry.Set(pmap.Mapping{Prog: 300000 + uint32(i), Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: "superuser"})
	}
	return cfg.Port
}

func getportCall(xid uint32) []byte {
	b := rpc.AppendCall(nil, xid, pmap.Program, pmap.VersPMAP, pmap.ProcGetport, rpc.OpaqueAuth{})
	for _, v := range []uint32{300042, 1, pmap.ProtoUDP, 0} {
		b = xdr.AppendUint32(b, v)
	}
	return b
}

func getaddrCall(xid uint32) []byte {
	b := rpc.AppendCall(nil, xid, pmap.Program, pmap.VersRPCB4, pmap.ProcGetaddr, rpc.OpaqueAuth{})
	b = xdr.AppendUint32(b, 300042)
	b = xdr.AppendUint32(b, 1)
	b = xdr.AppendString(b, "udp")
	b = xdr.AppendString(b, "")
	return xdr.AppendString(b, "")
}

// BenchmarkUDP measures a whole exchange, datagram in to reply out,
// through the real daemon on loopback; the client side allocates
// nothing, so allocs/op is the daemon's.
func BenchmarkUDP(b *testing.B) {
	port := startDaemon(b)
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for name, msg := range map[string][]byte{"GETPORT": getportCall(7), "GETADDR": getaddrCall(7)} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 1500)
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := conn.Write(msg); err != nil {
					b.Fatal(err)
				}
				n, err := conn.Read(buf)
				if err != nil || n < 28 {
					b.Fatalf("reply %x: %v", buf[:n], err)
				}
			}
		})
	}
}

// BenchmarkTCPRecord measures a GETPORT over a persistent connection:
// record in, record out.
func BenchmarkTCPRecord(b *testing.B) {
	port := startDaemon(b)
	conn, err := net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	msg := getportCall(9)
	rec := binary.BigEndian.AppendUint32(nil, 1<<31|uint32(len(msg)))
	rec = append(rec, msg...)
	buf := make([]byte, 4+28)
	conn.SetDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(rec); err != nil {
			b.Fatal(err)
		}
		if _, err := readFull(conn, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// The daemon's own rows and a lookup through the real sockets work; the
// benchmarks above rely on it.
func TestDaemonAnswersOnLoopback(t *testing.T) {
	port := startDaemon(t)
	conn, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write(getportCall(5))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	d := xdr.NewDecoder(buf[:n])
	if _, err := rpc.ParseReply(d); err != nil {
		t.Fatal(err)
	}
	if p, _ := d.Uint32(); p != 2049 {
		t.Fatalf("GETPORT = %d, want 2049", p)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
