package rpcinfo

import (
	"net/netip"
	"syscall"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/xdr"
)

// The lookups below are libtirpc's rpcb_clnt.c, step for step, because
// the order of transports, versions and fallbacks is what a portmapper
// sees (its GETSTAT counts every call) and decides which error rpcinfo
// prints.

// rpcbOwner is what libtirpc sends as r_owner in GETADDR.
const rpcbOwner = "libtirpc"

// Procedures of the portmapper.
const (
	procNull        = 0
	procSet         = 1
	procUnset       = 2
	procGetaddr     = 3 // GETPORT in version 2
	procDump        = 4
	procCallit      = 5
	procGetaddrlist = 11
	procGetstat     = 12
)

// rpcbHandle is rpcb_clnt's getclnthandle: a client of the portmapper
// (created as version 4) on transport nc at host, trying each address
// of the host in turn, or the local socket for a loopback transport.
// It also returns the universal address it reached, sent as r_addr.
func (r *runner) rpcbHandle(host string, nc netconf) (clnt, string, bool) {
	if nc.Family != "loopback" && host == "" {
		r.cerr = createErr{Stat: UnknownHost}
		return nil, "", false
	}
	family, _, ok := nc.sockinfo()
	if !ok {
		r.cerr = createErr{Stat: UnknownProto}
		return nil, "", false
	}
	if nc.Family == "loopback" {
		c, ok := r.localRPCB()
		if !ok {
			return nil, "", false
		}
		return c, r.socket, true
	}
	addrs, ok := r.getaddrinfo(host, family)
	port, okPort := r.servicePort("sunrpc")
	if !ok || !okPort {
		r.cerr = createErr{Stat: UnknownHost}
		return nil, "", false
	}
	for _, a := range addrs {
		ta := ipTaddr(netip.AddrPortFrom(a, uint16(port)))
		if c, ok := r.tliCreate(nc, ta, pmap.Program, pmap.VersRPCB4); ok {
			return c, ta.uaddr(), true
		}
	}
	return nil, "", false
}

