package rpcinfo

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
)

// rpc_broadcast's timing: a round of sends, a wait of 4 seconds, a
// second round and a wait of 8. A wait starts again after every answer,
// as poll(2) is called again; maxBroadcast bounds the whole, which C does
// not, so that a responder answering forever cannot hold rpcinfo.
const (
	bcastInit    = 4 * time.Second
	bcastWait    = 8 * time.Second
	maxBroadcast = 60 * time.Second
)

// rpcbMulticast is where RPCBIND broadcasts go on IPv6 (RFC 1833).
var rpcbMulticast = netip.MustParseAddr("ff02::202")

type bcastTransport struct {
	nc      netconf
	pc      *net.UDPConn
	targets []*net.UDPAddr
	v4      bool
}

type bcastPacket struct {
	t    *bcastTransport
	from *net.UDPAddr
	data []byte
}

// rpcBroadcast is libtirpc's rpc_broadcast of a NULL call to (prog, vers)
// over the visible datagram transports: an RPCBIND v3 CALLIT to every
// broadcast address (and to ff02::202 on every multicast interface, once
// per IPv6 address it has), plus a PMAP v2 CALLIT with the next xid on
// every UDP transport when IPv4 broadcast is possible. Each answer is
// returned in the order it came.
func (r *runner) rpcBroadcast(prog, vers uint32) ([]bcastReply, Status) {
	port, ok := r.servicePort("sunrpc")
	if !ok {
		return nil, UnknownProto
	}
	var ts []*bcastTransport
	pmapFlag := false
	stat := Success
	for _, nc := range r.nettype("datagram") {
		family, stream, ok := nc.sockinfo()
		if !ok || stream {
			continue
		}
		targets := broadcastTargets(family, port)
		if len(targets) == 0 {
			continue
		}
		pc, err := listenBroadcast(family)
		if err != nil {
			stat = CantSend
			continue
		}
		defer pc.Close()
		t := &bcastTransport{nc: nc, pc: pc, targets: targets, v4: family == syscall.AF_INET}
		if t.v4 {
			pmapFlag = true
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		if stat == Success {
			stat = UnknownProto
		}
		return nil, stat
	}

	cred := authSysCred()
	xid := uint32(time.Now().Unix()) ^ rand.Uint32()
	msg3 := rpc.AppendCall(nil, xid, pmap.Program, pmap.VersRPCB3, procCallit, cred)
	msg3 = pmap.AppendRmtcallArgs(msg3, &pmap.RmtcallArgs{Prog: prog, Vers: vers})
	msg2 := rpc.AppendCall(nil, xid+1, pmap.Program, pmap.VersPMAP, procCallit, cred)
	msg2 = pmap.AppendRmtcallArgs(msg2, &pmap.RmtcallArgs{Prog: prog, Vers: vers})

	packets := make(chan bcastPacket, 64)
	done := make(chan struct{})
	defer close(done)
	for _, t := range ts {
		go func() {
			for {
				buf := make([]byte, udpMsgSize)
				n, from, err := t.pc.ReadFromUDP(buf)
				if err != nil {
					return
				}
				select {
				case packets <- bcastPacket{t, from, buf[:n]}:
				case <-done:
					return
				}
			}
		}()
	}

	init, wait := bcastInit, bcastWait
	if r.timeout > 0 {
		init = max(r.timeout/3, 10*time.Millisecond)
		wait = 2 * init
	}
	hardStop := time.After(min(maxBroadcast, 3*(init+wait)))
	var replies []bcastReply
	for msec := init; msec <= wait; msec += msec {
		for _, t := range ts {
			for _, to := range t.targets {
				if _, err := t.pc.WriteToUDP(msg3, to); err != nil {
					stat = CantSend
					continue
				}
				if pmapFlag {
					if _, err := t.pc.WriteToUDP(msg2, to); err != nil {
						stat = CantSend
					}
				}
			}
		}
		timer := time.NewTimer(msec)
	recv:
		for {
			select {
			case p := <-packets:
				if b, ok := r.bcastAnswer(p, xid, pmapFlag); ok {
					replies = append(replies, b)
				}
				timer.Reset(msec)
			case <-timer.C:
				stat = TimedOut
				break recv
			case <-hardStop:
				timer.Stop()
				return replies, TimedOut
			}
		}
	}
	return replies, stat
}

// bcastAnswer decodes one datagram as an answer to either call.
func (r *runner) bcastAnswer(p bcastPacket, xid uint32, pmapFlag bool) (bcastReply, bool) {
	if len(p.data) < 4 {
		return bcastReply{}, false
	}
	got := uint32(p.data[0])<<24 | uint32(p.data[1])<<16 | uint32(p.data[2])<<8 | uint32(p.data[3])
	v2 := false
	switch {
	case got == xid:
	case pmapFlag && got == xid+1:
		v2 = true
	default:
		return bcastReply{}, false
	}
	d := newReader(p.data)
	_, e, ok := parseReply(d)
	if !ok || e.Stat != Success {
		return bcastReply{}, false
	}
	var who taddr
	if v2 {
		// xdr_rmtcallres: the port (through xdr_reference, which has no
		// optional-data flag), the results' length, then void results.
		port := d.u32()
		d.u32()
		if !d.ok() {
			return bcastReply{}, false
		}
		from := p.from.AddrPort().Addr()
		if from.Is4In6() {
			from = from.Unmap()
		}
		who = ipTaddr(netip.AddrPortFrom(from, uint16(port)))
	} else {
		ua := d.str(maxWrapStr)
		d.u32()
		if !d.ok() {
			return bcastReply{}, false
		}
		a, ok := uaddr2taddr(p.t.nc, ua)
		if !ok {
			// __ipv6v4_fixup: an IPv6 universal address in an answer
			// that came over IPv4 names the sender's address.
			from := p.from.AddrPort().Addr().Unmap()
			v6, ok6 := pmapLenient6(ua)
			if !from.Is4() || !ok6 {
				return bcastReply{}, false
			}
			a = ipTaddr(netip.AddrPortFrom(from, v6.Port()))
		}
		who = a
	}
	return bcastReply{Addr: who.uaddr(), Host: r.nameinfo(who.IP.Addr()), Netid: p.t.nc.Netid}, true
}

func pmapLenient6(ua string) (netip.AddrPort, bool) {
	ap, ok := pmap.LenientUaddr(ua, 6)
	return ap, ok && ap.Addr().Is6()
}

// nameinfo is getnameinfo without flags: the host's name if the address
// resolves, else the numeric address with its interface.
func (r *runner) nameinfo(a netip.Addr) string {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	if names, err := r.lookupAddr(ctx, a.WithZone("").String()); err == nil && len(names) > 0 {
		return strings.TrimSuffix(names[0], ".")
	}
	return a.String()
}

// broadcastTargets is __rpc_getbroadifs: for IPv4 the broadcast address
// of every address of an interface that is up and can broadcast; for
// IPv6, for every address of an interface that is up and multicasts,
// ff02::202 on that interface.
func broadcastTargets(family, port int) []*net.UDPAddr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []*net.UDPAddr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip4 := ipn.IP.To4()
			switch {
			case family == syscall.AF_INET && ip4 != nil && ifc.Flags&net.FlagBroadcast != 0:
				mask := ipn.Mask
				if len(mask) == 16 {
					mask = mask[12:]
				}
				bc := make(net.IP, 4)
				for i := range bc {
					bc[i] = ip4[i] | ^mask[i]
				}
				out = append(out, &net.UDPAddr{IP: bc, Port: port})
			case family == syscall.AF_INET6 && ip4 == nil && ifc.Flags&net.FlagMulticast != 0:
				out = append(out, &net.UDPAddr{IP: rpcbMulticast.AsSlice(), Port: port, Zone: ifc.Name})
			}
		}
	}
	return out
}

func listenBroadcast(family int) (*net.UDPConn, error) {
	network, ip := "udp4", net.IPv4zero
	if family == syscall.AF_INET6 {
		network, ip = "udp6", net.IPv6unspecified
	}
	pc, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	if sc, err := pc.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { // without it, the send fails with EACCES
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		})
	}
	return pc, nil
}

// authSysCred is authunix_create_default's credential: the host name,
// the effective uid and gid and at most 16 supplementary groups.
func authSysCred() rpc.OpaqueAuth {
	host, _ := os.Hostname()
	if len(host) > rpc.MaxMachineName {
		host = host[:rpc.MaxMachineName]
	}
	p := rpc.AuthSysParams{Stamp: uint32(time.Now().Unix()), MachineName: []byte(host),
		UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if p.NGIDs == rpc.MaxGroups {
			break
		}
		p.GIDs[p.NGIDs] = uint32(g)
		p.NGIDs++
	}
	return rpc.OpaqueAuth{Flavor: rpc.AuthSys, Body: rpc.AppendAuthSys(nil, &p)}
}
