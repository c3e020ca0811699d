package pmap

import (
	"net/netip"
	"testing"
)

// The interfaces of the network namespace in which rpcbind 1.2.6 was
// observed: loopback with a secondary address, eth0 and eth1 with IPv4,
// global IPv6 and link-local addresses, and a point-to-point link.
var mergeIfaces = []IfaceAddr{
	{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Index: 1, Loopback: true},
	{Prefix: netip.MustParsePrefix("127.0.0.2/8"), Index: 1, Loopback: true},
	{Prefix: netip.MustParsePrefix("10.0.0.1/24"), Index: 3},
	{Prefix: netip.MustParsePrefix("10.0.0.2/32"), Index: 5},
	{Prefix: netip.MustParsePrefix("192.0.2.5/32"), Index: 6, Loopback: true}, // ppp0
	{Prefix: netip.MustParsePrefix("::1/128"), Index: 1, Loopback: true},
	{Prefix: netip.MustParsePrefix("fd00::1/64"), Index: 3},
	{Prefix: netip.MustParsePrefix("fe80::a/64"), Index: 3},
	{Prefix: netip.MustParsePrefix("fd00::2/128"), Index: 5},
	{Prefix: netip.MustParsePrefix("fe80::b/64"), Index: 5},
}

// rpcbind 1.2.6's addrmerge prefers an address equal to the hint (the
// caller's address when there is no r_addr), then a link-local address on
// the caller's link, then the first address whose subnet holds the hint,
// then the first address that is neither loopback nor point-to-point, then
// the first address of the family. The cases marked "observed" are what
// rpcbind answered in the namespace these interfaces describe.
func TestMergePrefersHintThenLinkThenSubnetThenNonLoopback(t *testing.T) {
	ic := &Interfaces{List: func() []IfaceAddr { return mergeIfaces }}
	tests := []struct {
		name   string
		serv   string
		caller string
		hint   string
		is6    bool
		want   string // "" when the merge fails
	}{
		{"observed: caller equal to eth1's address", "0.0.0.0.9.3", "10.0.0.2", "", false, "10.0.0.2.9.3"},
		{"observed: hint equal to eth0's address", "0.0.0.0.9.3", "127.0.0.1", "10.0.0.1.0.1", false, "10.0.0.1.9.3"},
		{"observed: hint on eth0's subnet", "0.0.0.0.9.3", "127.0.0.1", "10.0.0.77.0.1", false, "10.0.0.1.9.3"},
		{"observed: exact beats an earlier subnet", "0.0.0.0.9.3", "127.0.0.1", "127.0.0.2.0.1", false, "127.0.0.2.9.3"},
		{"observed: IPv6 hint equal to eth1's", "::.9.3", "::1", "fd00::2.0.1", true, "fd00::2.9.3"},
		{"observed: IPv6 hint equal to eth0's", "::.9.3", "::1", "fd00::1.0.1", true, "fd00::1.9.3"},
		{"observed: IPv6 caller equal to eth1's", "::.9.3", "fd00::2", "", true, "fd00::2.9.3"},
		{"loopback caller", "0.0.0.0.9.3", "127.0.0.1", "", false, "127.0.0.1.9.3"},
		{"caller on no subnet: first non-loopback", "0.0.0.0.9.3", "198.51.100.1", "", false, "10.0.0.1.9.3"},
		{"IPv6 caller on eth0's subnet", "::.9.3", "fd00::77", "", true, "fd00::1.9.3"},
		{"link-local caller on eth1", "::.9.3", "fe80::99%5", "", true, "fe80::b.9.3"},
		{"link-local caller on eth0", "::.9.3", "fe80::99%3", "", true, "fe80::a.9.3"},
		{"link-local caller equal to eth1's", "::.9.3", "fe80::b%5", "", true, "fe80::b.9.3"},
		{"link-local caller, global hint", "::.9.3", "fe80::99%5", "fd00::77.0.1", true, "fd00::1.9.3"},
		{"IPv4-mapped caller over IPv4", "0.0.0.0.9.3", "::ffff:10.0.0.9", "", false, "10.0.0.1.9.3"},
		{"specific service address keeps only its port", "192.0.2.99.1.1", "10.0.0.9", "", false, "10.0.0.1.1.1"},
		{"unspecified caller: the registered address", "0.0.0.0.9.3", "0.0.0.0", "", false, "0.0.0.0.9.3"},
		{"unspecified IPv6 caller", "whatever", "::", "", true, "whatever"},
		{"unspecified caller with a bad hint fails", "0.0.0.0.9.3", "0.0.0.0", "bad", false, ""},
		{"bad hint fails", "0.0.0.0.9.3", "10.0.0.9", "bad", false, ""},
		{"hint of the other family fails", "0.0.0.0.9.3", "10.0.0.9", "::1.0.1", false, ""},
		{"service address that does not parse", "nodots", "10.0.0.9", "", false, ""},
		{"service address of the other family", "0.0.0.0.9.3", "::1", "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ic.merge([]byte("prefix:"), tt.serv, netip.MustParseAddr(tt.caller), tt.hint, tt.is6)
			if tt.want == "" {
				if ok {
					t.Errorf("merge = %q, want failure", got)
				}
				return
			}
			if !ok || string(got) != "prefix:"+tt.want {
				t.Errorf("merge = (%q, %v), want %q", got, ok, tt.want)
			}
		})
	}
}

func TestMergeWithoutUsableInterfaces(t *testing.T) {
	only := func(addrs ...IfaceAddr) *Interfaces {
		return &Interfaces{List: func() []IfaceAddr { return addrs }}
	}
	lo := IfaceAddr{Prefix: netip.MustParsePrefix("127.0.0.1/8"), Index: 1, Loopback: true}
	ppp := IfaceAddr{Prefix: netip.MustParsePrefix("192.0.2.5/32"), Index: 6, Loopback: true}
	if got, ok := only(lo, ppp).merge(nil, "0.0.0.0.1.1", netip.MustParseAddr("198.51.100.1"), "", false); !ok || string(got) != "127.0.0.1.1.1" {
		t.Errorf("loopback and point-to-point only: (%q, %v), want the first, 127.0.0.1.1.1", got, ok)
	}
	if got, ok := only(lo).merge(nil, "::.1.1", netip.MustParseAddr("2001:db8::1"), "", true); ok {
		t.Errorf("no IPv6 address: %q, want failure", got)
	}
	if got, ok := only().merge(nil, "0.0.0.0.1.1", netip.MustParseAddr("10.0.0.1"), "", false); ok {
		t.Errorf("no interfaces: %q, want failure", got)
	}
	if got, ok := only(lo).merge(nil, "0.0.0.0.1.1", netip.Addr{}, "", false); ok {
		t.Errorf("no caller address: %q, want failure", got)
	}
}

// The zero Interfaces reads the kernel's list and caches it.
func TestInterfacesFromKernel(t *testing.T) {
	var ic Interfaces
	addrs := ic.snapshot()
	for _, a := range addrs {
		if !a.Prefix.IsValid() || a.Prefix.Addr().Is4In6() {
			t.Errorf("bad interface address %v", a.Prefix)
		}
	}
	if again := ic.snapshot(); len(again) != len(addrs) || len(addrs) > 0 && &again[0] != &addrs[0] {
		t.Error("the list was read again within its time to live")
	}
}
