package daemontest

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/portmapd/portmapd/internal/activation"
	"github.com/portmapd/portmapd/rpc"
)

// PortPair binds TCP and UDP on addr (127.0.0.1, ::1...) with one port
// number, as a portmapper and rpcinfo -n expect of a service (OnePort).
func PortPair(tb testing.TB, addr netip.Addr) (net.Listener, *net.UDPConn) {
	tb.Helper()
	ls, us := OnePort(tb, []netip.Addr{addr}, []netip.Addr{addr})
	return ls[0], us[0]
}

// OnePort binds TCP on every address of tcp and UDP on every address of
// udp with one port number: the first TCP socket at port 0, the others on
// the number the kernel chose. Every socket is held from the start, so
// nothing can take the port between picking and binding; a new number is
// taken only when another socket holds one of the others (bounded). The
// IPv6 wildcard is bound dual-stack, as systemd binds ListenStream=[::]:111
// by default. The sockets are closed when the test ends.
func OnePort(tb testing.TB, tcp, udp []netip.Addr) ([]net.Listener, []*net.UDPConn) {
	tb.Helper()
	for range 20 {
		ls, us, err := onePort(tcp, udp)
		if err == nil {
			tb.Cleanup(func() { closeSockets(ls, us) })
			return ls, us
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			tb.Fatal(err)
		}
	}
	tb.Fatalf("no port is free on TCP of %v and UDP of %v after 20 numbers", tcp, udp)
	return nil, nil
}

func onePort(tcp, udp []netip.Addr) (ls []net.Listener, us []*net.UDPConn, err error) {
	family := func(a netip.Addr) string {
		switch {
		case a.Is4():
			return "4"
		case a.IsUnspecified():
			return "" // dual-stack
		}
		return "6"
	}
	var port uint16
	for _, a := range tcp {
		// The daemon's own way of listening (TCP_DEFER_ACCEPT), so a
		// daemon handed this socket serves as it does on one it bound.
		l, err := rpc.ListenStream("tcp"+family(a), netip.AddrPortFrom(a, port).String())
		if err != nil {
			closeSockets(ls, us)
			return nil, nil, err
		}
		ls = append(ls, l)
		port = l.Addr().(*net.TCPAddr).AddrPort().Port()
	}
	for _, a := range udp {
		u, err := net.ListenUDP("udp"+family(a), net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)))
		if err != nil {
			closeSockets(ls, us)
			return nil, nil, err
		}
		us = append(us, u)
	}
	return ls, us, nil
}

func closeSockets(ls []net.Listener, us []*net.UDPConn) {
	for _, l := range ls {
		l.Close()
	}
	for _, u := range us {
		u.Close()
	}
}

// Loopback binds the sockets a portmapper on loopback serves, to hand to
// a daemon (daemon.Config.Sockets): TCP and UDP on one port of 127.0.0.1
// (PortPair) and the local socket at path. It returns them with the port;
// they are closed when the test ends.
func Loopback(tb testing.TB, path string) ([]activation.Socket, int) {
	tb.Helper()
	l, u := PortPair(tb, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	local, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { local.Close() })
	return []activation.Socket{
		{Netid: rpc.NetidTCP, Addr: l.Addr(), Listener: l},
		{Netid: rpc.NetidUDP, Addr: u.LocalAddr(), UDP: u},
		{Netid: rpc.NetidLocal, Addr: local.Addr(), Listener: local},
	}, l.Addr().(*net.TCPAddr).Port
}

// ClosedPort returns a port of 127.0.0.1 on which TCP and UDP both refuse,
// held for the test so that nothing else binds it: a TCP socket bound
// there but not listening (a SYN gets a reset) and a UDP socket connected
// to another port (datagrams from anyone else find no socket and get a
// port unreachable). A new number is taken only when another socket holds
// the UDP side (bounded).
func ClosedPort(tb testing.TB) int {
	tb.Helper()
	for range 20 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			unix.Close(fd)
			tb.Fatal(err)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			tb.Fatal(err)
		}
		port := sa.(*unix.SockaddrInet4).Port
		// Port 9 (discard) is only the peer it is connected to; nothing is
		// sent there.
		u, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
			&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
		if err == nil {
			tb.Cleanup(func() { unix.Close(fd); u.Close() })
			return port
		}
		unix.Close(fd)
		if !errors.Is(err, syscall.EADDRINUSE) {
			tb.Fatal(err)
		}
	}
	tb.Fatal("no port of 127.0.0.1 is free on both TCP and UDP after 20 tries")
	return 0
}