// localRPCB is rpcb_clnt's local_rpcb: the local socket as version 3,
// else the portmapper on loopback over the last stream transport of the
// netconfig database that the kernel supports (tcp6 in Debian's, hence
// "::1"), as version 4. rpcb_unset and lookups on "local" go through it.
func (r *runner) localRPCB() (clnt, bool) {
	if r.port > 0 {
		// -n names a port, not a socket: the portmapper there, on
		// 127.0.0.1 as for the listings.
		tcp, ok := r.lookup("tcp")
		if !ok {
			r.cerr = createErr{Stat: UnknownProto}
			return nil, false
		}
		c, _, ok := r.rpcbHandle("127.0.0.1", tcp)
		return c, ok
	}
	if c, ok := r.dialLocal(pmap.VersRPCB3); ok {
		return c, true
	}
	var loop *netconf
	host := ""
	for i, nc := range r.netconfig {
		if (nc.Family != "inet" && nc.Family != "inet6") || (nc.Semantics != semCOTS && nc.Semantics != semCOTSOrd) {
			continue
		}
		family, _, ok := nc.sockinfo()
		if !ok || !familySupported(family) {
			continue
		}
		loop = &r.netconfig[i]
		if nc.Family == "inet" {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	if loop == nil {
		r.cerr = createErr{Stat: UnknownProto}
		return nil, false
	}
	c, _, ok := r.rpcbHandle(host, *loop)
	return c, ok
}

// familySupported is the socket(2) test local_rpcb makes.
func familySupported(family int) bool {
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, 0)
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

// findAddr is __rpcb_findaddr_timed: GETADDR of version 4 then 3 on nc,
// then GETPORT of version 2 for IPv4 transports. With keep, the
// datagram client that answered is returned for reuse (clnt_tp_create
// moves it to the service); stream clients are always closed.
func (r *runner) findAddr(prog, vers uint32, nc netconf, host string, keep bool, timeout time.Duration) (taddr, clnt, bool) {
	c, raddr, ok := r.rpcbHandle(host, nc)
	if !ok {
		return taddr{}, nil, false
	}
	args := pmap.AppendRpcb(nil, &pmap.Mapping{Prog: prog, Vers: vers, Netid: nc.Netid, Addr: raddr, Owner: rpcbOwner})
	var addr taddr
	found := false
	c.setRetry(r.retry())
	for v := uint32(pmap.VersRPCB4); v >= pmap.VersRPCB3; v-- {
		c.setVers(v)
		var ua string
		st := c.call(procGetaddr, args, func(d *xdr.Decoder) (err error) { ua, err = d.CString(pmap.MaxWrapString); return err }, timeout)
		switch st {
		case Success:
			if ua == "" {
				r.cerr = createErr{Stat: ProgNotReg}
				c.close()
				return taddr{}, nil, false
			}
			a, ok := uaddr2taddr(nc, ua)
			if !ok {
				r.cerr = createErr{Stat: N2AXlateFailure}
				c.close()
				return taddr{}, nil, false
			}
			addr, found = fixup(a, c.server()), true
		case ProgVersMismatch:
			if c.geterr().low() > pmap.VersRPCB4 {
				c.close()
				return taddr{}, nil, false
			}
			continue
		case ProgUnavail, CantDecodeArgs:
			continue
		default:
			r.cerr = createErr{Stat: st, Detail: c.geterr()}
			c.close()
			return taddr{}, nil, false
		}
		break
	}
	if !found && nc.Family == "inet" {
		a, ok := r.tryPMAP(prog, vers, nc, host, timeout)
		if !ok {
			c.close()
			return taddr{}, nil, false
		}
		addr, found = a, true
	}
	if !found {
		r.cerr = createErr{Stat: ProgNotReg, Detail: c.geterr()}
		c.close()
		return taddr{}, nil, false
	}
	if keep && nc.Semantics == semCLTS {
		return addr, c, true
	}
	c.close()
	return addr, nil, true
}

// tryPMAP is __try_protocol_version_2: PMAP GETPORT, always over UDP
// (some portmappers only speak UDP), for the protocol of nc.
func (r *runner) tryPMAP(prog, vers uint32, nc netconf, host string, timeout time.Duration) (taddr, bool) {
	if nc.Proto != "udp" && nc.Proto != "tcp" {
		return taddr{}, false
	}
	var c clnt
	var ok bool
	switch {
	case nc.Proto == "tcp":
		udp, found := r.lookup("udp")
		if !found {
			r.cerr = createErr{Stat: UnknownProto}
			return taddr{}, false
		}
		c, _, ok = r.rpcbHandle(host, udp)
	case nc.Family != "inet":
		return taddr{}, false
	default:
		c, _, ok = r.rpcbHandle(host, nc)
	}
	if !ok {
		return taddr{}, false
	}
	defer c.close()
	c.setVers(pmap.VersPMAP)
	c.setRetry(r.retry())
	prot := uint32(pmap.ProtoUDP)
	if nc.Proto == "tcp" {
		prot = pmap.ProtoTCP
	}
	args := pmap.AppendPortMapping(nil, &pmap.PortMapping{Prog: prog, Vers: vers, Prot: prot})
	var port uint32
	if st := c.call(procGetaddr, args, func(d *xdr.Decoder) (err error) { port, err = d.Uint32(); return err }, timeout); st != Success {
		r.cerr = createErr{Stat: PmapFailure, Detail: c.geterr()}
		return taddr{}, false
	}
	// xdr_u_short keeps the low 16 bits of what came.
	if uint16(port) == 0 {
		r.cerr = createErr{Stat: ProgNotReg}
		return taddr{}, false
	}
	s := c.server()
	s.IP = netip.AddrPortFrom(s.IP.Addr(), uint16(port))
	return s, true
}

// rpcbGetaddr is rpcb_getaddr.
func (r *runner) rpcbGetaddr(prog, vers uint32, nc netconf, host string) (taddr, bool) {
	a, _, ok := r.findAddr(prog, vers, nc, host, false, r.callTimeout(60*time.Second))
	return a, ok
}

// tpCreate is clnt_tp_create: find the service through the portmapper
// on nc, then a client for it, reusing the portmapper's datagram socket.
func (r *runner) tpCreate(host string, prog, vers uint32, nc netconf) (clnt, bool) {
	a, c, ok := r.findAddr(prog, vers, nc, host, true, r.callTimeout(60*time.Second))
	if !ok {
		return nil, false
	}
	if c != nil {
		if c.setServer(a) {
			c.setProg(prog)
			c.setVers(vers)
			return c, true
		}
		c.close()
	}
	return r.tliCreate(nc, a, prog, vers)
}
