package probe

import (
	"net/netip"
	"strings"
	"testing"
)

// A filtered port on another host gets the suggestion of a set that
// portmapd keeps, even when this host's portmapd keeps one: the set
// named in the options is this host's, not the probed one's.
func TestFilteredRemedySuggestsTheSetForOtherHosts(t *testing.T) {
	for _, set := range []string{"", "inet filter rpc_services"} {
		p := &prober{cfg: Config{NFTSet: set}, addr: netip.MustParseAddr("192.0.2.7")}
		r := p.filteredRemedy("udp", "4000")
		if !strings.HasPrefix(r, "let udp/4000 through the firewall") ||
			!strings.Contains(r, "meta l4proto . th dport @rpc_services accept") ||
			!strings.Contains(r, "portmapd serve --nft-set 'inet filter rpc_services'") {
			t.Errorf("NFTSet %q: %s", set, r)
		}
	}
}

func TestIsLocal(t *testing.T) {
	for a, want := range map[string]bool{"127.0.0.1": true, "::1": true, "127.1.2.3": true, "192.0.2.7": false, "2001:db8::7": false} {
		if got := isLocal(netip.MustParseAddr(a)); got != want {
			t.Errorf("isLocal(%s) = %v", a, got)
		}
	}
}
