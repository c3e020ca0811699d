package pmap

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// UADDR2TADDR and TADDR2UADDR convert with the address family of the
// transport the call arrived on; what does not convert is an empty netbuf
// or an empty string. The expected bytes are what Debian's rpcbind 1.2.6
// (libtirpc 1.3.3) answered on x86-64, where the sockaddr family is in
// host byte order.

func TestUaddr2taddrConvertsWithArrivalFamily(t *testing.T) {
	tests := []struct {
		name   string
		c      caller
		uaddr  string
		maxlen uint32
		hex    string
	}{
		{"inet", loopbackUDP, "1.2.3.4.5.6", 16, "02000506010203040000000000000000"},
		{"inet port bytes above 255 wrap", loopbackUDP, "1.2.3.4.300.1", 16, "02002c01010203040000000000000000"},
		{"inet negative port byte", loopbackUDP, "1.2.3.4.-1.5", 16, "0200ff05010203040000000000000000"},
		{"inet port bytes read like atoi", loopbackUDP, "1.2.3.4. 5.x6", 16, "02000500010203040000000000000000"},
		{"inet6", loopbackUDP6, "::1.8.1", 28, "0a000801000000000000000000000000000000000000000100000000"},
		{"inet6 IPv4-mapped", loopbackUDP6, "::ffff:1.2.3.4.0.1", 28, "0a0000010000000000000000000000000000ffff0102030400000000"},
		{"local path", localRoot, "/run/x.sock", 110, "01002f72756e2f782e736f636b"},
		{"local path ends at NUL", localRoot, "/run/x\x00.sock", 110, "01002f72756e2f78"},

		{"inet6 address over inet", loopbackUDP, "::1.8.1", 0, ""},
		{"path over inet", loopbackUDP, "/run/x.sock", 0, ""},
		{"one port byte", loopbackUDP, "1.2.3.4.5", 0, ""},
		{"no dots", loopbackUDP, "abc", 0, ""},
		{"empty", loopbackUDP, "", 0, ""},
		{"host name", loopbackUDP, "foo.1.2", 0, ""},
		{"leading zero", loopbackUDP, "1.2.3.04.0.1", 0, ""},
		{"zone", loopbackUDP6, "fe80::1%eth0.0.1", 0, ""},
		{"inet over inet6", loopbackUDP6, "1.2.3.4.5.6", 0, ""},
		{"huge number", loopbackUDP, "99999999999999999999.1.2.3.4.5", 0, ""},
		{"empty over local", localRoot, "", 0, ""},
		{"no dots over local", localRoot, "abc", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, v := range []uint32{VersRPCB3, VersRPCB4} {
				nb, err := decodeNetbuf(h.ok(tt.c, v, ProcUaddr2taddr, xdrString(tt.uaddr)))
				if err != nil {
					t.Fatalf("v%d: reply is not a netbuf: %v", v, err)
				}
				if got := hex.EncodeToString(nb.buf); nb.maxlen != tt.maxlen || got != tt.hex {
					t.Errorf("v%d UADDR2TADDR(%q) over %s = {%d, %s}, want {%d, %s}", v, tt.uaddr, tt.c.netid, nb.maxlen, got, tt.maxlen, tt.hex)
				}
			}
		})
	}
	t.Run("local path longer than sun_path", func(t *testing.T) {
		h := newHarness(t)
		path := "/" + strings.Repeat("p", 200)
		nb, err := decodeNetbuf(h.ok(localRoot, VersRPCB3, ProcUaddr2taddr, xdrString(path)))
		if err != nil {
			t.Fatal(err)
		}
		if nb.maxlen != 110 || len(nb.buf) != 2+107 || !bytes.Equal(nb.buf[2:], []byte(path[:107])) {
			t.Errorf("got maxlen %d and %d bytes, want 110 and the path cut to 107 bytes", nb.maxlen, len(nb.buf))
		}
	})
}

func TestTaddr2uaddrConvertsWithArrivalFamily(t *testing.T) {
	sin := mustHex("02000801 0a010203 0000000000000000")
	sin6 := mustHex("0a000801 00000000 fe800000000000000000000000000001 02000000")
	sun := append(mustHex("0100"), "/run/x.sock\x00\x00\x00\x00\x00"...)
	long := append(mustHex("0100"), "/"+strings.Repeat("a", 200)...)
	tests := []struct {
		name string
		c    caller
		buf  []byte
		want string
	}{
		{"inet", loopbackUDP, sin, "10.1.2.3.8.1"},
		{"inet reads any family as inet", loopbackUDP, sin6, "0.0.0.0.8.1"},
		{"inet reads a sockaddr_un as inet", loopbackUDP, sun, "117.110.47.120.47.114"},
		{"inet too short", loopbackUDP, sin[:15], ""},
		{"inet empty", loopbackUDP, nil, ""},
		{"inet6", loopbackUDP6, sin6, "fe80::1.8.1"},
		{"inet6 reads a long sockaddr_un as inet6", loopbackUDP6, long, "6161:6161:6161:6161:6161:6161:6161:6161.47.97"},
		{"inet6 too short", loopbackUDP6, sin, ""},
		{"local", localRoot, sun, "/run/x.sock"},
		{"local path without NUL", localRoot, append(mustHex("0100"), "/abc"...), "/abc"},
		{"local path longer than sun_path", localRoot, long, "/" + strings.Repeat("a", 200)},
		{"local family only", localRoot, mustHex("0100"), ""},
		{"local empty", localRoot, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, v := range []uint32{VersRPCB3, VersRPCB4} {
				if got := h.stringCall(tt.c, v, ProcTaddr2uaddr, netbufArg(uint32(len(tt.buf)), tt.buf)); got != tt.want {
					t.Errorf("v%d TADDR2UADDR over %s = %q, want %q", v, tt.c.netid, got, tt.want)
				}
			}
		})
	}
}

// rpcbind converts with AF_LOCAL over the local socket whatever the
// address, which turns an IP address into garbage; portmapd takes the
// family from the address there instead, so that libtirpc's
// rpcb_uaddr2taddr and rpcb_taddr2uaddr, which talk to the local socket,
// work for IP transports.
func TestLocalSocketConvertsIPAddressesByTheirOwnFamily(t *testing.T) {
	h := newHarness(t)
	nb, err := decodeNetbuf(h.ok(localRoot, VersRPCB4, ProcUaddr2taddr, xdrString("1.2.3.4.5.6")))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(nb.buf); nb.maxlen != 16 || got != "02000506010203040000000000000000" {
		t.Errorf("UADDR2TADDR over local = {%d, %s}", nb.maxlen, got)
	}
	sin := mustHex("02000801 0a010203 0000000000000000")
	if got := h.stringCall(localRoot, VersRPCB4, ProcTaddr2uaddr, netbufArg(16, sin)); got != "10.1.2.3.8.1" {
		t.Errorf("TADDR2UADDR over local = %q", got)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}
