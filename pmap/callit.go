package pmap

import (
	"net/netip"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Remote calls: PMAP v2 CALLIT, RPCBIND v3 CALLIT, v4 BCAST and v4
// INDIRECT. Without a Forwarder portmapd does not forward them, like
// Debian's rpcbind 1.2.6 without -r, but it answers them as that rpcbind
// does, which clients can tell apart:
//
//   - over a stream (tcp, tcp6, local) nothing at all;
//   - arguments that do not decode: GARBAGE_ARGS for INDIRECT;
//   - a call to a program that must never be forwarded: AUTH_TOOWEAK,
//     for CALLIT and BCAST too;
//   - a program not registered on the arrival transport: PROG_UNAVAIL for
//     INDIRECT; another version registered: PROG_MISMATCH with the range;
//   - a registered program: SYSTEM_ERR for INDIRECT, since the forwarding
//     socket does not exist.
//
// With a Forwarder (rpcbind -r) a call that passes those checks is sent on
// to the service at the loopback address and its registered port, and the
// Forwarder answers the caller when the service replies.
//
// CALLIT and BCAST are silent wherever INDIRECT reports an error, so that a
// broadcast gets answers only from hosts that have the program. GETSTAT
// counts every decoded, permitted call in the remote-call list, whether it
// is then forwarded or not.

// Forwarder sends remote calls on to local services and answers their
// callers later. Forward must copy what it keeps of c and r: both alias the
// caller's datagram. It returns nil when the call went out (the handler
// then returns rpc.ErrNoReply), rpc.ErrNoReply when it is dropped on
// purpose (a retransmission of a call in flight, a caller over its rate),
// or another error that INDIRECT reports (rpc.ErrSystem).
type Forwarder interface {
	Forward(c *rpc.Call, r RemoteCall) error
}

// RemoteCall is one call the portmapper forwards for a caller.
type RemoteCall struct {
	// Prog, Vers and Proc name the procedure to call; Args are its
	// XDR-encoded arguments.
	Prog, Vers, Proc uint32
	Args             []byte
	// Target is the service: the loopback address of the arrival
	// transport's family at the registered port.
	Target netip.AddrPort
	// Uaddr is the service's address merged for the caller, which a
	// version 3 or 4 reply carries; Port is the port a version 2 reply
	// carries instead.
	Uaddr []byte
	Port  uint32
	// Indirect is set for INDIRECT, which reports errors; CALLIT and
	// BCAST stay silent.
	Indirect bool
}

// maxRmtArgs bounds the opaque arguments of a remote call; a datagram
// holds far fewer.
const maxRmtArgs = 64 << 10

// Programs and procedures that rpcbind's check_callit refuses to forward
// (rpcsvc/mount.h, nfs_prot.h, yp_prot.h, yppasswd.h, rquota.h).
const (
	progNFS      = 100003
	progYP       = 100004
	progMount    = 100005
	progYPBind   = 100007
	progYPPasswd = 100009
	progRquota   = 100011

	procMountMNT  = 1
	procMountUMNT = 3
	procYPBSetdom = 2
	procYPMatch   = 3
	procYPFirst   = 4
	procYPNext    = 5
	procYPAll     = 8
)

// RmtcallArgs is struct rpcb_rmtcallargs (and PMAP's rmtcallargs), the
// argument of CALLIT, BCAST and INDIRECT: the procedure to call and its
// XDR-encoded arguments.
type RmtcallArgs struct {
	Prog, Vers, Proc uint32
	Args             []byte
}

// AppendRmtcallArgs appends a as XDR.
func AppendRmtcallArgs(b []byte, a *RmtcallArgs) []byte {
	b = xdr.AppendUint32(b, a.Prog)
	b = xdr.AppendUint32(b, a.Vers)
	b = xdr.AppendUint32(b, a.Proc)
	return xdr.AppendOpaque(b, a.Args)
}

// DecodeRmtcallArgs decodes remote-call arguments of at most maxArgs
// bytes; Args aliases d's buffer.
func DecodeRmtcallArgs(d *xdr.Decoder, maxArgs int) (RmtcallArgs, error) {
	var a RmtcallArgs
	var err error
	if a.Prog, err = d.Uint32(); err != nil {
		return a, err
	}
	if a.Vers, err = d.Uint32(); err != nil {
		return a, err
	}
	if a.Proc, err = d.Uint32(); err != nil {
		return a, err
	}
	a.Args, err = d.Opaque(maxArgs)
	return a, err
}

func decodeRmtcall(c *rpc.Call) (RmtcallArgs, error) {
	d := xdr.NewDecoder(c.Args)
	defer c.NotePadding(d)
	a, err := DecodeRmtcallArgs(d, maxRmtArgs)
	if err != nil {
		return a, rpc.ErrGarbageArgs
	}
	return a, nil
}

// remoteCall serves CALLIT and BCAST, or with indirect set INDIRECT, of
// statistics version sv.
func (s *Service) remoteCall(sv int, indirect bool) rpc.HandlerFunc {
	return func(_ *rpc.Reply, c *rpc.Call) error {
		if c.Netid != rpc.NetidUDP && c.Netid != rpc.NetidUDP6 {
			return rpc.ErrNoReply
		}
		a, err := decodeRmtcall(c)
		if err != nil {
			return quiet(err, indirect)
		}
		if !s.mayForward(a.Prog, a.Proc) {
			s.rejected(rpc.RefusedForwardDenied)
			return rpc.ErrAuthTooWeak
		}
		m, found, exact := s.Registry.Lookup(a.Prog, a.Vers, c.Netid)
		if s.serves(c.Netid) {
			s.Stats.RemoteCall(sv, a.Prog, a.Vers, a.Proc, c.Netid, exact, indirect)
		}
		switch {
		case !found:
			return quiet(rpc.ErrProgUnavail, indirect)
		case !exact:
			low, high := s.Registry.Versions(a.Prog, c.Netid)
			return quiet(&rpc.ProgMismatchError{Low: low, High: high}, indirect)
		}
		// rpcbind merges for INDIRECT first and gives up with PROG_UNAVAIL;
		// the merged address is also what a forwarded reply carries.
		var buf [64]byte
		merged, ok := s.Ifaces.merge(buf[:0], m.Addr, c.Remote.Addr(), "", isIPv6Netid(c.Netid))
		if !ok {
			return quiet(rpc.ErrProgUnavail, indirect)
		}
		if s.Forwarder == nil {
			s.rejected(rpc.RefusedForwardDisabled)
			return quiet(rpc.ErrSystem, indirect)
		}
		return quiet(s.forward(c, a, m.Addr, merged, indirect), indirect)
	}
}

// forward hands a remote call to the Forwarder; a nil error means the
// Forwarder answers later, so the handler sends nothing now.
func (s *Service) forward(c *rpc.Call, a RmtcallArgs, addr string, merged []byte, indirect bool) error {
	is6 := isIPv6Netid(c.Netid)
	fam, loop := 4, netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if is6 {
		fam, loop = 6, netip.IPv6Loopback()
	}
	// rpcbind sends to its own loopback address merged with the
	// registered address, which keeps only the registered port: a service
	// registered at a wildcard or another interface is still reached over
	// loopback, never across the network.
	ap, ok := LenientUaddr(addr, fam)
	if !ok || ap.Port() == 0 {
		return rpc.ErrSystem
	}
	r := RemoteCall{
		Prog: a.Prog, Vers: a.Vers, Proc: a.Proc, Args: a.Args,
		Target: netip.AddrPortFrom(loop, ap.Port()),
		Uaddr:  merged,
		// The merged address keeps the registered port, which is what
		// rpcbind reads back out of it for a version 2 reply.
		Port:     uint32(ap.Port()),
		Indirect: indirect,
	}
	if err := s.Forwarder.Forward(c, r); err != nil {
		return err
	}
	return rpc.ErrNoReply
}

// quiet turns an error of CALLIT or BCAST into silence.
func quiet(err error, indirect bool) error {
	if indirect {
		return err
	}
	return rpc.ErrNoReply
}

// mayForward is rpcbind's check_callit: NULL procedures always; never
// the portmapper itself (unless insecure), NFS, YPPASSWD, RQUOTA, MOUNT's
// MNT and UMNT, YPBIND's SETDOM, or the YP procedures that return maps, all
// of which would let a remote host act with the local host's address.
func (s *Service) mayForward(prog, proc uint32) bool {
	if proc == ProcNull {
		return true
	}
	switch prog {
	case Program:
		return s.Insecure
	case progMount:
		return proc != procMountMNT && proc != procMountUMNT
	case progYPBind:
		return proc != procYPBSetdom
	case progYPPasswd, progNFS, progRquota:
		return false
	case progYP:
		switch proc {
		case procYPMatch, procYPFirst, procYPNext, procYPAll:
			return false
		}
	}
	return true
}
