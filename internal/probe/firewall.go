package probe

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/portmapd/portmapd/internal/nftset"
)

// filteredRemedy is the remedy for a registered port that gets no
// answer. On this host, with portmapd keeping an nftables set, it names
// the set and says whether the port is in it; elsewhere it suggests the
// set, which opens every registered port and closes it when its service
// goes.
func (p *prober) filteredRemedy(transport, port string) string {
	generic := fmt.Sprintf("let %s/%s through the firewall (better: pin the service to a fixed port and open that), or restart a hung service", transport, port)
	spec, err := nftset.ParseSpec(p.cfg.NFTSet)
	if p.cfg.NFTSet == "" || err != nil || !isLocal(p.addr) {
		return generic + "; or let portmapd open registered ports: declare an nftables set " +
			"(nft add set inet filter rpc_services '{ type inet_proto . inet_service; }'), admit it " +
			"(nft add rule inet filter input meta l4proto . th dport @rpc_services accept) and run portmapd serve --nft-set 'inet filter rpc_services'"
	}
	rule := fmt.Sprintf("meta l4proto . th dport @%s accept", spec.Set)
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return generic
	}
	elem := nftset.ProtoElem(transport, uint16(n))
	has, err := nftset.Has(spec, elem)
	switch {
	case err != nil:
		return fmt.Sprintf("portmapd keeps nftables set %s (--nft-set): check that it holds %s (nft list set %s) and that the input chain admits it before any drop (%s); %s",
			spec, elem, spec, rule, generic)
	case has:
		return fmt.Sprintf("%s is in nftables set %s, which portmapd keeps (--nft-set), so something else drops it: a rule before %q, or a firewall between here and the service; or restart a hung service",
			elem, spec, rule)
	default:
		return fmt.Sprintf("%s is not in nftables set %s, which portmapd keeps (--nft-set): see portmapd's log and portmapd_nft_errors_total, or whether the service registered on loopback only; %s",
			elem, spec, generic)
	}
}

// isLocal reports whether a is an address of this host.
func isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if ipn, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(ipn.IP); ok && b.Unmap() == a {
				return true
			}
		}
	}
	return false
}
