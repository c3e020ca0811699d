package pmap

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Procedure numbers. PMAP v2 and RPCBIND v3/v4 share 0 to 5.
const (
	ProcNull        = 0
	ProcSet         = 1
	ProcUnset       = 2
	ProcGetport     = 3 // v2; GETADDR in v3/v4
	ProcGetaddr     = 3
	ProcDump        = 4
	ProcCallit      = 5 // BCAST in v4
	ProcGettime     = 6
	ProcUaddr2taddr = 7
	ProcTaddr2uaddr = 8
	ProcGetversaddr = 9
	ProcIndirect    = 10
	ProcGetaddrlist = 11
	ProcGetstat     = 12
)

// Bounds on decoded arguments. rpcbind accepts strings of up to 9000
// bytes (RPC_MAXDATASIZE), and so do we on the wire; what is stored in the
// table is held to sizes real netids and addresses never exceed.
const (
	MaxWireString = 9000
	MaxNetidLen   = 64
	MaxAddrLen    = 256
)

// Service implements the portmapper's procedures over a Registry. Fill its
// fields, then Register it with a mux.
type Service struct {
	Registry *Registry
	Stats    *Stats
	// Insecure accepts SET and UNSET from any host, not only local ones.
	Insecure bool
	// OpenPrivilegedPorts lets any caller map ports below 1024 and 2049,
	// as rpcbind does; by default only privileged callers may.
	OpenPrivilegedPorts bool
	// Ports, if set, restricts the ports mappings may use.
	Ports *PortRange
	// Access, if set, says whether a host may call anything but NULL;
	// a refused call gets AUTH_TOOWEAK.
	Access func(host netip.Addr) bool
	// Reject, if set, is told each refusal's reason (rpc.Refused*), for
	// metrics.
	Reject func(reason rpc.Reason)
	Log    *zap.Logger
	// Durable, if set, is called after a change to the table with the
	// registry's generation right after it, and the caller is answered
	// only once it returns: warm start hooks its group commit here. An
	// error means the change was taken back (Registry.Revert): the caller
	// is answered SYSTEM_ERR, and the table and the answer agree.
	Durable func(gen uint64) error
	// Ifaces supplies interface addresses for merging GETADDR answers.
	Ifaces *Interfaces
	// Now returns the time GETTIME reports.
	Now func() time.Time
	// Forwarder, if set, forwards remote calls (CALLIT, BCAST, INDIRECT)
	// to local services, as rpcbind -r does; nil keeps them unforwarded.
	Forwarder Forwarder

	// served lists the transports the daemon listens on, by netid.
	served map[string]bool
	// dumpV2 and dumpRpcb cache the encoded DUMP replies.
	dumpV2, dumpRpcb dumpCache
}

// Register installs the PMAP v2 and RPCBIND v3/v4 procedures in m.
func (s *Service) Register(m *rpc.Mux) {
	if s.Log == nil {
		s.Log = zap.NewNop()
	}
	if s.Stats == nil {
		s.Stats = NewStats()
	}
	if s.Ifaces == nil {
		s.Ifaces = &Interfaces{}
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	m.Handle(Program, VersPMAP, s.v2Procs())
	m.Handle(Program, VersRPCB3, s.rpcbProcs(VersRPCB3))
	m.Handle(Program, VersRPCB4, s.rpcbProcs(VersRPCB4))
}

// AddTransport records that the daemon serves netid at uaddr and adds the
// daemon's own rows for it, as rpcbind does at start: versions 4 and 3,
// and 2 on udp and tcp. Call it for each transport in the order the rows
// should appear in DUMP.
func (s *Service) AddTransport(netid, uaddr string) {
	if s.served == nil {
		s.served = make(map[string]bool)
	}
	s.served[netid] = true
	vers := []uint32{VersRPCB4, VersRPCB3}
	if netid == rpc.NetidUDP || netid == rpc.NetidTCP {
		vers = append(vers, VersPMAP)
	}
	for _, v := range vers {
		s.Registry.Set(Mapping{Prog: Program, Vers: v, Netid: netid, Addr: uaddr, Owner: OwnerSuperuser})
	}
}

// serves reports whether netid is one of the daemon's transports; rpcbind
// keeps statistics and merges addresses only for those.
func (s *Service) serves(netid string) bool { return s.served[netid] }

// statVers maps a portmapper version to its statistics index.
func statVers(v uint32) int { return int(v) - 2 }

// mayChange reports whether c may SET or UNSET: calls over the local
// socket and from the loopback address only, unless insecure.
func (s *Service) mayChange(c *rpc.Call) bool {
	if s.Insecure || isLocalCaller(c) {
		return true
	}
	s.rejected(rpc.RefusedNotLocal)
	return false
}

func (s *Service) rejected(reason rpc.Reason) {
	if s.Reject != nil {
		s.Reject(reason)
	}
}

func isLocalCaller(c *rpc.Call) bool {
	if c.Netid == rpc.NetidLocal {
		return true
	}
	return isLoopback(c.Remote.Addr())
}

// isLoopback is rpcbind's notion of loopback: 127.0.0.1 itself (not the
// rest of 127/8), ::1 and ::ffff:127.0.0.1.
func isLoopback(a netip.Addr) bool {
	return a.Unmap() == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || a == netip.IPv6Loopback()
}

// ownerOf derives an entry's owner from the caller, never from the wire:
// the peer's uid on the local socket ("superuser" for 0); "superuser" for
// the loopback address with a privileged source port; else "unknown".
func ownerOf(c *rpc.Call) string {
	if c.Netid == rpc.NetidLocal {
		switch uid := c.UID(); {
		case uid == 0:
			return OwnerSuperuser
		case uid > 0:
			return strconv.Itoa(uid)
		}
		return OwnerUnknown
	}
	if isLoopback(c.Remote.Addr()) && c.Remote.Port() < 1024 {
		return OwnerSuperuser
	}
	return OwnerUnknown
}

// changed holds the reply w until the change that brought the table to
// generation gen is durable, when warm start asks for it. A failure to
// persist is answered as SYSTEM_ERR rather than TRUE: the caller must not
// believe a change that a crash would lose (Durable has taken it back and
// logged it).
func (s *Service) changed(w *rpc.Reply, gen uint64) {
	if s.Durable == nil {
		return
	}
	w.After = func() error {
		if err := s.Durable(gen); err != nil {
			return rpc.ErrSystem
		}
		return nil
	}
}

// beginString reserves the length of an XDR string whose bytes the
// caller appends next, so that a merged address never exists as a Go
// string; endString fills the length in and pads.
func beginString(b []byte) ([]byte, int) { return xdr.AppendUint32(b, 0), len(b) }

func endString(b []byte, start int) []byte {
	n := len(b) - start - 4
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	for range xdr.Pad(n) {
		b = append(b, 0)
	}
	return b
}
