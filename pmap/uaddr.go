package pmap

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// Universal addresses (RFC 5665, section 5.2.3): an IP address in its
// text form followed by ".p1.p2", the port's high and low byte; a local
// (AF_UNIX) address is the socket's path.

// ErrUaddr means a string is not a universal address.
var ErrUaddr = errors.New("pmap: malformed universal address")

// FormatUaddr returns the universal address of an IP address and port.
// IPv4-mapped IPv6 addresses keep their IPv6 form.
func FormatUaddr(ap netip.AddrPort) string {
	return string(AppendUaddr(nil, ap))
}

// AppendUaddr appends the universal address of ap to b.
func AppendUaddr(b []byte, ap netip.AddrPort) []byte {
	b = ap.Addr().WithZone("").AppendTo(b)
	p := ap.Port()
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(p>>8), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(p&0xff), 10)
}

// ParseUaddr parses an IP universal address strictly: an address in text
// form and two decimal bytes, split at the last two dots.
func ParseUaddr(s string) (netip.AddrPort, error) {
	host, hi, lo, ok := splitUaddr(s)
	if !ok {
		return netip.AddrPort{}, ErrUaddr
	}
	h, err1 := strconv.ParseUint(hi, 10, 8)
	l, err2 := strconv.ParseUint(lo, 10, 8)
	if err1 != nil || err2 != nil {
		return netip.AddrPort{}, ErrUaddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, ErrUaddr
	}
	return netip.AddrPortFrom(a, uint16(h<<8|l)), nil
}

func splitUaddr(s string) (host, hi, lo string, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(s[:i], '.')
	if j < 0 {
		return "", "", "", false
	}
	return s[:j], s[j+1 : i], s[i+1:], true
}

// UaddrPort extracts the port of an IP universal address the lenient way
// rpcbind does (its uaddr2port): the two parts after the last two dots are
// read like C's atoi and combined as hi*256+lo, without checking the
// host part. It reports false when there are not two dots.
func UaddrPort(s string) (uint32, bool) {
	_, hi, lo, ok := splitUaddr(s)
	if !ok {
		return 0, false
	}
	return uint32(atoi(hi)*256 + atoi(lo)), true
}

// atoi reads an optional sign and leading decimal digits as C's atoi does,
// ignoring anything after them, and wraps like a 32-bit int.
func atoi(s string) int32 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n int32
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int32(s[i]-'0')
	}
	if neg {
		n = -n
	}
	return n
}

// LenientUaddr parses an IP universal address as libtirpc's uaddr2taddr
// does: the port bytes are read with atoi semantics and combined as
// (hi<<8)|lo truncated to 16 bits; the host part must be an address of the
// given family (4 or 6).
func LenientUaddr(s string, family int) (netip.AddrPort, bool) {
	host, hi, lo, ok := splitUaddr(s)
	if !ok {
		return netip.AddrPort{}, false
	}
	port := uint16(uint32(atoi(hi))<<8 | uint32(atoi(lo)))
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, false
	}
	if family == 4 && !a.Is4() || family == 6 && !a.Is6() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, port), true
}
