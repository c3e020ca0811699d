package rpc

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatchSize is how many datagrams one recvmmsg takes and one sendmmsg
// sends. Closed-loop clients keep about as many calls queued as there are
// clients, and a batch of them costs one system call each way instead of
// one per call, plus one wake-up of the reader instead of one per call.
const udpBatchSize = 16

// mmsghdr is struct mmsghdr: a msghdr and the length the kernel received
// or sent. The syscall package has the msghdr but not the pair.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// Control buffers: IP_PKTINFO and IPV6_PKTINFO are the only control
// messages asked for, 32 and 36 bytes with their headers.
const (
	recvOOBSize = 64
	sendOOBSize = 40
)

// udpBatch holds the buffers of one reader of a datagram socket: the
// datagrams and control messages of a recvmmsg, and the replies of the
// sendmmsg that answers them. All of it lives as long as the reader, so
// the steady state allocates nothing.
type udpBatch struct {
	in      [udpBatchSize]mmsghdr
	inIov   [udpBatchSize]syscall.Iovec
	inName  [udpBatchSize]syscall.RawSockaddrInet6
	inOOB   [udpBatchSize][recvOOBSize]byte
	inBuf   []byte // udpBatchSize datagrams of maxCallDatagram bytes
	out     [udpBatchSize]mmsghdr
	outIov  [udpBatchSize]syscall.Iovec
	outName [udpBatchSize]syscall.RawSockaddrInet6
	outOOB  [udpBatchSize][sendOOBSize]byte
	outBuf  []byte // replies, back to back
	queued  int
}

func newUDPBatch() *udpBatch {
	b := &udpBatch{
		inBuf:  make([]byte, udpBatchSize*maxCallDatagram),
		outBuf: make([]byte, 0, 2*maxDatagram),
	}
	for i := range b.in {
		b.inIov[i].Base = &b.inBuf[i*maxCallDatagram]
		b.inIov[i].SetLen(maxCallDatagram)
		h := &b.in[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.inName[i]))
		h.Iov = &b.inIov[i]
		h.Iovlen = 1
		h.Control = &b.inOOB[i][0]
	}
	for i := range b.out {
		h := &b.out[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.outName[i]))
		h.Iov = &b.outIov[i]
		h.Iovlen = 1
	}
	return b
}

// recvmmsg reads up to udpBatchSize datagrams from a non-blocking socket.
// It returns EAGAIN when none is waiting.
func (b *udpBatch) recvmmsg(fd uintptr) (int, syscall.Errno) {
	for i := range b.in {
		h := &b.in[i].hdr
		h.Namelen = syscall.SizeofSockaddrInet6
		h.SetControllen(recvOOBSize)
		h.Flags = 0
	}
	for {
		n, _, errno := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&b.in[0])), udpBatchSize, syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}

// datagram returns the i-th datagram received, its sender and its control
// messages.
func (b *udpBatch) datagram(i int) (data []byte, from netip.AddrPort, oob []byte) {
	m := &b.in[i]
	data = b.inBuf[i*maxCallDatagram : i*maxCallDatagram+min(int(m.n), maxCallDatagram)]
	oob = b.inOOB[i][:min(int(m.hdr.Controllen), recvOOBSize)]
	return data, sockaddrAddrPort(&b.inName[i], m.hdr.Namelen), oob
}

// room reports whether another reply of up to maxDatagram bytes fits.
func (b *udpBatch) room() bool {
	return b.queued < udpBatchSize && cap(b.outBuf)-len(b.outBuf) >= maxDatagram
}

// queue adds a reply, which must lie at the end of outBuf, addressed to
// to, from the local address src when it is valid. family is the socket's.
func (b *udpBatch) queue(reply []byte, to netip.AddrPort, src netip.Addr, ifindex int, family int) {
	i := b.queued
	b.queued++
	b.outIov[i].Base = unsafe.SliceData(reply)
	b.outIov[i].SetLen(len(reply))
	h := &b.out[i].hdr
	h.Namelen = putSockaddr(&b.outName[i], to, family)
	h.Control, h.Controllen = nil, 0
	if src.IsValid() {
		oob := appendPacketInfo(b.outOOB[i][:0], src, ifindex)
		h.Control = &b.outOOB[i][0]
		h.SetControllen(len(oob))
	}
}

// sendmmsg sends the queued replies from the first one not yet sent. It
// returns how many went out, or the error of the first when none did.
func (b *udpBatch) sendmmsg(fd uintptr, first int) (int, syscall.Errno) {
	for {
		n, _, errno := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&b.out[first])), uintptr(b.queued-first), syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}

// reset forgets the queued replies once they are sent.
func (b *udpBatch) reset() {
	b.queued = 0
	b.outBuf = b.outBuf[:0]
}

// sockaddrAddrPort converts a socket address the kernel wrote, namelen
// bytes of it (a sender's from recvmmsg, a peer's from accept4, a local one
// from getsockname), as the net package would: an IPv4-mapped address
// stays mapped, and a scope id becomes a numeric zone (which pmap and netip
// read back as the index; GETADDR's answer to a link-local caller depends
// on it). Any other family is the invalid AddrPort.
func sockaddrAddrPort(sa *syscall.RawSockaddrInet6, namelen uint32) netip.AddrPort {
	switch sa.Family {
	case syscall.AF_INET:
		if namelen < syscall.SizeofSockaddrInet4 {
			return netip.AddrPort{}
		}
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), netPort(sa4.Port))
	case syscall.AF_INET6:
		if namelen < syscall.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, netPort(sa.Port))
	}
	return netip.AddrPort{}
}

// putSockaddr writes to as a sockaddr of the socket's family and returns
// its length.
func putSockaddr(sa *syscall.RawSockaddrInet6, to netip.AddrPort, family int) uint32 {
	*sa = syscall.RawSockaddrInet6{}
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], to.Port())
	if family == syscall.AF_INET {
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = syscall.AF_INET
		sa4.Port = *(*uint16)(unsafe.Pointer(&port))
		sa4.Addr = to.Addr().Unmap().As4()
		return syscall.SizeofSockaddrInet4
	}
	sa.Family = syscall.AF_INET6
	sa.Port = *(*uint16)(unsafe.Pointer(&port))
	sa.Addr = to.Addr().As16()
	if z := to.Addr().Zone(); z != "" {
		sa.Scope_id = uint32(ZoneIndex(z))
	}
	return syscall.SizeofSockaddrInet6
}

// ZoneIndex is the interface index an IPv6 zone names, by number (as the
// datagram reader writes zones) or by interface name; 0 if neither.
func ZoneIndex(zone string) int {
	if n, err := strconv.Atoi(zone); err == nil {
		return n
	}
	if ifc, err := net.InterfaceByName(zone); err == nil {
		return ifc.Index
	}
	return 0
}

// socketFamily is the address family of a socket, AF_INET or AF_INET6.
func socketFamily(fd uintptr) (int, error) {
	return syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
}
