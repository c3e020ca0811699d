package tirpc

import (
	"context"
	"net/netip"
	"os"
	"strconv"
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

// rpcbHandle is rpcb_clnt's getclnthandle: a client of the portmapper
// (created as version 4) on transport nc at host, trying each address
// of the host in turn, or the local socket for a loopback transport.
// It also returns the universal address it reached, sent as r_addr.
func (s *Session) rpcbHandle(host string, nc Netconf) (Clnt, string, error) {
	if nc.Family != "loopback" && host == "" {
		return nil, "", s.fail(CreateErr{Stat: UnknownHost})
	}
	family, _, ok := nc.Sockinfo()
	if !ok {
		return nil, "", s.fail(CreateErr{Stat: UnknownProto})
	}
	if nc.Family == "loopback" {
		c, err := s.LocalRPCB()
		if err != nil {
			return nil, "", err
		}
		return c, s.Socket, nil
	}
	addrs, ok := s.Getaddrinfo(host, family)
	port, okPort := s.ServicePort("sunrpc")
	if !ok || !okPort {
		return nil, "", s.fail(CreateErr{Stat: UnknownHost})
	}
	for _, a := range addrs {
		ta := IPTaddr(netip.AddrPortFrom(a, uint16(port)))
		if c, err := s.TliCreate(nc, ta, pmap.Program, pmap.VersRPCB4); err == nil {
			return c, ta.Uaddr(), nil
		}
	}
	return nil, "", s.stale()
}

// LocalRPCB is rpcb_clnt's local_rpcb: the local socket as version 3,
// else the portmapper on loopback over the last stream transport of the
// netconfig database that the kernel supports (tcp6 in Debian's, hence
// "::1"), as version 4. rpcb_unset and lookups on "local" go through it.
func (s *Session) LocalRPCB() (Clnt, error) {
	if s.Port > 0 {
		// A port, not a socket, is configured: the portmapper there, on
		// 127.0.0.1 as for the listings.
		tcp, ok := s.Netconfig.Lookup("tcp")
		if !ok {
			return nil, s.fail(CreateErr{Stat: UnknownProto})
		}
		c, _, err := s.rpcbHandle("127.0.0.1", tcp)
		return c, err
	}
	if c, err := s.DialLocal(pmap.VersRPCB3); err == nil {
		return c, nil
	}
	var loop *Netconf
	host := ""
	for i, nc := range s.Netconfig {
		if (nc.Family != "inet" && nc.Family != "inet6") || (nc.Semantics != SemCOTS && nc.Semantics != SemCOTSOrd) {
			continue
		}
		family, _, ok := nc.Sockinfo()
		if !ok || !familySupported(family) {
			continue
		}
		loop = &s.Netconfig[i]
		if nc.Family == "inet" {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	if loop == nil {
		return nil, s.fail(CreateErr{Stat: UnknownProto})
	}
	c, _, err := s.rpcbHandle(host, *loop)
	return c, err
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
func (s *Session) findAddr(prog, vers uint32, nc Netconf, host string, keep bool, timeout time.Duration) (Taddr, Clnt, error) {
	c, raddr, err := s.rpcbHandle(host, nc)
	if err != nil {
		return Taddr{}, nil, err
	}
	args := pmap.AppendRpcb(nil, &pmap.Mapping{Prog: prog, Vers: vers, Netid: nc.Netid, Addr: raddr, Owner: rpcbOwner})
	var addr Taddr
	found := false
	c.SetRetry(s.Retry())
	ua, e, end := WalkGetaddr(func(v uint32) (string, RPCErr) {
		var ua string
		c.SetVers(v)
		c.Call(pmap.ProcGetaddr, args, func(d *xdr.Decoder) (err error) { ua, err = pmap.DecodeUaddr(d); return err }, timeout)
		return ua, c.Geterr()
	})
	switch end {
	case Answered:
		if ua == "" {
			c.Close()
			return Taddr{}, nil, s.fail(CreateErr{Stat: ProgNotReg})
		}
		a, ok := Uaddr2Taddr(nc, ua)
		if !ok {
			c.Close()
			return Taddr{}, nil, s.fail(CreateErr{Stat: N2AXlateFailure})
		}
		addr, found = fixup(a, c.Server()), true
	case Stopped:
		c.Close()
		if e.Stat == ProgVersMismatch {
			// Only versions above 4: libtirpc returns without a word.
			return Taddr{}, nil, s.stale()
		}
		return Taddr{}, nil, s.fail(CreateErr{Stat: e.Stat, Detail: e})
	}
	if !found && nc.Family == "inet" {
		a, err := s.tryPMAP(prog, vers, nc, host, timeout)
		if err != nil {
			c.Close()
			return Taddr{}, nil, err
		}
		addr, found = a, true
	}
	if !found {
		defer c.Close()
		return Taddr{}, nil, s.fail(CreateErr{Stat: ProgNotReg, Detail: c.Geterr()})
	}
	if keep && nc.Semantics == SemCLTS {
		return addr, c, nil
	}
	c.Close()
	return addr, nil, nil
}

// GetaddrEnd is how a walk over RPCBIND's versions ended.
type GetaddrEnd int

// The ends of WalkGetaddr.
const (
	// Answered: a version answered with an address ("": not registered).
	Answered GetaddrEnd = iota
	// NoRPCBIND: neither version 4 nor 3 is there; PMAP v2's GETPORT is
	// next, for IPv4 transports.
	NoRPCBIND
	// Stopped: the failure returned ends the lookup.
	Stopped
)

// WalkGetaddr is __rpcb_findaddr_timed's walk over versions on one
// portmapper: getaddr makes GETADDR with RPCBIND version 4, then 3, for
// as long as the portmapper lacks the version (PROG_UNAVAIL, a
// PROG_MISMATCH whose range starts at 4 or below, or GARBAGE_ARGS from a
// server that reads the arguments as another version's). Any other
// failure stops the lookup, a PROG_MISMATCH of versions above 4 among
// them. It returns the answer or the failure that ended the walk.
func WalkGetaddr(getaddr func(vers uint32) (string, RPCErr)) (string, RPCErr, GetaddrEnd) {
	var e RPCErr
	for v := uint32(pmap.VersRPCB4); v >= pmap.VersRPCB3; v-- {
		var ua string
		ua, e = getaddr(v)
		switch e.Stat {
		case Success:
			return ua, e, Answered
		case ProgVersMismatch:
			if e.Low() > pmap.VersRPCB4 {
				return "", e, Stopped
			}
		case ProgUnavail, CantDecodeArgs:
		default:
			return "", e, Stopped
		}
	}
	return "", e, NoRPCBIND
}

// tryPMAP is __try_protocol_version_2: PMAP GETPORT, always over UDP
// (some portmappers only speak UDP), for the protocol of nc.
func (s *Session) tryPMAP(prog, vers uint32, nc Netconf, host string, timeout time.Duration) (Taddr, error) {
	if nc.Proto != "udp" && nc.Proto != "tcp" {
		return Taddr{}, s.stale()
	}
	var c Clnt
	var err error
	switch {
	case nc.Proto == "tcp":
		udp, found := s.Netconfig.Lookup("udp")
		if !found {
			return Taddr{}, s.fail(CreateErr{Stat: UnknownProto})
		}
		c, _, err = s.rpcbHandle(host, udp)
	case nc.Family != "inet":
		return Taddr{}, s.stale()
	default:
		c, _, err = s.rpcbHandle(host, nc)
	}
	if err != nil {
		return Taddr{}, err
	}
	defer c.Close()
	c.SetVers(pmap.VersPMAP)
	c.SetRetry(s.Retry())
	prot := uint32(pmap.ProtoUDP)
	if nc.Proto == "tcp" {
		prot = pmap.ProtoTCP
	}
	args := pmap.AppendPortMapping(nil, &pmap.PortMapping{Prog: prog, Vers: vers, Prot: prot})
	var port uint32
	if st := c.Call(pmap.ProcGetport, args, func(d *xdr.Decoder) (err error) { port, err = d.Uint32(); return err }, timeout); st != Success {
		return Taddr{}, s.fail(CreateErr{Stat: PmapFailure, Detail: c.Geterr()})
	}
	// xdr_u_short keeps the low 16 bits of what came.
	if uint16(port) == 0 {
		return Taddr{}, s.fail(CreateErr{Stat: ProgNotReg})
	}
	a := c.Server()
	a.IP = netip.AddrPortFrom(a.IP.Addr(), uint16(port))
	return a, nil
}

// RpcbGetaddr is rpcb_getaddr.
func (s *Session) RpcbGetaddr(prog, vers uint32, nc Netconf, host string) (Taddr, error) {
	a, _, err := s.findAddr(prog, vers, nc, host, false, s.CallTimeout(60*time.Second))
	return a, err
}

// TpCreate is clnt_tp_create: find the service through the portmapper
// on nc, then a client for it, reusing the portmapper's datagram socket.
func (s *Session) TpCreate(host string, prog, vers uint32, nc Netconf) (Clnt, error) {
	a, c, err := s.findAddr(prog, vers, nc, host, true, s.CallTimeout(60*time.Second))
	if err != nil {
		return nil, err
	}
	if c != nil {
		if c.SetServer(a) {
			c.SetProg(prog)
			c.SetVers(vers)
			return c, nil
		}
		c.Close()
	}
	return s.TliCreate(nc, a, prog, vers)
}

// RpcbUnset is rpcb_unset: UNSET through local_rpcb with the effective
// uid as r_owner, the answer false on any failure.
func (s *Session) RpcbUnset(prog, vers uint32, netid string) bool {
	c, err := s.LocalRPCB()
	if err != nil {
		return false
	}
	defer c.Close()
	timeout := s.CallTimeout(60 * time.Second)
	if p, isPkg := c.(*pkgClient); isPkg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done, err := p.c.Unset(ctx, prog, vers, netid)
		return err == nil && done
	}
	var done bool
	args := pmap.AppendRpcb(nil, &pmap.Mapping{Prog: prog, Vers: vers, Netid: netid, Owner: strconv.Itoa(os.Geteuid())})
	c.Call(pmap.ProcUnset, args, func(d *xdr.Decoder) (err error) { done, err = d.AnyBool(); return err }, timeout)
	return done
}
