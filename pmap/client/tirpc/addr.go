package tirpc

import (
	"net/netip"
	"strings"
	"syscall"

	"github.com/portmapd/portmapd/pmap"
)

// Taddr is a transport address (libtirpc's netbuf): an IP address and
// port, or the path of a local socket.
type Taddr struct {
	Family int // syscall.AF_INET, AF_INET6 or AF_UNIX
	IP     netip.AddrPort
	Path   string
}

// IPTaddr is the transport address of an IP address and port.
func IPTaddr(ap netip.AddrPort) Taddr {
	if ap.Addr().Is4() {
		return Taddr{Family: syscall.AF_INET, IP: ap}
	}
	return Taddr{Family: syscall.AF_INET6, IP: ap}
}

// Uaddr is taddr2uaddr. A zone does not appear in a universal address.
func (a Taddr) Uaddr() string {
	if a.Family == syscall.AF_UNIX {
		return a.Path
	}
	return pmap.FormatUaddr(a.IP)
}

// Uaddr2Taddr converts a universal address of the transport nc as
// libtirpc does: leniently for IP (C's atoi for the port bytes,
// inet_pton for the host), verbatim for a local socket.
func Uaddr2Taddr(nc Netconf, ua string) (Taddr, bool) {
	family, _, ok := nc.Sockinfo()
	if !ok {
		return Taddr{}, false
	}
	switch family {
	case syscall.AF_UNIX:
		// An absolute path is taken whole; anything else loses the two
		// port parts of an IP universal address first, as in libtirpc.
		if !strings.HasPrefix(ua, "/") {
			host, _, _, ok := pmap.SplitUaddr(ua)
			if !ok {
				return Taddr{}, false
			}
			ua = host
		}
		if len(ua) > 107 { // strncpy into sun_path
			ua = ua[:107]
		}
		return Taddr{Family: syscall.AF_UNIX, Path: ua}, true
	case syscall.AF_INET:
		ap, ok := pmap.LenientUaddr(ua, 4)
		if !ok || !ap.Addr().Is4() {
			return Taddr{}, false
		}
		return Taddr{Family: syscall.AF_INET, IP: ap}, true
	default:
		ap, ok := pmap.LenientUaddr(ua, 6)
		if !ok {
			return Taddr{}, false
		}
		return Taddr{Family: syscall.AF_INET6, IP: ap}, true
	}
}

// fixup is __rpc_fixup_addr: an IPv6 link-local (or site-local) address
// the portmapper returned takes the scope of the address the portmapper
// was reached at. Nothing else changes; a wildcard stays a wildcard.
func fixup(a, server Taddr) Taddr {
	if a.Family != syscall.AF_INET6 || server.Family != syscall.AF_INET6 {
		return a
	}
	na, sa := a.IP.Addr(), server.IP.Addr()
	if (na.IsLinkLocalUnicast() && sa.IsLinkLocalUnicast()) || (siteLocal(na) && siteLocal(sa)) {
		a.IP = netip.AddrPortFrom(na.WithZone(sa.Zone()), a.IP.Port())
	}
	return a
}

func siteLocal(a netip.Addr) bool {
	b := a.As16()
	return a.Is6() && b[0] == 0xfe && b[1]&0xc0 == 0xc0
}
