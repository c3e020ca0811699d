package tirpc

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ResolveTimeout bounds one name lookup; glibc's resolver gives up after
// about as long with its default of two tries of five seconds.
const ResolveTimeout = 10 * time.Second

// Getaddrinfo returns the addresses of host of the given family (0 for
// any) in the order glibc's getaddrinfo gives them: a numeric address
// (including inet_aton's short forms such as "127.1") as is, names
// through the resolver, sorted by the rules of RFC 6724 that matter
// here (reachable first, then by precedence, which puts ::1 before
// 127.0.0.1 for "localhost").
func (c *Config) Getaddrinfo(host string, family int) ([]netip.Addr, bool) {
	if host == "" {
		return nil, false
	}
	var addrs []netip.Addr
	if a, ok := InetAton(host); ok {
		addrs = []netip.Addr{a}
	} else if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), ResolveTimeout)
		defer cancel()
		found, err := c.LookupHost(ctx, host)
		if err != nil || len(found) == 0 {
			return nil, false
		}
		addrs = sortAddrs(found)
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case family == syscall.AF_INET && !a.Is4(), family == syscall.AF_INET6 && !a.Is6():
			continue
		}
		out = append(out, a)
	}
	return out, len(out) > 0
}

// DefaultLookup resolves a name with Go's resolver.
func DefaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// InetAton parses the IPv4 forms glibc's inet_aton accepts: one to four
// parts, each decimal, octal (leading 0) or hex (0x), the last filling
// the remaining bytes.
func InetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
			if p == "" {
				p = "0" // "0x" alone is 0 to inet_aton
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	n := len(parts)
	for i := 0; i < n-1; i++ {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
	}
	if vals[n-1] >= 1<<(8*(5-n)) {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i := 0; i < n-1; i++ {
		b[i] = byte(vals[i])
	}
	last := vals[n-1]
	for i := 3; i >= n-1; i-- {
		b[i] = byte(last)
		last >>= 8
	}
	return netip.AddrFrom4(b), true
}

// sortAddrs orders addresses as RFC 6724 destination selection does for
// the cases a portmapper client meets: an address the host has no route
// to goes last (rule 1), then higher precedence first (rule 6).
func sortAddrs(addrs []netip.Addr) []netip.Addr {
	type ranked struct {
		a      netip.Addr
		usable bool
		prec   int
	}
	rs := make([]ranked, len(addrs))
	for i, a := range addrs {
		rs[i] = ranked{a, routable(a), precedence(a)}
	}
	slices.SortStableFunc(rs, func(x, y ranked) int {
		if x.usable != y.usable {
			if x.usable {
				return -1
			}
			return 1
		}
		return y.prec - x.prec
	})
	out := make([]netip.Addr, len(rs))
	for i, r := range rs {
		out[i] = r.a
	}
	return out
}

// routable reports whether the kernel has a source address for a: a
// connected UDP socket sends nothing but needs a route.
func routable(a netip.Addr) bool {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 111)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// precedence is RFC 6724's default policy table.
func precedence(a netip.Addr) int {
	a = a.Unmap()
	if a.Is4() {
		return 35
	}
	in := func(p string) bool { return netip.MustParsePrefix(p).Contains(a) }
	switch {
	case a == netip.IPv6Loopback():
		return 50
	case in("2002::/16"):
		return 30
	case in("2001::/32"):
		return 5
	case in("fc00::/7"):
		return 3
	case in("::/96"), in("fec0::/10"), in("3ffe::/16"):
		return 1
	}
	return 40
}

// ServicePort is the portmapper's port: -n's when given, else the
// first of names found in /etc/services (glibc's getaddrinfo service
// lookup), else none.
func (c *Config) ServicePort(names ...string) (int, bool) {
	if c.Port > 0 {
		return c.Port, true
	}
	for _, n := range names {
		if p, err := net.LookupPort("tcp", n); err == nil {
			return p, true
		}
		if p, err := net.LookupPort("udp", n); err == nil {
			return p, true
		}
	}
	return 0, false
}
