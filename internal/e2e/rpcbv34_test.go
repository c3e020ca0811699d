package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// TestRPCBINDv34Differential drives RPCBIND versions 3 and 4 with
// libtirpc clients over udp, tcp, udp6, tcp6 and the local socket, and
// requires the same answers from portmapd as from Debian's rpcbind.
func TestRPCBINDv34Differential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), rpcbV34Steps())
}

// netids are the transports both daemons serve RPCBIND on.
var netids = []string{"udp", "tcp", "udp6", "tcp6", "local"}

// onEach returns op once per transport of netids, "vV T op".
func onEach(vers, op string) []string {
	var ops []string
	for _, n := range netids {
		ops = append(ops, vers+" "+n+" "+op)
	}
	return ops
}

// ownRows are the rows of program 100000 that both daemons list first in
// v3/v4 DUMP, as the C client prints them.
var ownRows = []string{
	"  100000 4 tcp6 ::.0.111 superuser",
	"  100000 3 tcp6 ::.0.111 superuser",
	"  100000 4 udp6 ::.0.111 superuser",
	"  100000 3 udp6 ::.0.111 superuser",
	"  100000 4 tcp 0.0.0.0.0.111 superuser",
	"  100000 3 tcp 0.0.0.0.0.111 superuser",
	"  100000 2 tcp 0.0.0.0.0.111 superuser",
	"  100000 4 udp 0.0.0.0.0.111 superuser",
	"  100000 3 udp 0.0.0.0.0.111 superuser",
	"  100000 2 udp 0.0.0.0.0.111 superuser",
	"  100000 4 local /run/rpcbind.sock superuser",
	"  100000 3 local /run/rpcbind.sock superuser",
}

// dumpOut is what "OP: N rows" followed by the daemon's own rows and then
// rows prints.
func dumpOut(op string, rows ...string) []string {
	return slices.Concat([]string{fmt.Sprintf("%s: %d rows", op, len(ownRows)+len(rows))}, ownRows, rows)
}

// sockaddrIn is a struct sockaddr_in as it travels in a netbuf: the
// family in the host's byte order, then port and address in network order,
// then 8 bytes of zeros.
func sockaddrIn(addr string, port uint16) string {
	b := binary.NativeEndian.AppendUint16(nil, 2) // AF_INET
	b = binary.BigEndian.AppendUint16(b, port)
	a := netip.MustParseAddr(addr).As4()
	b = append(b, a[:]...)
	return hex.EncodeToString(append(b, make([]byte, 8)...))
}

// sockaddrIn6 is a struct sockaddr_in6 (28 bytes): family, port,
// flowinfo, address, scope id.
func sockaddrIn6(addr string, port uint16) string {
	b := binary.NativeEndian.AppendUint16(nil, 10) // AF_INET6
	b = binary.BigEndian.AppendUint16(b, port)
	b = append(b, 0, 0, 0, 0)
	a := netip.MustParseAddr(addr).As16()
	b = append(b, a[:]...)
	return hex.EncodeToString(append(b, 0, 0, 0, 0))
}

// sockaddrUn is the start of a struct sockaddr_un: family and path.
func sockaddrUn(path string) string {
	b := binary.NativeEndian.AppendUint16(nil, 1) // AF_LOCAL
	return hex.EncodeToString(append(b, path...))
}

// rpcbStep is a Client step whose expected output, one line per
// operation, is "OP: RESULT".
func rpcbStep(name string, opsAndResults ...string) Step {
	if len(opsAndResults)%2 != 0 {
		panic("rpcbStep needs operation/result pairs")
	}
	var ops, want []string
	for i := 0; i < len(opsAndResults); i += 2 {
		ops = append(ops, opsAndResults[i])
		want = append(want, opsAndResults[i]+": "+opsAndResults[i+1])
	}
	return Client(name, ops...).Expect(want...)
}

// withOpts returns a client step with options inserted before its
// operations.
func (s Step) withOpts(opts ...string) Step {
	s.Argv = slices.Concat(s.Argv[:1], opts, s.Argv[1:])
	return s
}

// repeatEach pairs every operation with the same result.
func repeatEach(result string, ops ...string) []string {
	var r []string
	for _, op := range ops {
		r = append(r, op, result)
	}
	return r
}

