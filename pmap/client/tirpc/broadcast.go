package tirpc

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
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

// BroadcastAnswer is one answer to RPCBroadcast: the service's address
// as the answer gives it, and the transport it came over.
type BroadcastAnswer struct {
	Addr  Taddr
	Netid string
}

// RPCBroadcast is libtirpc's rpc_broadcast of a NULL call to (prog,
// vers) over the visible datagram transports: an RPCBIND v3 CALLIT to
// every broadcast address (and to ff02::202 on every multicast
// interface, once per IPv6 address it has), plus a PMAP v2 CALLIT with
// the next xid on every UDP transport when IPv4 broadcast is possible.
// Each answer goes to each as it comes (rpc_broadcast's eachresult,
// which never asks it to stop here); the status is TimedOut when the
// time is up, which is how rpc_broadcast ends.
func (s *Session) RPCBroadcast(prog, vers uint32, each func(BroadcastAnswer)) Status {
	port, ok := s.ServicePort("sunrpc")
	if !ok {
		return UnknownProto
	}
	var ncs []Netconf
	var socks []client.BroadcastSocket
	pmapFlag := false
	stat := Success
	for _, nc := range s.Netconfig.Nettype("datagram") {
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
			stat = CantSend
			continue
		}
		defer pc.Close()
		if !v6 {
			pmapFlag = true
		}
		ncs = append(ncs, nc)
		socks = append(socks, client.BroadcastSocket{Conn: pc, Targets: targets})
	}
	if len(ncs) == 0 {
		if stat == Success {
			stat = UnknownProto
		}
		return stat
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
	if s.Timeout > 0 {
		init = max(s.Timeout/3, 10*time.Millisecond)
		wait = 2 * init
	}
	client.Broadcast(socks, msgs, client.BroadcastSchedule{First: init, Last: wait, Max: min(maxBroadcast, 3*(init+wait))},
		UDPMsgSize, func(i int, from netip.AddrPort, b []byte) {
			if a, ok := DecodeBroadcastAnswer(ncs[i], from, b, xid, pmapFlag); ok {
				each(a)
			}
		})
	return TimedOut
}

// DecodeBroadcastAnswer decodes a datagram that came from over nc as an
// answer to RPCBroadcast's calls: the RPCBIND one with xid or, with
// pmapFlag, the PMAP one with xid+1.
func DecodeBroadcastAnswer(nc Netconf, from netip.AddrPort, data []byte, xid uint32, pmapFlag bool) (BroadcastAnswer, bool) {
	if len(data) < 4 {
		return BroadcastAnswer{}, false
	}
	got := uint32(data[0])<<24 | uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3])
	v2 := false
	switch {
	case got == xid:
	case pmapFlag && got == xid+1:
		v2 = true
	default:
		return BroadcastAnswer{}, false
	}
	d := xdr.NewDecoder(data)
	_, e, ok := ParseReply(d)
	if !ok || e.Stat != Success {
		return BroadcastAnswer{}, false
	}
	var who Taddr
	if v2 {
		// xdr_rmtcallres: the port (through xdr_reference, which has no
		// optional-data flag), then the results, which a datagram bounds.
		res, err := pmap.DecodePortCallResult(d, UDPMsgSize)
		if err != nil {
			return BroadcastAnswer{}, false
		}
		addr := from.Addr()
		if addr.Is4In6() {
			addr = addr.Unmap()
		}
		who = IPTaddr(netip.AddrPortFrom(addr, uint16(res.Port)))
	} else {
		res, err := pmap.DecodeRmtcallResult(d, UDPMsgSize)
		if err != nil {
			return BroadcastAnswer{}, false
		}
		a, ok := Uaddr2Taddr(nc, res.Addr)
		if !ok {
			// __ipv6v4_fixup: an IPv6 universal address in an answer
			// that came over IPv4 names the sender's address.
			addr := from.Addr().Unmap()
			v6, ok6 := pmapLenient6(res.Addr)
			if !addr.Is4() || !ok6 {
				return BroadcastAnswer{}, false
			}
			a = IPTaddr(netip.AddrPortFrom(addr, v6.Port()))
		}
		who = a
	}
	return BroadcastAnswer{Addr: who, Netid: nc.Netid}, true
}

func pmapLenient6(ua string) (netip.AddrPort, bool) {
	ap, ok := pmap.LenientUaddr(ua, 6)
	return ap, ok && ap.Addr().Is6()
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
