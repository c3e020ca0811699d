package rpc

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"unsafe"
)

// cmsg builds one control message the way the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	var h syscall.Cmsghdr
	h.Level, h.Type = level, typ
	h.SetLen(syscall.CmsgLen(len(data)))
	b := append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(&h)), syscall.SizeofCmsghdr)...)
	b = append(b, data...)
	return append(b, make([]byte, syscall.CmsgSpace(len(data))-len(b))...)
}

func inPktinfo(ifindex int32, specDst, addr string) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(ifindex))
	s, a := netip.MustParseAddr(specDst).As4(), netip.MustParseAddr(addr).As4()
	return append(append(b, s[:]...), a[:]...)
}

func in6Pktinfo(addr string, ifindex int32) []byte {
	a := netip.MustParseAddr(addr).As16()
	return binary.NativeEndian.AppendUint32(a[:], uint32(ifindex))
}

// aligned copies b into a fresh allocation, as the server's oob buffer is,
// so that the header cast sees the alignment the kernel guarantees.
func aligned(b []byte) []byte { return append(make([]byte, 0, len(b)+8), b...) }

func TestParsePacketInfo(t *testing.T) {
	timestamp := cmsg(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMP, make([]byte, 16))
	tests := []struct {
		name     string
		oob      []byte
		dst, src string // "" for an invalid address
		ifindex  int
	}{
		{"a unicast IPv4 call is answered from its destination",
			cmsg(syscall.IPPROTO_IP, syscall.IP_PKTINFO, inPktinfo(1, "127.0.0.2", "127.0.0.2")), "127.0.0.2", "127.0.0.2", 1},
		{"a broadcast is answered from spec_dst",
			cmsg(syscall.IPPROTO_IP, syscall.IP_PKTINFO, inPktinfo(2, "192.0.2.2", "192.0.2.255")), "192.0.2.255", "192.0.2.2", 2},
		{"an empty spec_dst leaves the source to the kernel",
			cmsg(syscall.IPPROTO_IP, syscall.IP_PKTINFO, inPktinfo(2, "0.0.0.0", "10.0.0.1")), "10.0.0.1", "", 2},
		{"a unicast IPv6 call is answered from its destination",
			cmsg(syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO, in6Pktinfo("::1", 1)), "::1", "::1", 1},
		{"an IPv6 multicast leaves the source to the kernel",
			cmsg(syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO, in6Pktinfo("ff02::202", 3)), "ff02::202", "", 3},
		{"another control message first",
			append(timestamp, cmsg(syscall.IPPROTO_IP, syscall.IP_PKTINFO, inPktinfo(1, "127.0.0.1", "127.0.0.1"))...), "127.0.0.1", "127.0.0.1", 1},
		{"no packet information", timestamp, "", "", 0},
		{"an empty buffer", nil, "", "", 0},
		{"a pktinfo too short for its type",
			cmsg(syscall.IPPROTO_IP, syscall.IP_PKTINFO, make([]byte, 8)), "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, src, ifindex := parsePacketInfo(aligned(tt.oob))
			if addrOrEmpty(dst) != tt.dst || addrOrEmpty(src) != tt.src || ifindex != tt.ifindex {
				t.Errorf("got dst %v src %v ifindex %d, want %q %q %d", dst, src, ifindex, tt.dst, tt.src, tt.ifindex)
			}
		})
	}
}

func addrOrEmpty(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Cut anywhere, or with a length field that lies, the buffer is never read
// past its end.
func TestParsePacketInfoDamaged(t *testing.T) {
	full := append(cmsg(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMP, make([]byte, 16)),
		cmsg(syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO, in6Pktinfo("::1", 1))...)
	for n := range len(full) {
		if dst, _, _ := parsePacketInfo(aligned(full[:n])); dst.IsValid() && n < len(full)-4 {
			t.Errorf("%d of %d bytes: found %v in a cut buffer", n, len(full), dst)
		}
	}
	for _, l := range []uint64{0, 1, uint64(syscall.SizeofCmsghdr) - 1, 1 << 40, 1 << 63, ^uint64(0)} {
		b := aligned(cmsg(syscall.IPPROTO_IP, syscall.IP_PKTINFO, inPktinfo(1, "127.0.0.1", "127.0.0.1")))
		(*syscall.Cmsghdr)(unsafe.Pointer(&b[0])).Len = l
		if dst, _, _ := parsePacketInfo(b); dst.IsValid() {
			t.Errorf("length %d: found %v", l, dst)
		}
	}
}

// What appendPacketInfo asks the kernel for, parsed back.
func TestAppendPacketInfo(t *testing.T) {
	_, src, _ := parsePacketInfo(aligned(appendPacketInfo(nil, netip.MustParseAddr("127.0.0.2"), 5)))
	if src != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("IPv4: source %v, want 127.0.0.2", src)
	}
	b := aligned(appendPacketInfo(nil, netip.MustParseAddr("fe80::1"), 5))
	dst, src, ifindex := parsePacketInfo(b)
	if dst != netip.MustParseAddr("fe80::1") || src != dst || ifindex != 5 {
		t.Errorf("IPv6 link-local: %v %v %d, want fe80::1 twice and interface 5", dst, src, ifindex)
	}
	if _, _, ifindex := parsePacketInfo(aligned(appendPacketInfo(nil, netip.MustParseAddr("::1"), 5))); ifindex != 0 {
		t.Errorf("IPv6 global: interface %d, want 0 (let the kernel route)", ifindex)
	}
	if len(b) != syscall.CmsgSpace(20) {
		t.Errorf("IPv6 control message of %d bytes, want %d", len(b), syscall.CmsgSpace(20))
	}
}
