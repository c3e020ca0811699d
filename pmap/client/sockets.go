package client

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Sockets as libtirpc's clnt_tli_create makes them, for clients that must
// look like a C client to a portmapper (portmapd info): from a reserved
// port when run as root, so that the portmapper takes the caller for root
// (it matters to an UNSET over TCP), and, over UDP, unconnected, so that a
// reply from another address of the host still counts.

// reservedPorts are the source ports to try, as bindresvport does: as
// root, a few reserved ports from a random start in 600 to 1023, then any
// port.
func reservedPorts() []int {
	if os.Geteuid() != 0 {
		return []int{0}
	}
	const low, n = 600, 1024 - 600
	start := rand.IntN(n)
	ports := make([]int, 0, 9)
	for i := range 8 {
		ports = append(ports, low+(start+i)%n)
	}
	return append(ports, 0)
}

// DialReserved connects over TCP to ap, from a reserved port when run as
// root. connect(2) has no timeout of its own in libtirpc; here timeout
// bounds it, so that a filtered port cannot hold the caller for the two
// minutes of SYN retries.
func DialReserved(ap netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	network := "tcp4"
	if !ap.Addr().Is4() {
		network = "tcp6"
	}
	var conn net.Conn
	var err error
	for _, port := range reservedPorts() {
		d.LocalAddr = &net.TCPAddr{Port: port}
		conn, err = d.Dial(network, ap.String())
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			break
		}
	}
	return conn, err
}

// ListenReserved opens an unconnected UDP socket of the IPv6 family if
// v6, else IPv4, from a reserved port when run as root. On IPv4 it asks
// for ICMP errors (IP_RECVERR), which is how libtirpc turns a port
// unreachable into "Connection refused" at once; libtirpc does not do it
// for IPv6, which therefore waits for the timeout.
func ListenReserved(v6 bool) (pc *net.UDPConn, err error) {
	network, ip := "udp4", net.IPv4zero
	if v6 {
		network, ip = "udp6", net.IPv6unspecified
	}
	for _, port := range reservedPorts() {
		if pc, err = net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port}); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if !v6 {
		if sc, err := pc.SyscallConn(); err == nil {
			// Best effort: without it an ICMP error is a timeout
			// instead of a refusal.
			_ = sc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_RECVERR, 1)
			})
		}
	}
	return pc, nil
}
