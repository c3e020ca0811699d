package rmtcall

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// portmapper is pmap's service with the forwarder, served by an rpc.Server
// on an ephemeral loopback port: the path a remote call takes in the
// daemon.
type portmapper struct {
	f    *Forwarder
	reg  *pmap.Registry
	addr netip.AddrPort
}

func newPortmapper(t *testing.T) *portmapper {
	t.Helper()
	f := newForwarder(t, Config{})
	reg := pmap.NewRegistry()
	svc := &pmap.Service{Registry: reg, Forwarder: f}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	svc.AddTransport(rpc.NetidUDP, pmap.FormatUaddr(addr))
	mux := rpc.NewMux()
	svc.Register(mux)
	srv := &rpc.Server{Handler: mux}
	done := make(chan struct{})
	go func() { srv.ServeUDP(conn, rpc.NetidUDP); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return &portmapper{f: f, reg: reg, addr: addr}
}

// call sends msg to the portmapper and returns its reply, or nil when none
// comes within quiet.
func (p *portmapper) call(t *testing.T, msg []byte) []byte {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(quiet * 5))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func rmtcallMsg(xid, vers, proc uint32, prog, pvers, pproc uint32, args []byte) []byte {
	b := rpc.AppendCall(nil, xid, pmap.Program, vers, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
	b = xdr.AppendUint32(b, prog)
	b = xdr.AppendUint32(b, pvers)
	b = xdr.AppendUint32(b, pproc)
	return xdr.AppendOpaque(b, args)
}

// CALLIT and INDIRECT travel from a UDP caller through the portmapper to
// the registered service and back, answered from the portmapper's port.
func TestRemoteCallThroughThePortmapper(t *testing.T) {
	p := newPortmapper(t)
	svc := newService(t, "udp4")
	port := svc.addr().Port()
	p.reg.Set(pmap.Mapping{Prog: 400300, Vers: 1, Netid: rpc.NetidUDP,
		Addr: pmap.FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), port)), Owner: pmap.OwnerSuperuser})
	uaddr := pmap.FormatUaddr(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))

	answer := func() {
		got := svc.next()
		svc.answer(got, got.args) // an echo
	}
	for _, tt := range []struct {
		name       string
		vers, proc uint32
		address    []byte
	}{
		{"v2 CALLIT", pmap.VersPMAP, pmap.ProcCallit, words(uint32(port))},
		{"v3 CALLIT", pmap.VersRPCB3, pmap.ProcCallit, xdr.AppendString(nil, uaddr)},
		{"v4 INDIRECT", pmap.VersRPCB4, pmap.ProcIndirect, xdr.AppendString(nil, uaddr)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan []byte)
			go func() { done <- p.call(t, rmtcallMsg(0x77, tt.vers, tt.proc, 400300, 1, 1, []byte("ping"))) }()
			answer()
			want := xdr.AppendOpaque(append(rpc.AppendSuccess(nil, 0x77), tt.address...), []byte("ping"))
			if reply := <-done; !bytes.Equal(reply, want) {
				t.Errorf("reply\n got  %x\n want %x", reply, want)
			}
		})
	}
	// A registered program whose service stays silent: the caller hears
	// nothing, and the call waits in the table.
	if reply := p.call(t, rmtcallMsg(0x78, pmap.VersRPCB4, pmap.ProcIndirect, 400300, 1, 1, nil)); reply != nil {
		t.Errorf("silent service: reply %x", reply)
	}
	svc.next()
	if n := p.f.InFlight(); n != 1 {
		t.Errorf("%d in flight, want the silent service's call", n)
	}
	// Refusals stay as they are without forwarding.
	if reply, want := p.call(t, rmtcallMsg(0x79, pmap.VersRPCB4, pmap.ProcIndirect, 400377, 1, 0, nil)),
		rpc.AppendAccepted(nil, 0x79, rpc.ProgUnavail); !bytes.Equal(reply, want) {
		t.Errorf("unregistered program: %x, want PROG_UNAVAIL %x", reply, want)
	}
	if reply := p.call(t, rmtcallMsg(0x7a, pmap.VersRPCB3, pmap.ProcCallit, 400377, 1, 0, nil)); reply != nil {
		t.Errorf("CALLIT of an unregistered program: reply %x", reply)
	}
	svc.none()
}

// callSize is the length of the call message as it arrived, which the
// amplification bound compares replies with.
func TestCallSizeIsTheMessageLength(t *testing.T) {
	p := rpc.AuthSysParams{MachineName: []byte("host"), UID: 1, GID: 1, NGIDs: 1}
	cred := rpc.OpaqueAuth{Flavor: rpc.AuthSys, Body: rpc.AppendAuthSys(nil, &p)}
	for _, msg := range [][]byte{
		rmtcallMsg(1, 3, 5, 400300, 1, 1, []byte("abc")),
		append(rpc.AppendCall(nil, 1, pmap.Program, 3, 5, cred), words(400300, 1, 1, 0)...),
	} {
		d := xdr.NewDecoder(msg)
		h, err := rpc.ParseCall(d)
		if err != nil {
			t.Fatal(err)
		}
		c := &rpc.Call{CallHeader: h, Args: d.Rest()}
		if got := callSize(c); got != len(msg) {
			t.Errorf("callSize %d, message %d bytes", got, len(msg))
		}
	}
}
