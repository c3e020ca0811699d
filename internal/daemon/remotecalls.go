package daemon

import (
	"net"
	"net/netip"
	"syscall"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/rmtcall"
	"github.com/portmapd/portmapd/rpc"
)

// rpcMulticast is the group libtirpc's rpc_broadcast sends IPv6
// "broadcasts" to (RPCB_MULTICAST_ADDR).
var rpcMulticast = netip.MustParseAddr("ff02::202")

// startRemoteCalls, when Config.RemoteCalls is set, opens the forwarder,
// hands it to the service and joins the RPC multicast group, so that
// CALLIT, BCAST and INDIRECT are forwarded as rpcbind -r forwards them.
// It must run after d.Server exists: the forwarder answers through it.
func (d *Daemon) startRemoteCalls() error {
	if !d.cfg.RemoteCalls {
		return nil
	}
	cfg := d.cfg.RemoteCallLimits
	if d.sys.metrics != nil {
		cfg.Observer = d.sys.metrics
	}
	f, err := rmtcall.New(cfg, d.log.Named("rmtcall"))
	if err != nil {
		return err
	}
	d.Service.Forwarder = f
	joined := false
	for _, u := range d.udp {
		if u.netid != rpc.NetidUDP6 {
			continue
		}
		// Multicast reaches only a socket bound to the wildcard address;
		// one bound to a unicast address (--host) never sees it.
		if ap, ok := netip.AddrFromSlice(u.conn.LocalAddr().(*net.UDPAddr).IP); ok && ap.IsUnspecified() {
			joinRPCMulticast(u.conn, d.log)
			joined = true
		}
	}
	if !joined {
		d.log.Info("no wildcard udp6 socket: IPv6 broadcasts (ff02::202) will not be answered")
	}
	v4, v6 := f.Addrs()
	d.log.Info("forwarding remote calls", zap.Stringer("from_udp", v4), zap.Stringer("from_udp6", v6))
	return nil
}

// stopRemoteCalls closes the forwarder once the server has stopped.
func (d *Daemon) stopRemoteCalls() {
	if f, ok := d.Service.Forwarder.(*rmtcall.Forwarder); ok {
		f.Close()
	}
}

// joinRPCMulticast joins ff02::202 on conn on every multicast-capable
// interface with an IPv6 address, as rpcbind's network_init does at start.
// rpcbind joins on a socket of its own and relies on Linux delivering
// multicast to every socket on the port (IPV6_MULTICAST_ALL); joining on
// the serving socket itself does not depend on that.
func joinRPCMulticast(conn *net.UDPConn, log *zap.Logger) {
	ifs, err := net.Interfaces()
	if err != nil {
		log.Warn("cannot list interfaces to join ff02::202", zap.Error(err))
		return
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		log.Warn("cannot join ff02::202", zap.Error(err))
		return
	}
	var joined []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagMulticast == 0 || !hasIPv6(&ifc) {
			continue
		}
		mreq := &syscall.IPv6Mreq{Multiaddr: rpcMulticast.As16(), Interface: uint32(ifc.Index)}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptIPv6Mreq(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, mreq)
		}); err != nil {
			serr = err
		}
		if serr != nil {
			log.Warn("cannot join ff02::202", zap.String("interface", ifc.Name), zap.Error(serr))
			continue
		}
		joined = append(joined, ifc.Name)
	}
	log.Info("joined the RPC multicast group", zap.Stringer("group", rpcMulticast), zap.Strings("interfaces", joined))
}

func hasIPv6(ifc *net.Interface) bool {
	addrs, err := ifc.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil {
			return true
		}
	}
	return false
}
