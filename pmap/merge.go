package pmap

import (
	"net"
	"net/netip"
	"sync"
	"time"
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
	ifs, err := net.Interfaces()
	if err != nil {
		return []IfaceAddr{}
	}
	out := []IfaceAddr{}
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
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			out = append(out, IfaceAddr{
				Prefix:   netip.PrefixFrom(ip.Unmap(), ones),
				Index:    ifc.Index,
				Loopback: ifc.Flags&(net.FlagLoopback|net.FlagPointToPoint) != 0,
			})
		}
	}
	return out
}

// merge returns the address at which a caller reaches a service
// registered at serv, appended to b. The caller reached us at caller;
// hint, if not empty, is the r_addr it sent as the address it used. is6
// is the family of the transport. It reports false where rpcbind's
// addrmerge fails (an unparsable hint or service address, no interface).
func (ic *Interfaces) merge(b []byte, serv string, caller netip.Addr, hint string, is6 bool) ([]byte, bool) {
	fam := 4
	if is6 {
		fam = 6
	}
	if caller.IsUnspecified() {
		return append(b, serv...), true
	}
	h := caller
	if hint != "" {
		ap, ok := LenientUaddr(hint, fam)
		if !ok {
			return b, false
		}
		h = ap.Addr()
	}
	var best *IfaceAddr
	addrs := ic.snapshot()
	for i := range addrs {
		ifa := &addrs[i]
		a := ifa.Prefix.Addr()
		if a.Is6() != is6 {
			continue
		}
		if is6 && a.IsLinkLocalUnicast() && caller.IsLinkLocalUnicast() && h.IsLinkLocalUnicast() {
			if caller.Zone() == "" || ifa.Index == zoneIndex(caller.Zone()) {
				best = ifa
				break
			}
		} else if ifa.Prefix.Contains(h) {
			best = ifa
			break
		}
		if best == nil || !ifa.Loopback && best.Loopback {
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

func zoneIndex(zone string) int {
	if ifc, err := net.InterfaceByName(zone); err == nil {
		return ifc.Index
	}
	return 0
}