// rpcbV34Steps is the RPCBIND v3/v4 scenario through the C client's
// clnt_create/clnt_tp_create clients (udp, tcp, udp6, tcp6; running as
// root they come from a reserved port) and clnt_vc_create on the local
// socket. The Expect lines are what Debian's rpcbind 1.2.6 printed; what
// they show:
//
//   - Both versions answer on all five transports; every transport has
//     the same table.
//   - GETADDR looks the program up by the netid of the transport the call
//     arrived on, never by r_netid, and answers the registered address
//     merged for the caller (0.0.0.0 becomes 127.0.0.1, :: becomes ::1);
//     over the local socket it answers the address as registered. A hint
//     (r_addr) that is not a universal address makes it answer the
//     registered address unmerged.
//   - GETADDR of a missing version answers the address of another
//     registered version of the program; GETVERSADDR does not.
//   - GETADDRLIST answers the entries of exactly (prog, vers) of the
//     arrival transport's family, and nothing over the local socket.
//   - PMAP v2 and RPCBIND share one table for udp and tcp; v2 neither
//     sees nor removes udp6/tcp6 entries.
//   - UNSET with an empty netid removes every netid of (prog, vers).
//   - Over the local socket the caller's uid is the owner, whatever
//     r_owner says; another uid, or a caller from an unprivileged port,
//     gets FALSE from UNSET of that entry.
//   - UADDR2TADDR and TADDR2UADDR convert with the family of the arrival
//     transport: an IPv6 address asked over udp is not converted.
func rpcbV34Steps() []Step {
	v3null, v4null := onEach("v3", "null"), onEach("v4", "null")
	return []Step{
		rpcbStep("NULL answers on every transport, v3 and v4",
			slices.Concat(repeatEach("ok", v3null...), repeatEach("ok", v4null...))...),
		Client("a fresh daemon dumps the same rows on every transport", onEach("v4", "dump")...).Expect(
			slices.Concat(dumpOut("v4 udp dump"), dumpOut("v4 tcp dump"), dumpOut("v4 udp6 dump"),
				dumpOut("v4 tcp6 dump"), dumpOut("v4 local dump"))...),

		rpcbStep("SET over every transport",
			"v3 udp set 400100 1 udp 0.0.0.0.39.16", "true",
			"v3 tcp set 400100 1 tcp 0.0.0.0.39.16", "true",
			"v4 udp6 set 400100 1 udp6 ::.39.16", "true",
			"v4 tcp6 set 400100 1 tcp6 ::.39.16", "true",
			"v4 local set 400100 1 local /run/e2e-400100.sock", "true",
			"v3 local set 400100 2 tcp 0.0.0.0.39.17", "true",
		),
		rpcbStep("SET again with the same address is TRUE, with another FALSE",
			"v4 udp set 400100 1 udp 0.0.0.0.39.16", "true",
			"v3 tcp6 set 400100 1 tcp6 ::.39.16", "true",
			"v3 local set 400100 1 udp 0.0.0.0.39.99", "false",
			"v4 udp6 set 400100 1 tcp 127.0.0.1.39.16", "false",
			"v4 tcp set 400100 1 udp6 ::1.39.16", "false",
		),
		Client("DUMP shows the registrations in order", "v3 udp6 dump").Expect(
			dumpOut("v3 udp6 dump",
				"  400100 1 udp 0.0.0.0.39.16 superuser",
				"  400100 1 tcp 0.0.0.0.39.16 superuser",
				"  400100 1 udp6 ::.39.16 superuser",
				"  400100 1 tcp6 ::.39.16 superuser",
				"  400100 1 local /run/e2e-400100.sock superuser",
				"  400100 2 tcp 0.0.0.0.39.17 superuser",
			)...),

		rpcbStep("GETADDR answers the arrival transport's entry, merged for the caller",
			"v3 udp getaddr 400100 1", `"127.0.0.1.39.16"`,
			"v3 tcp getaddr 400100 1", `"127.0.0.1.39.16"`,
			"v3 udp6 getaddr 400100 1", `"::1.39.16"`,
			"v3 tcp6 getaddr 400100 1", `"::1.39.16"`,
			"v3 local getaddr 400100 1", `"/run/e2e-400100.sock"`,
			"v4 udp getaddr 400100 1", `"127.0.0.1.39.16"`,
			"v4 tcp6 getaddr 400100 1", `"::1.39.16"`,
			"v4 local getaddr 400100 1", `"/run/e2e-400100.sock"`,
		),
		rpcbStep("GETADDR ignores r_netid: only the arrival transport counts",
			"v3 udp getaddr 400100 2 tcp", `"127.0.0.1.39.16"`,
			"v3 tcp getaddr 400100 2 udp", `"127.0.0.1.39.17"`,
			"v3 udp6 getaddr 400100 1 local", `"::1.39.16"`,
			"v3 local getaddr 400100 1 udp", `"/run/e2e-400100.sock"`,
		),
		rpcbStep("register 400101 on udp only",
			"v3 udp set 400101 1 udp 0.0.0.0.39.18", "true",
		),
		rpcbStep("GETADDR of an entry registered on udp only, asked over the others, is empty",
			"v3 udp getaddr 400101 1", `"127.0.0.1.39.18"`,
			"v3 tcp getaddr 400101 1 udp", `""`,
			"v3 udp6 getaddr 400101 1 udp", `""`,
			"v4 tcp6 getaddr 400101 1 udp", `""`,
			"v4 local getaddr 400101 1 udp", `""`,
		),
		rpcbStep("GETADDR hint: a universal address of the caller's choice",
			"v3 udp getaddr 400101 1 udp 127.0.0.1.0.0", `"127.0.0.1.39.18"`,
			"v3 udp getaddr 400101 1 udp not-an-address", `"0.0.0.0.39.18"`,
		),

		rpcbStep("registrations for the version fallback",
			"v4 udp set 400102 1 udp 0.0.0.0.39.21", "true",
			"v4 udp set 400102 3 udp 0.0.0.0.39.23", "true",
			"v4 udp set 400102 5 tcp 0.0.0.0.39.25", "true",
		),
		rpcbStep("GETADDR of a missing version falls back to another version, GETVERSADDR does not",
			"v3 udp getaddr 400102 2", `"127.0.0.1.39.23"`,
			"v4 udp getaddr 400102 2", `"127.0.0.1.39.23"`,
			"v4 udp getaddr 400102 9", `"127.0.0.1.39.23"`,
			"v4 tcp getaddr 400102 1", `"127.0.0.1.39.25"`,
			"v4 udp getversaddr 400102 2", `""`,
			"v4 udp getversaddr 400102 3", `"127.0.0.1.39.23"`,
			"v4 tcp getversaddr 400102 1", `""`,
			"v4 tcp getversaddr 400102 5", `"127.0.0.1.39.25"`,
			"v4 udp6 getaddr 400102 1", `""`,
			"v4 udp getaddr 400177 1", `""`,
		),

		Client("GETADDRLIST answers the entries of the arrival transport's family",
			"v4 udp getaddrlist 400100 1", "v4 tcp getaddrlist 400100 1",
			"v4 udp6 getaddrlist 400100 1", "v4 tcp6 getaddrlist 400100 1",
			"v4 local getaddrlist 400100 1", "v4 udp getaddrlist 400100 9",
			"v4 udp getaddrlist 100000 4").Expect(
			"v4 udp getaddrlist 400100 1: 2 rows",
			"  127.0.0.1.39.16 udp 1 inet udp",
			"  127.0.0.1.39.16 tcp 3 inet tcp",
			"v4 tcp getaddrlist 400100 1: 2 rows",
			"  127.0.0.1.39.16 udp 1 inet udp",
			"  127.0.0.1.39.16 tcp 3 inet tcp",
			"v4 udp6 getaddrlist 400100 1: 2 rows",
			"  ::1.39.16 udp6 1 inet6 udp",
			"  ::1.39.16 tcp6 3 inet6 tcp",
			"v4 tcp6 getaddrlist 400100 1: 2 rows",
			"  ::1.39.16 udp6 1 inet6 udp",
			"  ::1.39.16 tcp6 3 inet6 tcp",
			"v4 local getaddrlist 400100 1: 0 rows",
			"v4 udp getaddrlist 400100 9: 0 rows",
			"v4 udp getaddrlist 100000 4: 2 rows",
			"  127.0.0.1.0.111 tcp 3 inet tcp",
			"  127.0.0.1.0.111 udp 1 inet udp",
		),

		rpcbStep("PMAP v2 and RPCBIND share the udp and tcp entries",
			"v2 udp set 400103 1 17 4103", "true",
			"v3 udp set 400104 1 tcp 0.0.0.0.16.8", "true",
			"v4 udp6 set 400104 1 udp6 ::.16.9", "true",
			"v3 tcp getaddr 400103 1 udp", `""`,
			"v3 udp getaddr 400103 1", `"127.0.0.1.16.7"`,
			"v2 udp getport 400104 1 6", "4104",
			"v2 udp getport 400104 1 17", "0",
		),
		Client("v2 DUMP lists udp and tcp entries only", "v2 tcp dump").Expect(
			"v2 tcp dump: 15 rows",
			"  100000 4 6 111",
			"  100000 3 6 111",
			"  100000 2 6 111",
			"  100000 4 17 111",
			"  100000 3 17 111",
			"  100000 2 17 111",
			"  400100 1 17 10000",
			"  400100 1 6 10000",
			"  400100 2 6 10001",
			"  400101 1 17 10002",
			"  400102 1 17 10005",
			"  400102 3 17 10007",
			"  400102 5 6 10009",
			"  400103 1 17 4103",
			"  400104 1 6 4104",
		),
		rpcbStep("v2 UNSET leaves the udp6 entry",
			"v2 udp unset 400104 1", "true",
			"v4 udp6 getversaddr 400104 1", `"::1.16.9"`,
			"v4 udp getversaddr 400104 1", `""`,
		),
		rpcbStep("UNSET with an empty netid removes every netid",
			"v3 local unset 400100 1 -", "true",
			"v4 udp6 unset 400104 1 -", "true",
			"v3 udp getaddr 400100 1", `""`,
			"v3 udp6 getaddr 400100 1", `""`,
			"v3 local getaddr 400100 1", `""`,
		),
		rpcbStep("UNSET with a netid removes that netid only",
			"v4 tcp unset 400102 1 udp", "true",
			"v4 tcp unset 400102 3 tcp", "true",
			"v4 udp getversaddr 400102 3", `"127.0.0.1.39.23"`,
		),
		rpcbStep("UNSET of nothing is TRUE",
			"v3 udp unset 400177 1 -", "true",
			"v4 tcp6 unset 400177 1 tcp6", "true",
			"v4 local unset 400177 1 udp", "true",
		),
		rpcbStep("SET over the local socket as uid 1000: the uid is the owner",
			"v4 local set 400105 1 udp 0.0.0.0.39.19 superuser", "true",
			"v3 local set 400105 1 tcp6 ::.39.19", "true",
		).withOpts("-u", "1000"),
		rpcbStep("UNSET by another uid or an unknown caller is FALSE",
			"v4 local unset 400105 1 -", "false",
			"v3 local unset 400105 1 udp", "false",
		).withOpts("-u", "1001"),
		rpcbStep("UNSET from an unprivileged port is FALSE for uid 1000's entry",
			"v4 udp:unpriv unset 400105 1 -", "false",
			"v4 tcp6:unpriv unset 400105 1 tcp6", "false",
			"v4 udp getversaddr 400105 1", `"127.0.0.1.39.19"`,
		),
		Client("v4 DUMP shows uid 1000 as the owner", "v4 udp dump").Expect(
			dumpOut("v4 udp dump",
				"  400100 2 tcp 0.0.0.0.39.17 superuser",
				"  400101 1 udp 0.0.0.0.39.18 superuser",
				"  400102 3 udp 0.0.0.0.39.23 superuser",
				"  400102 5 tcp 0.0.0.0.39.25 superuser",
				"  400103 1 udp 0.0.0.0.16.7 superuser",
				"  400105 1 udp 0.0.0.0.39.19 1000",
				"  400105 1 tcp6 ::.39.19 1000",
			)...),
		rpcbStep("UNSET by the owner", "v4 local unset 400105 1 -", "true").withOpts("-u", "1000"),
		Client("what is left", "v4 local dump").Expect(
			dumpOut("v4 local dump",
				"  400100 2 tcp 0.0.0.0.39.17 superuser",
				"  400101 1 udp 0.0.0.0.39.18 superuser",
				"  400102 3 udp 0.0.0.0.39.23 superuser",
				"  400102 5 tcp 0.0.0.0.39.25 superuser",
				"  400103 1 udp 0.0.0.0.16.7 superuser",
			)...),

		rpcbStep("GETTIME on every transport",
			slices.Concat(repeatEach("within 5s", onEach("v3", "gettime")...),
				repeatEach("within 5s", onEach("v4", "gettime")...))...),

		rpcbStep("UADDR2TADDR converts with the arrival transport's family",
			"v3 udp uaddr2taddr 127.0.0.1.8.1", "maxlen=16 buf="+sockaddrIn("127.0.0.1", 2049),
			"v3 tcp uaddr2taddr 0.0.0.0.0.111", "maxlen=16 buf="+sockaddrIn("0.0.0.0", 111),
			"v4 udp6 uaddr2taddr ::1.8.1", "maxlen=28 buf="+sockaddrIn6("::1", 2049),
			"v4 tcp6 uaddr2taddr fe80::1.0.7", "maxlen=28 buf="+sockaddrIn6("fe80::1", 7),
			"v3 udp uaddr2taddr ::1.8.1", "maxlen=0 buf=",
			"v3 udp6 uaddr2taddr 127.0.0.1.8.1", "maxlen=0 buf=",
			"v4 tcp6 uaddr2taddr ::ffff:127.0.0.1.8.1", "maxlen=28 buf="+sockaddrIn6("::ffff:127.0.0.1", 2049),
		),
		rpcbStep("TADDR2UADDR converts with the arrival transport's family",
			"v3 udp taddr2uaddr "+sockaddrIn("127.0.0.1", 2049), `"127.0.0.1.8.1"`,
			"v4 tcp taddr2uaddr "+sockaddrIn("10.1.2.3", 65535), `"10.1.2.3.255.255"`,
			"v3 udp6 taddr2uaddr "+sockaddrIn6("::1", 2049), `"::1.8.1"`,
			"v4 tcp6 taddr2uaddr "+sockaddrIn6("2001:db8::5", 1), `"2001:db8::5.0.1"`,
			"v3 tcp taddr2uaddr -", `""`,
		),
		// A local address keeps sizeof(struct sockaddr_un) as its maxlen.
		rpcbStep("UADDR2TADDR and TADDR2UADDR of a path over the local socket",
			"v3 local uaddr2taddr /run/x.sock", "maxlen=110 buf="+sockaddrUn("/run/x.sock"),
			"v4 local taddr2uaddr "+sockaddrUn("/run/x.sock"), `"/run/x.sock"`,
		),
		// rpcbind converts as AF_LOCAL: a sockaddr_in's bytes after the
		// family read as a path up to the first NUL, an IP universal
		// address cut before its last two dots as a path.
		rpcbStep("UADDR2TADDR and TADDR2UADDR of IP addresses over the local socket",
			"v3 local taddr2uaddr "+sockaddrIn("127.0.0.1", 2049), `"\x08\x01\x7f"`,
			"v4 local taddr2uaddr "+sockaddrIn6("::1", 2049), `"\x08\x01"`,
			"v4 local uaddr2taddr 127.0.0.1.8.1", "maxlen=110 buf="+sockaddrUn("127.0.0.1"),
			"v3 local uaddr2taddr ::1.8.1", "maxlen=110 buf="+sockaddrUn("::1"),
		).Tolerate(localConversion, SameOrExactly(
			"v3 local taddr2uaddr "+sockaddrIn("127.0.0.1", 2049)+`: "127.0.0.1.8.1"`,
			"v4 local taddr2uaddr "+sockaddrIn6("::1", 2049)+`: "::1.8.1"`,
			"v4 local uaddr2taddr 127.0.0.1.8.1: maxlen=16 buf="+sockaddrIn("127.0.0.1", 2049),
			"v3 local uaddr2taddr ::1.8.1: maxlen=28 buf="+sockaddrIn6("::1", 2049),
		)),
		Client("GETSTAT over every transport", onEach("v4", "getstat")...),
	}
}
