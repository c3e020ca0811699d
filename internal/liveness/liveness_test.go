package liveness

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
)

// startService serves program 400100 version 1 (NULL only) over UDP and
// TCP on loopback with a real rpc.Server, and returns its ports and a
// function that stops it.
func startService(t *testing.T) (udpPort, tcpPort uint16, stop func()) {
	t.Helper()
	mux := rpc.NewMux()
	mux.Handle(400100, 1, []rpc.Handler{rpc.HandlerFunc(func(*rpc.Reply, *rpc.Call) error { return nil })})
	srv := &rpc.Server{Handler: mux}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(pc.(*net.UDPConn), "udp")
	go srv.ServeStream(l, "tcp")
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	t.Cleanup(stop)
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port), uint16(l.Addr().(*net.TCPAddr).Port), stop
}

func uaddr(port uint16) string {
	return pmap.FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), port))
}

func TestDeadServiceIsRemovedAfterFailuresInARow(t *testing.T) {
	udpPort, tcpPort, stop := startService(t)
	reg := pmap.NewRegistry()
	udp := pmap.Mapping{Prog: 400100, Vers: 1, Netid: "udp", Addr: uaddr(udpPort), Owner: "superuser"}
	tcp := pmap.Mapping{Prog: 400100, Vers: 1, Netid: "tcp", Addr: uaddr(tcpPort), Owner: "superuser"}
	// A version the service does not have still proves it is alive: it
	// answers PROG_MISMATCH.
	other := pmap.Mapping{Prog: 400100, Vers: 7, Netid: "udp", Addr: uaddr(udpPort), Owner: "superuser"}
	own := pmap.Mapping{Prog: pmap.Program, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.1", Owner: "superuser"}
	for _, m := range []pmap.Mapping{own, udp, tcp, other} {
		reg.Set(m)
	}
	removed := 0
	c := &Checker{Registry: reg, Log: zap.NewNop(), Failures: 3, Timeout: 300 * time.Millisecond,
		OnRemove: func() { removed++ }}
	ctx := context.Background()
	for range 4 {
		c.Round(ctx)
	}
	if reg.Len() != 4 {
		t.Fatalf("a live service lost registrations: %v", reg.Mappings())
	}

	stop()
	c.Round(ctx)
	c.Round(ctx)
	if reg.Len() != 4 {
		t.Fatalf("removed after 2 failed probes, want 3: %v", reg.Mappings())
	}
	c.Round(ctx)
	if got := reg.Mappings(); len(got) != 1 || got[0] != own {
		t.Fatalf("after 3 failed probes the table is %v, want only the portmapper's own row", got)
	}
	if c.Removed.Load() != 3 || removed != 3 {
		t.Errorf("Removed = %d, OnRemove called %d times, want 3", c.Removed.Load(), removed)
	}
}

// A service that restarts and registers a new port before its old entry
// is judged dead keeps the new entry.
func TestReRegisteredServiceIsKept(t *testing.T) {
	reg := pmap.NewRegistry()
	dead := pmap.Mapping{Prog: 400101, Vers: 1, Netid: "udp", Addr: uaddr(9), Owner: "superuser"}
	reg.Set(dead)
	c := &Checker{Registry: reg, Log: zap.NewNop(), Failures: 2, Timeout: 200 * time.Millisecond}
	c.Round(context.Background())
	udpPort, _, _ := startService(t)
	reg.Unset(dead.Prog, dead.Vers, dead.Netid, "superuser")
	alive := dead
	alive.Addr = uaddr(udpPort)
	reg.Set(alive)
	c.Round(context.Background())
	c.Round(context.Background())
	if got := reg.Mappings(); len(got) != 1 || got[0] != alive {
		t.Fatalf("table %v, want the re-registered entry", got)
	}
}

func TestProbeAddr(t *testing.T) {
	for _, tt := range []struct {
		netid, addr, want string
	}{
		{"udp", "0.0.0.0.3.232", "127.0.0.1:1000"},
		{"tcp", "192.0.2.1.3.232", "192.0.2.1:1000"},
		{"udp6", "::.3.232", "[::1]:1000"},
		{"tcp6", "0.0.0.0.3.232", ""}, // family does not match the netid
		{"local", "/run/x.sock", ""},
		{"udp", "0.0.0.0.0.0", ""}, // port 0 is nothing to probe
		{"udp", "garbage", ""},
	} {
		got := probeAddr(pmap.Mapping{Netid: tt.netid, Addr: tt.addr})
		s := ""
		if got.IsValid() {
			s = got.String()
		}
		if s != tt.want {
			t.Errorf("probeAddr(%s %s) = %q, want %q", tt.netid, tt.addr, s, tt.want)
		}
	}
}
