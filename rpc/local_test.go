package rpc

import (
	"net/netip"
	"testing"
	"time"
)

// The host's addresses are read again when a source is not among them, at
// most once per hostAddrsRefresh: an address added since the last read is
// found, and a flood of forged sources costs one read a second at most.
func TestHostAddrsRefreshIsBounded(t *testing.T) {
	own := netip.MustParseAddr("198.51.100.1")
	added := netip.MustParseAddr("198.51.100.2")
	loads := 0
	var h hostAddrs
	h.load = func() (map[netip.Addr]bool, map[int]bool) {
		loads++
		addrs := map[netip.Addr]bool{own: true}
		if loads > 1 {
			addrs[added] = true
		}
		return addrs, map[int]bool{}
	}
	if !h.localCaller(own, 2) || loads != 1 {
		t.Fatalf("own address: local %v after %d loads", h.localCaller(own, 2), loads)
	}
	for i := range 1000 {
		if h.localCaller(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 2) {
			t.Fatal("a forged source counted as local")
		}
	}
	if loads != 1 {
		t.Errorf("%d loads within the refresh period of the first", loads)
	}
	h.at = h.at.Add(-hostAddrsRefresh - time.Millisecond)
	if !h.localCaller(added, 2) || loads != 2 {
		t.Errorf("an address added later: local %v after %d loads, want true after 2", h.localCaller(added, 2), loads)
	}
	// Loopback and the loopback interface need no lookup; IPv6 sources
	// are local only there.
	if !h.localCaller(netip.MustParseAddr("127.0.0.5"), 0) || !h.localCaller(netip.MustParseAddr("::1"), 0) ||
		!h.localCaller(netip.MustParseAddr("192.0.2.9"), loopbackIfindex) ||
		h.localCaller(netip.MustParseAddr("2001:db8::1"), 2) || loads != 2 {
		t.Errorf("loopback rules wrong, or a lookup made (%d loads)", loads)
	}
}
