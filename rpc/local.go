package rpc

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// A program on this host that calls one of the host's own addresses (not
// 127.0.0.1), as a client given the host's name does, is a local caller:
// its datagram never left the host, and neither does the reply, whose
// destination is this host. The reflection guards exist for replies that
// reach third parties, so such a caller is answered as a loopback one is.
//
// The kernel does not say outright that a datagram came over loopback:
// IP_PKTINFO and IPV6_PKTINFO name the interface that holds the
// destination address for locally sent traffic (ipv4_pktinfo_prepare
// swaps the loopback index for it), the same index a datagram arriving
// from outside on that interface has. What tells them apart is the rule
// Linux applies on arrival: an IPv4 datagram whose source is one of the
// host's own addresses is dropped as a martian on every interface but
// loopback, unless accept_local is set there. So a caller is local when
// its datagram arrived on loopback, or its source is an address of this
// host and the interface it was reported on (or "all") does not accept
// such sources from outside. IPv6 has no such rule, so an IPv6 source is
// local only on the loopback interface.
//
// Who may SET and UNSET is decided elsewhere, by source address, as
// rpcbind decides it; this only relaxes the datagram guards.

// loopbackIfindex is the index of the loopback interface in every network
// namespace of Linux (LOOPBACK_IFINDEX).
const loopbackIfindex = 1

// hostAddrsRefresh bounds how often the host's addresses are read again: a
// flood of forged sources costs at most one read a second.
const hostAddrsRefresh = time.Second

// hostAddrs caches the host's addresses and the interfaces that accept
// datagrams with a local source from outside.
type hostAddrs struct {
	// load reads the current state; tests replace it.
	load func() (addrs map[netip.Addr]bool, acceptLocal map[int]bool)

	mu          sync.Mutex
	at          time.Time
	addrs       map[netip.Addr]bool
	acceptLocal map[int]bool // ifindex (0: "all") → accepts local sources
}

// localCaller reports whether a datagram from src, reported on interface
// ifindex (0 if unknown), was sent by a program on this host.
func (h *hostAddrs) localCaller(src netip.Addr, ifindex int) bool {
	src = src.Unmap()
	if src.IsLoopback() || ifindex == loopbackIfindex {
		return true
	}
	if ifindex == 0 || !src.Is4() {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if !h.addrs[src] && now.Sub(h.at) >= hostAddrsRefresh {
		// An address added since the last read: read again.
		load := h.load
		if load == nil {
			load = loadHostAddrs
		}
		h.addrs, h.acceptLocal = load()
		h.at = now
	}
	return h.addrs[src] && !h.acceptLocal[0] && !h.acceptLocal[ifindex]
}

// loadHostAddrs reads the host's IPv4 addresses and the accept_local
// setting of each interface.
func loadHostAddrs() (map[netip.Addr]bool, map[int]bool) {
	addrs := make(map[netip.Addr]bool)
	accept := map[int]bool{0: sysctlOn("all")}
	ifcs, err := net.Interfaces()
	if err != nil {
		return addrs, accept
	}
	for _, ifc := range ifcs {
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
					addrs[ip.Unmap()] = true
				}
			}
		}
		accept[ifc.Index] = sysctlOn(ifc.Name)
	}
	return addrs, accept
}

// sysctlOn reads net.ipv4.conf.NAME.accept_local. An unreadable setting
// counts as on: the guard then stays, as it was before.
func sysctlOn(name string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + name + "/accept_local")
	return err != nil || !bytes.Equal(bytes.TrimSpace(b), []byte("0"))
}
