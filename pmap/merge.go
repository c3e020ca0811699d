package pmap

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/portmapd/portmapd/rpc"
)

// Address merging: a service registered on a wildcard address
// ("0.0.0.0.8.1") is reachable at a different address from each network,
// so GETADDR answers with the address of the interface that faces the
// caller and the registered port, as rpcbind's addrmerge does.

// Interfaces caches the host's interface addresses for address merging.
// The zero value reads them from the kernel at most once a second.
type Interfaces struct {
	// List, if set, replaces the kernel's list (tests).
	List func() []IfaceAddr

	mu      sync.Mutex
	addrs   []IfaceAddr
	fetched time.Time
}

// IfaceAddr is one address of an interface that is up.
type IfaceAddr struct {
	Prefix   netip.Prefix
	Index    int
	Loopback bool // loopback or point-to-point: the least useful answer
}

const ifaceTTL = time.Second

func (ic *Interfaces) snapshot() []IfaceAddr {
	if ic.List != nil {
		return ic.List()
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if now := time.Now(); ic.addrs == nil || now.Sub(ic.fetched) > ifaceTTL {
		ic.addrs, ic.fetched = kernelInterfaces(), now
	}
	return ic.addrs
}

func kernelInterfaces() []IfaceAddr {
	out := []IfaceAddr{}
	EachInterfaceAddr(func(ifc *net.Interface, ipn *net.IPNet) {
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			return
		}
		ones, _ := ipn.Mask.Size()
		out = append(out, IfaceAddr{
			Prefix:   netip.PrefixFrom(ip.Unmap(), ones),
			Index:    ifc.Index,
			Loopback: ifc.Flags&(net.FlagLoopback|net.FlagPointToPoint) != 0,
		})
	})
	return out
}

// EachInterfaceAddr calls f with every IP address of every interface that
// is up, as rpcbind and libtirpc walk getifaddrs: for the addresses a
// reply is merged with, and those a broadcast goes to.
func EachInterfaceAddr(f func(ifc *net.Interface, ipn *net.IPNet)) {
	ifs, err := net.Interfaces()
	if err != nil {
		return
	}
	for i := range ifs {
		ifc := &ifs[i]
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				f(ifc, ipn)
			}
		}
	}
}

// merge returns the address at which a caller reaches a service
// registered at serv, appended to b. The caller reached us at caller;
// hint, if not empty, is the r_addr it sent as the address it used. is6
// is the family of the transport. It reports false where rpcbind's
// addrmerge fails (an unparsable hint or service address, no interface).
//
// Among the interface addresses of the transport's family, rpcbind 1.2.6
// prefers, in this order: an address equal to the hint; a link-local
// address on the caller's link when caller and hint are link-local; the
// first address whose subnet holds the hint; the first address that is
// neither loopback nor point-to-point; the first address at all.
func (ic *Interfaces) merge(b []byte, serv string, caller netip.Addr, hint string, is6 bool) ([]byte, bool) {
	fam := 4
	if is6 {
		fam = 6
	}
	if !caller.IsValid() {
		return b, false
	}
	if !is6 {
		caller = caller.Unmap()
	}
	// A hint that does not parse makes rpcbind give up even for a caller
	// it would otherwise answer with the registered address.
	h, hintScope := caller, scopeOf(caller)
	if hint != "" {
		ap, ok := LenientUaddr(hint, fam)
		if !ok {
			return b, false
		}
		h, hintScope = ap.Addr(), 0
	}
	if caller.IsUnspecified() {
		return append(b, serv...), true
	}
	callerScope := scopeOf(caller)
	hb := h.WithZone("")
	var best *IfaceAddr
	goodness := 0
	addrs := ic.snapshot()
	for i := range addrs {
		ifa := &addrs[i]
		a := ifa.Prefix.Addr()
		if a.Is6() != is6 {
			continue
		}
		ifScope := 0
		if is6 && a.IsLinkLocalUnicast() {
			ifScope = ifa.Index
		}
		if a.WithZone("") == hb && ifScope == hintScope {
			best = ifa
			break
		}
		if is6 && goodness < 3 && a.IsLinkLocalUnicast() && caller.IsLinkLocalUnicast() &&
			h.IsLinkLocalUnicast() && ifScope == callerScope {
			best, goodness = ifa, 3
		}
		if goodness < 2 && ifa.Prefix.Contains(hb) {
			best, goodness = ifa, 2
		}
		if goodness < 1 && !ifa.Loopback {
			best, goodness = ifa, 1
		}
		if best == nil {
			best = ifa
		}
	}
	if best == nil {
		return b, false
	}
	sp, ok := LenientUaddr(serv, fam)
	if !ok {
		return b, false
	}
	return AppendUaddr(b, netip.AddrPortFrom(best.Prefix.Addr(), sp.Port())), true
}

// scopeOf is the scope id the kernel reports with an IPv6 address: the
// index of the interface of a zoned (link-local) address, else 0.
func scopeOf(a netip.Addr) int {
	if a.Zone() == "" {
		return 0
	}
	return rpc.ZoneIndex(a.Zone())
}
