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
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/pmap/client/tirpc"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// rpc_broadcast's timing: a round of sends, a wait of 4 seconds, a
// second round and a wait of 8, all bounded by maxBroadcast.
const (
	bcastInit    = 4 * time.Second
	bcastWait    = 8 * time.Second
	maxBroadcast = 60 * time.Second
)

type bcastTransport struct {
	nc tirpc.Netconf
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
func (r *runner) rpcBroadcast(prog, vers uint32) ([]bcastReply, tirpc.Status) {
	port, ok := r.ServicePort("sunrpc")
	if !ok {
		return nil, tirpc.UnknownProto
	}
	var ts []*bcastTransport
	var socks []client.BroadcastSocket
	pmapFlag := false
	stat := tirpc.Success
	for _, nc := range r.Netconfig.Nettype("datagram") {
		family, stream, ok := nc.Sockinfo()
		if !ok || stream {
			continue
		}
		v6 := family == syscall.AF_INET6
		targets := client.BroadcastTargets(v6, uint16(port))
		if len(targets) == 0 {
			continue
		}
		pc, err := client.ListenBroadcast(v6)
		if err != nil {
			stat = tirpc.CantSend
			continue
		}
		defer pc.Close()
		if !v6 {
			pmapFlag = true
		}
		ts = append(ts, &bcastTransport{nc: nc})
		socks = append(socks, client.BroadcastSocket{Conn: pc, Targets: targets})
	}
	if len(ts) == 0 {
		if stat == tirpc.Success {
			stat = tirpc.UnknownProto
		}
		return nil, stat
	}

	cred := authSysCred()
	xid := uint32(time.Now().Unix()) ^ rand.Uint32()
	msg3 := rpc.AppendCall(nil, xid, pmap.Program, pmap.VersRPCB3, pmap.ProcCallit, cred)
	msgs := [][]byte{pmap.AppendRmtcallArgs(msg3, &pmap.RmtcallArgs{Prog: prog, Vers: vers})}
	if pmapFlag {
		msg2 := rpc.AppendCall(nil, xid+1, pmap.Program, pmap.VersPMAP, pmap.ProcCallit, cred)
		msgs = append(msgs, pmap.AppendRmtcallArgs(msg2, &pmap.RmtcallArgs{Prog: prog, Vers: vers}))
	}
	init, wait := bcastInit, bcastWait
	if r.Timeout > 0 {
		init = max(r.Timeout/3, 10*time.Millisecond)
		wait = 2 * init
	}
	var replies []bcastReply
	client.Broadcast(socks, msgs, client.BroadcastSchedule{First: init, Last: wait, Max: min(maxBroadcast, 3*(init+wait))},
		tirpc.UDPMsgSize, func(i int, from netip.AddrPort, b []byte) {
			if rep, ok := r.bcastAnswer(bcastPacket{ts[i], net.UDPAddrFromAddrPort(from), b}, xid, pmapFlag); ok {
				replies = append(replies, rep)
			}
		})
	// rpc_broadcast ends when its time is up, whatever came.
	return replies, tirpc.TimedOut
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
	d := xdr.NewDecoder(p.data)
	_, e, ok := tirpc.ParseReply(d)
	if !ok || e.Stat != tirpc.Success {
		return bcastReply{}, false
	}
	var who tirpc.Taddr
	if v2 {
		// xdr_rmtcallres: the port (through xdr_reference, which has no
		// optional-data flag), then the results, which a datagram bounds.
		res, err := pmap.DecodePortCallResult(d, tirpc.UDPMsgSize)
		if err != nil {
			return bcastReply{}, false
		}
		port := res.Port
		from := p.from.AddrPort().Addr()
		if from.Is4In6() {
			from = from.Unmap()
		}
		who = tirpc.IPTaddr(netip.AddrPortFrom(from, uint16(port)))
	} else {
		res, err := pmap.DecodeRmtcallResult(d, tirpc.UDPMsgSize)
		if err != nil {
			return bcastReply{}, false
		}
		ua := res.Addr
		a, ok := tirpc.Uaddr2Taddr(p.t.nc, ua)
		if !ok {
			// __ipv6v4_fixup: an IPv6 universal address in an answer
			// that came over IPv4 names the sender's address.
			from := p.from.AddrPort().Addr().Unmap()
			v6, ok6 := pmapLenient6(ua)
			if !from.Is4() || !ok6 {
				return bcastReply{}, false
			}
			a = tirpc.IPTaddr(netip.AddrPortFrom(from, v6.Port()))
		}
		who = a
	}
	return bcastReply{Addr: who.Uaddr(), Host: r.nameinfo(who.IP.Addr()), Netid: p.t.nc.Netid}, true
}

func pmapLenient6(ua string) (netip.AddrPort, bool) {
	ap, ok := pmap.LenientUaddr(ua, 6)
	return ap, ok && ap.Addr().Is6()
}

// nameinfo is getnameinfo without flags: the host's name if the address
// resolves, else the numeric address with its interface.
func (r *runner) nameinfo(a netip.Addr) string {
	ctx, cancel := context.WithTimeout(context.Background(), tirpc.ResolveTimeout)
	defer cancel()
	if names, err := r.lookupAddr(ctx, a.WithZone("").String()); err == nil && len(names) > 0 {
		return strings.TrimSuffix(names[0], ".")
	}
	return a.String()
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
