package pmap

import (
	"errors"
	"math"
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
	host, hi, lo, ok := SplitUaddr(s)
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

// SplitUaddr splits a universal address at its last two dots: the host
// part and the port's two decimal parts, unread. It reports false when
// there are not two dots.
func SplitUaddr(s string) (host, hi, lo string, ok bool) {
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
	_, hi, lo, ok := SplitUaddr(s)
	if !ok {
		return 0, false
	}
	return uint32(atoi(hi)*256 + atoi(lo)), true
}

// StrictUaddrPort extracts the port of a universal address ("h.h.h.h.p1.p2",
// or an IPv6 host followed by ".p1.p2") the strict way: the last two
// dot-separated fields must each be one to three decimal digits of at most
// 255. It is for clients checking a portmapper's answer, where UaddrPort's
// leniency would hide a wrong one; it takes the wire's bytes or a string
// and allocates nothing.
func StrictUaddrPort[T string | []byte](s T) (uint32, bool) {
	var parts [2]uint32
	end := len(s)
	for k := 1; k >= 0; k-- {
		i := end - 1
		for i >= 0 && s[i] != '.' {
			i--
		}
		if n := end - i - 1; i < 0 || n == 0 || n > 3 {
			return 0, false
		}
		var v uint32
		for j := i + 1; j < end; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + uint32(c-'0')
		}
		if v > 255 {
			return 0, false
		}
		parts[k] = v
		end = i
	}
	return parts[0]<<8 | parts[1], true
}

// atoi reads an optional sign and leading decimal digits as glibc's atoi
// does: strtol, which saturates at the limits of a 64-bit long, then
// truncation to a 32-bit int. Anything after the digits is ignored.
func atoi(s string) int32 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n uint64 // magnitude, saturated just above the largest long
	const limit = 1 << 63
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if d := uint64(s[i] - '0'); n > (limit-d)/10 {
			n = limit
		} else {
			n = n*10 + d
		}
	}
	var l int64
	switch {
	case neg && n >= limit:
		l = math.MinInt64
	case neg:
		l = -int64(n)
	case n >= limit:
		l = math.MaxInt64
	default:
		l = int64(n)
	}
	return int32(l)
}

// LenientUaddr parses an IP universal address as libtirpc's uaddr2taddr
// does: the port bytes are read with atoi semantics and combined as
// (hi<<8)|lo truncated to 16 bits; the host part is read by inet_pton for
// the given family (4 or 6; any other value tries both). It neither
// allocates nor keeps s, so a hint from the wire costs nothing.
func LenientUaddr(s string, family int) (netip.AddrPort, bool) {
	host, hi, lo, ok := SplitUaddr(s)
	if !ok {
		return netip.AddrPort{}, false
	}
	port := uint16(uint32(atoi(hi))<<8 | uint32(atoi(lo)))
	if family != 6 {
		if a, ok := inetPton4(host); ok {
			return netip.AddrPortFrom(netip.AddrFrom4(a), port), true
		}
	}
	if family != 4 {
		if a, ok := inetPton6(host); ok {
			return netip.AddrPortFrom(netip.AddrFrom16(a), port), true
		}
	}
	return netip.AddrPort{}, false
}

// inetPton4 reads s as glibc's inet_pton(AF_INET): exactly four decimal
// parts, each at most 255 and without leading zeros.
func inetPton4(s string) (a [4]byte, ok bool) {
	octets := 0
	sawDigit := false
	cur := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if sawDigit && cur == 0 {
				return a, false
			}
			if cur = cur*10 + int(c-'0'); cur > 255 {
				return a, false
			}
			if !sawDigit {
				if octets++; octets > 4 {
					return a, false
				}
				sawDigit = true
			}
			a[octets-1] = byte(cur)
		case c == '.' && sawDigit:
			if octets == 4 {
				return a, false
			}
			sawDigit, cur = false, 0
		default:
			return a, false
		}
	}
	return a, octets == 4
}

// inetPton6 reads s as glibc's inet_pton(AF_INET6): groups of one to four
// hex digits, at most one "::", and optionally a dotted IPv4 address in
// the last 32 bits. There are no zones.
func inetPton6(s string) (a [16]byte, ok bool) {
	if s == "" {
		return a, false
	}
	i := 0
	if s[0] == ':' {
		if len(s) < 2 || s[1] != ':' {
			return a, false
		}
		i = 1
	}
	tp, colonp, curtok := 0, -1, i
	digits, val := 0, 0
	v4 := false
	for i < len(s) && !v4 {
		c := s[i]
		i++
		if d := hexDigit(c); d >= 0 {
			if digits == 4 {
				return a, false
			}
			val = val<<4 | d
			digits++
			continue
		}
		switch {
		case c == ':':
			curtok = i
			if digits == 0 {
				if colonp >= 0 {
					return a, false
				}
				colonp = tp
				continue
			}
			if i == len(s) || tp+2 > len(a) {
				return a, false
			}
			a[tp], a[tp+1] = byte(val>>8), byte(val)
			tp += 2
			digits, val = 0, 0
		case c == '.' && tp+4 <= len(a):
			q, ok := inetPton4(s[curtok:])
			if !ok {
				return a, false
			}
			copy(a[tp:], q[:])
			tp += 4
			digits = 0
			v4 = true
		default:
			return a, false
		}
	}
	if digits > 0 {
		if tp+2 > len(a) {
			return a, false
		}
		a[tp], a[tp+1] = byte(val>>8), byte(val)
		tp += 2
	}
	if colonp >= 0 {
		if tp == len(a) {
			return a, false // "::" standing for no group at all
		}
		n := tp - colonp
		copy(a[len(a)-n:], a[colonp:tp])
		clear(a[colonp : len(a)-n])
		tp = len(a)
	}
	return a, tp == len(a)
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
