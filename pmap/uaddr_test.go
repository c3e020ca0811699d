package pmap

import (
	"net/netip"
	"testing"
)

// RFC 5665 section 5.2.3: an IP universal address is the address's text
// form followed by ".p1.p2", the port's high and low byte in decimal.
func TestFormatUaddr(t *testing.T) {
	tests := []struct {
		ap   string
		want string
	}{
		{"0.0.0.0:111", "0.0.0.0.0.111"},
		{"10.1.2.3:2049", "10.1.2.3.8.1"},
		{"255.255.255.255:65535", "255.255.255.255.255.255"},
		{"[::]:111", "::.0.111"},
		{"[::1]:2049", "::1.8.1"},
		{"[2001:db8::1]:0", "2001:db8::1.0.0"},
		{"[::ffff:1.2.3.4]:256", "::ffff:1.2.3.4.1.0"},
		{"[fe80::1%eth0]:1", "fe80::1.0.1"},
	}
	for _, tt := range tests {
		ap := netip.MustParseAddrPort(tt.ap)
		if got := FormatUaddr(ap); got != tt.want {
			t.Errorf("FormatUaddr(%s) = %q, want %q", tt.ap, got, tt.want)
		}
		if got := string(AppendUaddr([]byte("x"), ap)); got != "x"+tt.want {
			t.Errorf("AppendUaddr(%s) = %q", tt.ap, got)
		}
	}
}

// ParseUaddr splits at the last two dots and is strict about the rest.
func TestParseUaddr(t *testing.T) {
	tests := []struct {
		s    string
		want string // AddrPort, or "" for an error
	}{
		{"0.0.0.0.0.111", "0.0.0.0:111"},
		{"10.1.2.3.8.1", "10.1.2.3:2049"},
		{"::.0.111", "[::]:111"},
		{"::1.8.1", "[::1]:2049"},
		{"::ffff:1.2.3.4.1.0", "[::ffff:1.2.3.4]:256"},
		{"1.2.3.4.255.255", "1.2.3.4:65535"},
		{"1.2.3.4.256.0", ""},
		{"1.2.3.4.-1.0", ""},
		{"1.2.3.4.+1.0", ""},
		{"1.2.3.4. 1.0", ""},
		{"1.2.3.4.1.", ""},
		{"1.2.3.4..1", ""},
		{"1.2.3.4.5", ""},
		{"1.2.3.4", ""},
		{"", ""},
		{"..", ""},
		{".1.2", ""},
		{"localhost.0.1", ""},
		{"1.2.3.04.0.1", ""},
		{"fe80::1%eth0.0.1", ""},
		{"/run/rpcbind.sock", ""},
	}
	for _, tt := range tests {
		ap, err := ParseUaddr(tt.s)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseUaddr(%q) = %v, want an error", tt.s, ap)
			}
			continue
		}
		if err != nil || ap != netip.MustParseAddrPort(tt.want) {
			t.Errorf("ParseUaddr(%q) = (%v, %v), want %s", tt.s, ap, err, tt.want)
		}
	}
}

// rpcbind's uaddr2port reads the last two parts with atoi and adds
// hi*256+lo, without looking at the host part.
func TestUaddrPortIsLenient(t *testing.T) {
	tests := []struct {
		s    string
		port uint32
		ok   bool
	}{
		{"0.0.0.0.8.1", 0x801, true},
		{"anything.8.1", 0x801, true},
		{"a.b.c", 0, true},
		{"1.2.3.4.300.7", 300*256 + 7, true},
		{"1.2.3.4.-1.5", uint32(0xffffff05), true},
		{"x.1.2junk", 258, true},
		{"nodots", 0, false},
		{"one.dot", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if port, ok := UaddrPort(tt.s); port != tt.port || ok != tt.ok {
			t.Errorf("UaddrPort(%q) = (%#x, %v), want (%#x, %v)", tt.s, port, ok, tt.port, tt.ok)
		}
	}
}

// atoi gives what glibc's atoi gives on x86-64 (values taken from a C
// program): strtol's saturation at the limits of long, then truncation.
func TestAtoiMatchesGlibc(t *testing.T) {
	tests := []struct {
		s    string
		want int32
	}{
		{"5", 5},
		{"-5", -5},
		{" +7x", 7},
		{"\t\n\v\f\r 9", 9},
		{"2147483648", -2147483648},
		{"4294967297", 1},
		{"-2147483649", 2147483647},
		{"9223372036854775807", -1},
		{"9223372036854775808", -1},
		{"99999999999999999999", -1},
		{"-9223372036854775808", 0},
		{"-9223372036854775809", 0},
		{"-99999999999999999999", 0},
		{"18446744073709551621", -1},
		{"", 0},
		{"-", 0},
		{"x12", 0},
		{"--1", 0},
	}
	for _, tt := range tests {
		if got := atoi(tt.s); got != tt.want {
			t.Errorf("atoi(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

// LenientUaddr is libtirpc's uaddr2taddr for IP: atoi for the port bytes,
// (hi<<8)|lo truncated to 16 bits, and a host of the family asked for.
func TestLenientUaddr(t *testing.T) {
	tests := []struct {
		s      string
		family int
		want   string
	}{
		{"1.2.3.4.5.6", 4, "1.2.3.4:1286"},
		{"1.2.3.4.300.1", 4, "1.2.3.4:11265"},
		{"1.2.3.4.-1.5", 4, "1.2.3.4:65285"},
		{"1.2.3.4. 5.x6", 4, "1.2.3.4:1280"},
		{"::1.8.1", 6, "[::1]:2049"},
		{"::ffff:1.2.3.4.0.1", 6, "[::ffff:1.2.3.4]:1"},
		{"::1.8.1", 4, ""},
		{"1.2.3.4.5.6", 6, ""},
		{"1.2.3.4.5", 4, ""},
		{"fe80::1%eth0.0.1", 6, ""},
		{"1.2.3.04.0.1", 4, ""},
	}
	for _, tt := range tests {
		ap, ok := LenientUaddr(tt.s, tt.family)
		if tt.want == "" {
			if ok {
				t.Errorf("LenientUaddr(%q, %d) = %v, want failure", tt.s, tt.family, ap)
			}
			continue
		}
		if !ok || ap != netip.MustParseAddrPort(tt.want) {
			t.Errorf("LenientUaddr(%q, %d) = (%v, %v), want %s", tt.s, tt.family, ap, ok, tt.want)
		}
	}
}
