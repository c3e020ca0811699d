package rpc

import (
	"context"
	"encoding/binary"
	"golang.org/x/sys/unix"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

// getportHandler is PMAP v2 GETPORT reduced to its shape: four uint32 in,
// one out.
func getportHandler(w *Reply, c *Call) error {
	var d xdr.Decoder
	d.Reset(c.Args)
	var args [4]uint32
	for i := range args {
		v, err := d.Uint32()
		if err != nil {
			return ErrGarbageArgs
		}
		args[i] = v
	}
	w.Body = xdr.AppendUint32(w.Body, args[0]&0xffff)
	return nil
}

func getportServer() *Server {
	m := NewMux()
	m.Handle(100000, 2, []Handler{3: HandlerFunc(getportHandler)})
	s := &Server{Handler: m}
	s.init()
	return s
}

func BenchmarkDecodeGetportCall(b *testing.B) {
	msg := getportCall(0x12345678)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var sum uint32
	for b.Loop() {
		var d xdr.Decoder
		d.Reset(msg)
		h, err := ParseCall(&d)
		if err != nil {
			b.Fatal(err)
		}
		sum += h.Proc
		for range 4 {
			v, err := d.Uint32()
			if err != nil {
				b.Fatal(err)
			}
			sum += v
		}
	}
	_ = sum
}

func BenchmarkEncodeGetportReply(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSuccess(buf[:0], 0x12345678)
		buf = xdr.AppendUint32(buf, 2049)
	}
	if len(buf) != 28 {
		b.Fatalf("reply of %d bytes", len(buf))
	}
}

// BenchmarkDispatchUDP is the per-datagram work of readUDP between the read
// and the write.
func BenchmarkDispatchUDP(b *testing.B) {
	cases := []struct {
		name string
		msg  []byte
	}{
		{"auth_none", getportCall(1)},
		{"auth_sys", append(AppendCall(nil, 1, 100000, 2, 3, OpaqueAuth{AuthSys, hexBytes(b, authSysBody)}),
			words(100003, 3, 6, 0)...)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := getportServer()
			out := make([]byte, 0, maxDatagram)
			from := netip.MustParseAddrPort("192.0.2.1:700")
			c, w := new(Call), new(Reply)
			b.SetBytes(int64(len(tc.msg)))
			b.ReportAllocs()
			for b.Loop() {
				*c = Call{Netid: NetidUDP, Remote: from, uid: -1}
				ok := s.dispatch(w, out[:0], tc.msg, c)
				if !ok || len(w.Body) != 28 {
					b.Fatalf("reply %x", w.Body)
				}
			}
		})
	}
}

// cycleReader repeats data forever without allocating.
type cycleReader struct {
	data []byte
	off  int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

func BenchmarkRecordReader(b *testing.B) {
	for _, frags := range []int{1, 3} {
		name := "one_fragment"
		if frags > 1 {
			name = "three_fragments"
		}
		b.Run(name, func(b *testing.B) {
			msg := getportCall(1)
			var rec []byte
			for i := range frags {
				part := msg[i*len(msg)/frags : (i+1)*len(msg)/frags]
				rec = append(rec, frag(i == frags-1, string(part))...)
			}
			var data []byte
			for range 64 {
				data = append(data, rec...)
			}
			rr := NewRecordReader(&cycleReader{data: data}, DefaultMaxRecord)
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := rr.Next()
				if err != nil || len(m) != len(msg) {
					b.Fatalf("record of %d bytes, %v", len(m), err)
				}
			}
		})
	}
}

// BenchmarkServeUDP is a whole round trip over loopback to a server bound to
// 0.0.0.0, so that every reply carries IP_PKTINFO. The client reuses its
// buffers, so the allocations counted are the server's and the kernel
// interface's.
func BenchmarkServeUDP(b *testing.B) {
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		b.Fatal(err)
	}
	s := getportServer()
	done := make(chan error, 1)
	go func() { done <- s.ServeUDP(pc.(*net.UDPConn), NetidUDP) }()
	defer func() {
		s.Shutdown(context.Background())
		<-done
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	cl, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	msg := getportCall(1)
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cl.Write(msg); err != nil {
			b.Fatal(err)
		}
		n, err := cl.Read(buf)
		if err != nil || n != 28 {
			b.Fatalf("reply of %d bytes: %v", n, err)
		}
	}
}

var _ io.Reader = (*cycleReader)(nil)

// BenchmarkServeNewConnection is the storm's unit: a new connection per
// GETPORT, answered by the fast accept path, over TCP and the local
// socket. The client is raw system calls on reused buffers, so the
// allocations counted are the server's.
func BenchmarkServeNewConnection(b *testing.B) {
	tcp, err := ListenStream("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "s.sock")
	local, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	s := getportServer()
	done := make(chan error, 2)
	go func() { done <- s.ServeStream(tcp, NetidTCP) }()
	go func() { done <- s.ServeStream(local, NetidLocal) }()
	defer func() {
		s.Shutdown(context.Background())
		<-done
		<-done
	}()
	msg := append([]byte{0, 0, 0, 0}, getportCall(1)...)
	binary.BigEndian.PutUint32(msg, 0x80000000|uint32(len(msg)-4))
	for _, to := range []struct {
		name   string
		family int
		sa     unix.Sockaddr
	}{
		{"tcp", unix.AF_INET, &unix.SockaddrInet4{Port: tcp.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}},
		{"local", unix.AF_UNIX, &unix.SockaddrUnix{Name: path}},
	} {
		b.Run(to.name, func(b *testing.B) {
			buf := make([]byte, 256)
			b.ReportAllocs()
			for b.Loop() {
				fd, err := unix.Socket(to.family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := unix.Connect(fd, to.sa); err != nil {
					b.Fatal(err)
				}
				if _, err := unix.Write(fd, msg); err != nil {
					b.Fatal(err)
				}
				if n, err := unix.Read(fd, buf); err != nil || n != 32 {
					b.Fatalf("reply of %d bytes: %v", n, err)
				}
				unix.Close(fd)
			}
		})
	}
}
