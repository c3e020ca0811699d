package rpc

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// enablePacketInfo asks the kernel to report each datagram's destination
// address, so that a socket bound to a wildcard can reply from it.
func enablePacketInfo(conn *net.UDPConn, v6 bool) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVPKTINFO, 1)
		} else {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// parsePacketInfo finds IP_PKTINFO or IPV6_PKTINFO in a control message
// buffer without allocating. It returns the address the datagram was sent
// to, the local address a reply should leave from, and the interface.
//
// The two addresses differ for broadcast and multicast: a reply cannot come
// from 127.255.255.255 or ff02::202. For IPv4 the kernel names the address
// to answer from (ipi_spec_dst, what libtirpc's svc_dg sends back); for an
// IPv6 multicast the source is left invalid for the kernel to choose.
func parsePacketInfo(oob []byte) (dst, src netip.Addr, ifindex int) {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(oob) {
			break
		}
		data := oob[syscall.SizeofCmsghdr:l]
		switch {
		case h.Level == syscall.IPPROTO_IP && h.Type == syscall.IP_PKTINFO && len(data) >= 12:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			ifindex = int(int32(binary.NativeEndian.Uint32(data[0:4])))
			dst = netip.AddrFrom4([4]byte(data[8:12]))
			src = netip.AddrFrom4([4]byte(data[4:8]))
			if src.IsUnspecified() {
				src = netip.Addr{}
			}
			return dst, src, ifindex
		case h.Level == syscall.IPPROTO_IPV6 && h.Type == syscall.IPV6_PKTINFO && len(data) >= 20:
			// struct in6_pktinfo { in6_addr addr; int ifindex; }
			ifindex = int(int32(binary.NativeEndian.Uint32(data[16:20])))
			dst = netip.AddrFrom16([16]byte(data[0:16]))
			if !dst.IsMulticast() {
				src = dst
			}
			return dst, src, ifindex
		}
		oob = oob[min(cmsgAlign(l), len(oob)):]
	}
	return netip.Addr{}, netip.Addr{}, 0
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}

// appendPacketInfo builds the control message that makes the kernel send
// a datagram from src.
func appendPacketInfo(b []byte, src netip.Addr, ifindex int) []byte {
	var h syscall.Cmsghdr
	var data []byte
	if src.Is4() {
		h.Level, h.Type = syscall.IPPROTO_IP, syscall.IP_PKTINFO
		var pi [12]byte
		a := src.As4()
		copy(pi[4:8], a[:]) // spec_dst: the source address to use
		data = pi[:]
	} else {
		h.Level, h.Type = syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO
		var pi [20]byte
		a := src.As16()
		copy(pi[0:16], a[:])
		if src.IsLinkLocalUnicast() {
			binary.NativeEndian.PutUint32(pi[16:20], uint32(ifindex))
		}
		data = pi[:]
	}
	h.SetLen(syscall.CmsgLen(len(data)))
	hb := unsafe.Slice((*byte)(unsafe.Pointer(&h)), syscall.SizeofCmsghdr)
	b = append(b, hb...)
	b = append(b, data...)
	for len(b) < syscall.CmsgSpace(len(data)) {
		b = append(b, 0)
	}
	return b
}
