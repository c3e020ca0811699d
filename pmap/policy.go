package pmap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/rpc"
)

// Policy beyond rpcbind's: who may map privileged ports, which ports
// mappings may use, and which hosts may talk to the portmapper at all.

// portOf returns the port of an IP mapping, or false for other netids.
func portOf(m Mapping) (uint32, bool) {
	switch family(m.Netid) {
	case "inet", "inet6":
		return UaddrPort(m.Addr)
	}
	return 0, false
}

// privilegedPort reports a port that only root can bind, or NFS's 2049:
// a process that could register such a port could impersonate nfsd,
// mountd or statd to every client that asks.
func privilegedPort(p uint32) bool { return p < 1024 || p == 2049 }

// PortRange, when set, is the range registrations must use, so that a
// firewall that opens port 111 and this range is enough.
type PortRange struct {
	Low, High uint32
	// Refuse answers FALSE for a port outside; otherwise the mapping is
	// accepted and logged.
	Refuse bool
}

// ErrPortRange means a port range is not "LOW-HIGH" with
// 1 <= LOW <= HIGH <= 65535.
var ErrPortRange = errors.New("pmap: a port range is LOW-HIGH, 1 <= LOW <= HIGH <= 65535")

// ParsePortRange reads "LOW-HIGH", as --port-range gives it.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil || l == 0 || l > h {
		return PortRange{}, fmt.Errorf("%q: %w", s, ErrPortRange)
	}
	return PortRange{Low: uint32(l), High: uint32(h)}, nil
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port uint32) bool { return port >= r.Low && port <= r.High }

// admit decides whether caller c may add mapping m, before the table is
// asked: a privileged port needs a privileged caller (uid 0 on the local
// socket, a privileged source port on loopback), as portmap 6.0 required
// and rpcbind does not, unless OpenPrivilegedPorts; and a port outside
// Ports is refused or flagged.
func (s *Service) admit(c *rpc.Call, m Mapping) bool {
	port, ip := portOf(m)
	if !ip || port == 0 {
		return true
	}
	if !s.OpenPrivilegedPorts && privilegedPort(port) && ownerOf(c) != OwnerSuperuser {
		s.rejected(rpc.RefusedPrivilegedPort)
		s.Log.Warn("refused a privileged port from an unprivileged caller",
			zap.Uint32("prog", m.Prog), zap.Uint32("vers", m.Vers), zap.String("netid", m.Netid),
			zap.String("addr", m.Addr), zap.String("caller", ownerOf(c)), zap.Stringer("remote", c.Remote))
		return false
	}
	if r := s.Ports; r != nil && !r.Contains(port) {
		log := s.Log.Warn
		msg := "registration outside the port range"
		if r.Refuse {
			msg = "refused a registration outside the port range"
			s.rejected(rpc.RefusedPortRange)
		}
		log(msg, zap.Uint32("prog", m.Prog), zap.Uint32("vers", m.Vers), zap.String("netid", m.Netid),
			zap.Uint32("port", port), zap.Uint32("low", r.Low), zap.Uint32("high", r.High))
		return !r.Refuse
	}
	return true
}

// allowed applies the host access lists to every procedure but NULL, as
// tcp_wrappers did for rpcbind; the local socket is always allowed.
func (s *Service) allowed(c *rpc.Call, proc uint32) bool {
	if s.Access == nil || proc == ProcNull || c.Netid == rpc.NetidLocal {
		return true
	}
	if s.Access(c.Remote.Addr().Unmap()) {
		return true
	}
	s.rejected(rpc.RefusedAccess)
	return false
}
