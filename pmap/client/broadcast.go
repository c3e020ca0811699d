package client

import (
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/portmapd/portmapd/pmap"
)

// Broadcast as libtirpc's rpc_broadcast does it: rounds of the same calls
// to every broadcast address of the host, answers taken as they come
// until a round's wait passes without one.

// RPCBMulticast is where RPCBIND broadcasts go on IPv6 (RFC 1833).
var RPCBMulticast = netip.MustParseAddr("ff02::202")

// BroadcastSocket is one socket a broadcast goes out on and the addresses
// it goes to there.
type BroadcastSocket struct {
	Conn    *net.UDPConn
	Targets []netip.AddrPort
}

// BroadcastTargets is libtirpc's __rpc_getbroadifs at port: for IPv4
// the broadcast address of every address of an interface that is up and
// can broadcast; for IPv6 (v6), for every address of an interface that
// is up and multicasts, RPCBMulticast on that interface.
func BroadcastTargets(v6 bool, port uint16) []netip.AddrPort {
	var out []netip.AddrPort
	pmap.EachInterfaceAddr(func(ifc *net.Interface, ipn *net.IPNet) {
		ip4 := ipn.IP.To4()
		switch {
		case !v6 && ip4 != nil && ifc.Flags&net.FlagBroadcast != 0:
			mask := ipn.Mask
			if len(mask) == 16 {
				mask = mask[12:]
			}
			var bc [4]byte
			for i := range bc {
				bc[i] = ip4[i] | ^mask[i]
			}
			out = append(out, netip.AddrPortFrom(netip.AddrFrom4(bc), port))
		case v6 && ip4 == nil && ifc.Flags&net.FlagMulticast != 0:
			out = append(out, netip.AddrPortFrom(RPCBMulticast.WithZone(ifc.Name), port))
		}
	})
	return out
}

// ListenBroadcast opens a UDP socket that may send to broadcast
// addresses, of the IPv6 family if v6.
func ListenBroadcast(v6 bool) (*net.UDPConn, error) {
	network, ip := "udp4", net.IPv4zero
	if v6 {
		network, ip = "udp6", net.IPv6unspecified
	}
	pc, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	if sc, err := pc.SyscallConn(); err == nil {
		// Without it a send to a broadcast address fails (EACCES), and
		// that error reaches the caller.
		_ = sc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		})
	}
	return pc, nil
}

// BroadcastSchedule is rpc_broadcast's timing: a round of sends, a wait
// of First, then rounds with the wait doubled while it is at most Last.
// A wait starts again after every answer, as poll(2) is called again;
// Max bounds the whole, which C does not, so that a responder answering
// forever cannot hold the caller.
type BroadcastSchedule struct {
	First, Last, Max time.Duration
}

// Broadcast sends every message of msgs on every socket to each of its
// targets, round after round on schedule s, and hands each datagram that
// comes back to answer, with the index of its socket. A target that
// refuses one message is not sent the rest of the round's: as in
// libtirpc, the broadcast goes on and ends, as it always does, when its
// time is up.
func Broadcast(socks []BroadcastSocket, msgs [][]byte, s BroadcastSchedule, maxReply int,
	answer func(sock int, from netip.AddrPort, b []byte)) {
	type packet struct {
		sock int
		from netip.AddrPort
		data []byte
	}
	packets := make(chan packet, 64)
	done := make(chan struct{})
	defer close(done)
	for i, sk := range socks {
		go func() {
			for {
				buf := make([]byte, maxReply)
				n, from, err := sk.Conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				select {
				case packets <- packet{i, from, buf[:n]}:
				case <-done:
					return
				}
			}
		}()
	}
	hardStop := time.NewTimer(s.Max)
	defer hardStop.Stop()
	for wait := s.First; wait <= s.Last; wait += wait {
		for _, sk := range socks {
			for _, to := range sk.Targets {
				for _, m := range msgs {
					if _, err := sk.Conn.WriteToUDPAddrPort(m, to); err != nil {
						break
					}
				}
			}
		}
		timer := time.NewTimer(wait)
	recv:
		for {
			select {
			case p := <-packets:
				answer(p.sock, p.from, p.data)
				timer.Reset(wait)
			case <-timer.C:
				break recv
			case <-hardStop.C:
				timer.Stop()
				return
			}
		}
	}
}
