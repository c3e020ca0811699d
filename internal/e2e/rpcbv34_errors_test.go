package e2e

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestRPCBINDv34ErrorsDifferential sends RPCBIND v3/v4 what clients
// should not: unknown versions and procedures, the wrong RPC version,
// short arguments, records in several fragments, strings of kilobytes and
// universal addresses that do not parse, and SET/UNSET from a host that is
// not local.
func TestRPCBINDv34ErrorsDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), rpcbV34ErrorSteps())
}

// rpcbArgs encodes struct rpcb.
func rpcbArgs(prog, vers uint32, netid, addr, owner string) []byte {
	b := Words(prog, vers)
	b = append(b, XDRString(netid)...)
	b = append(b, XDRString(addr)...)
	return append(b, XDRString(owner)...)
}

// rpcbCall is an RPCBIND call of version vers and procedure proc with the
// given XDR arguments.
func rpcbCall(xid, vers, proc uint32, args []byte) Call {
	c := NewCall(xid, 100000, vers, proc)
	c.Args = args
	return c
}

// fragments puts msg in a record of several fragments, cut at the given
// offsets; only the last fragment has the last-fragment bit.
func fragments(msg []byte, cuts ...int) []byte {
	var rec []byte
	start := 0
	for i, end := range append(cuts, len(msg)) {
		mark := uint32(end - start)
		if i == len(cuts) {
			mark |= 0x80000000
		}
		rec = binary.BigEndian.AppendUint32(rec, mark)
		rec = append(rec, msg[start:end]...)
		start = end
	}
	return rec
}

// record is one reply record as rawrec prints it: the mark, then msg.
func record(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, 0x80000000|uint32(len(msg))), msg...)
}

// Raw RPCBIND messages of the error scenario; fixed xids make the replies
// comparable byte for byte.
var (
	rawV3Vers1     = NewCall(0x3001, 100000, 1, 0)
	rawV3Vers5     = NewCall(0x3002, 100000, 5, 0)
	rawV3Proc9     = NewCall(0x3003, 100000, 3, 9) // GETVERSADDR exists in v4 only
	rawV4Proc13    = NewCall(0x3004, 100000, 4, 13)
	rawV4RPCVers3  = with(NewCall(0x3005, 100000, 4, 0), func(c *Call) { c.RPCVers = 3 })
	rawV3ShortSet  = NewCall(0x3006, 100000, 3, 1, 400200, 1)                        // SET without netid, addr, owner
	rawV4ShortAddr = rpcbCall(0x3007, 4, 3, rpcbArgs(400200, 1, "udp", "", "")[:12]) // GETADDR cut in r_netid
	rawV3NoUaddr   = NewCall(0x3008, 100000, 3, 7)                                   // UADDR2TADDR without its string
	rawV4NoNetbuf  = NewCall(0x3009, 100000, 4, 8, 16)                               // TADDR2UADDR: maxlen, no buf
	rawV4Getaddr   = rpcbCall(0x300a, 4, 3, rpcbArgs(100000, 4, "tcp", "", ""))
	rawV4Null      = NewCall(0x300c, 100000, 4, 0)
	rawV3SetHuge   = rpcbCall(0x300d, 3, 1, rpcbArgs(400201, 1, strings.Repeat("n", 9001), "0.0.0.0.1.1", ""))
	rawV3Uaddr9001 = rpcbCall(0x300e, 3, 7, XDRString(strings.Repeat("1", 9001)))
	rawV4Getstat   = NewCall(0x300f, 100000, 4, 12, 0xdeadbeef) // trailing bytes after no arguments
)

// longNetid and longAddr are a few kilobytes: rpcbind decodes strings of
// up to 9000 bytes.
var (
	longNetid = strings.Repeat("n", 4000)
	longAddr  = strings.Repeat("1", 3000) + ".0.0.0.1.1"
)

// IsRecord accepts a rawrec line whose reply is want in a single record.
func IsRecord(want []byte) func(ref, got string) error {
	return func(_, got string) error {
		_, res, _ := strings.Cut(got, ": ")
		if res == "reply "+Hex(record(want)) {
			return nil
		}
		return fmt.Errorf("want the record %s, got %q", Hex(record(want)), res)
	}
}

// refusedLong accepts portmapd refusing to store a string longer than a
// real netid or address: FALSE where rpcbind said TRUE, and nothing found
// where rpcbind found the long entry.
func refusedLong(ref, got string) error {
	op, r, _ := strings.Cut(ref, ": ")
	switch {
	case r == "true" && got == op+": false":
		return nil
	case strings.HasPrefix(r, `"`) && len(r) > 1000 && got == op+`: ""`:
		return nil
	}
	return fmt.Errorf("want a refusal of the long string, got %q", got)
}

// statWords is one version's rpcb_stat with the given procedure counts,
// no SET or UNSET and empty address and remote call lists.
func statWords(info map[int]uint32) []uint32 {
	w := make([]uint32, 13+4)
	for proc, n := range info {
		w[proc] = n
	}
	return w
}

// stringReply is a successful reply whose result is a string, as that of
// GETADDR or TADDR2UADDR.
func stringReply(xid uint32, s string) []byte {
	return append(AcceptedReply(xid, Success), XDRString(s)...)
}

// rpcbV34ErrorSteps is the error scenario. The Expect lines are what
// Debian's rpcbind 1.2.6 (libtirpc 1.3.3) answered; besides the RPC_MISMATCH
// and short-argument findings of pmapV2Steps, they show:
//
//   - Version 1 or 5 of 100000 gets PROG_MISMATCH(2, 4) on every
//     transport; procedure 9 in version 3 and 13 in version 4 PROC_UNAVAIL.
//   - A record of several fragments makes rpcbind close the connection
//     without an answer (libtirpc's non-blocking record reader); portmapd
//     reassembles records as RFC 5531 asks. A record over 9000 bytes
//     (rpcbind sets RPC_SVC_CONNMAXREC to RPC_MAXDATASIZE) closes the
//     connection in both, whatever its strings (portmapd's --max-record).
//   - SET stores any netid and address of up to 9000 bytes and never
//     checks that the address parses; GETADDR then answers it as stored
//     when it cannot be merged, v2 DUMP and rpcinfo -p show the low 32 bits
//     of p1*256+p2 as the port. portmapd refuses (FALSE) netids over 64 and
//     addresses over 256 bytes, which no transport has.
//   - UADDR2TADDR parses the port leniently, as p1<<8 | p2 cut to 16 bits
//     ("127.0.0.1.256.1" is port 1, "127.0.0.1.1.256" port 256,
//     "127.0.0.1.-1.1" port 65281); GETADDR merges such an address the
//     same way ("0.0.0.0.1.300" is answered as "127.0.0.1.1.44").
//   - SET and UNSET from 127.0.0.2 are refused with AUTH_TOOWEAK whatever
//     the source port; lookups are answered.
func rpcbV34ErrorSteps() []Step {
	streams := []string{"tcp", "tcp6", "local"}
	all := []string{"udp", "tcp", "udp6", "tcp6", "local"}
	garbage := func(xid uint32) string { return "reply " + Hex(AcceptedReply(xid, GarbageArgs)) }
	short := "rpcbind decodes the missing arguments from stale bytes of its receive buffer; " +
		"portmapd answers GARBAGE_ARGS for short arguments"
	multi := "multi-fragment records: rpcbind's libtirpc closes the connection on a record of " +
		"several fragments; portmapd reassembles it and answers"
	long := "portmapd refuses to store a netid over 64 bytes or an address over 256 bytes " +
		"(pmap.MaxNetidLen, pmap.MaxAddrLen); rpcbind stores up to 9000"
	twoFrag := fragments(rawV4Getaddr.Bytes(), 20)
	return []Step{
		// Only the harness's v2 NULL has been counted yet; GETSTAT counts
		// itself before it answers.
		RawStep("GETSTAT ignores bytes after its (empty) arguments", rawV4Getstat.Bytes(),
			"reply "+Hex(AcceptedReply(0x300f, Success, slices.Concat(
				statWords(map[int]uint32{0: 1}), statWords(nil), statWords(map[int]uint32{12: 1}))...)), "tcp"),
		RawStep("version 1 of 100000: PROG_MISMATCH(2, 4)", rawV3Vers1.Bytes(),
			"reply "+Hex(AcceptedReply(0x3001, ProgMismatch, 2, 4)), all...),
		RawStep("version 5 of 100000: PROG_MISMATCH(2, 4)", rawV3Vers5.Bytes(),
			"reply "+Hex(AcceptedReply(0x3002, ProgMismatch, 2, 4)), all...),
		RawStep("GETVERSADDR in version 3: PROC_UNAVAIL", rawV3Proc9.Bytes(),
			"reply "+Hex(AcceptedReply(0x3003, ProcUnavail)), all...),
		RawStep("procedure 13 of version 4: PROC_UNAVAIL", rawV4Proc13.Bytes(),
			"reply "+Hex(AcceptedReply(0x3004, ProcUnavail)), all...),
		RawStep("v4 NULL", rawV4Null.Bytes(), "reply "+Hex(AcceptedReply(0x300c, Success)), all...),
		RawStep("RPC version 3 over IPv6 and the local socket", rawV4RPCVers3.Bytes(),
			"", "udp6", "tcp6", "local").Tolerate(
			"RPC_MISMATCH: portmapd answers RPC_MISMATCH(2, 2) as RFC 5531 asks, where libtirpc drops the call",
			SameOr(IsReply(DeniedReply(0x3005, RPCMismatch, 2, 2)))),

		RawStep("short SET arguments on a stream: GARBAGE_ARGS", rawV3ShortSet.Bytes(),
			garbage(0x3006), streams...),
		RawStep("short SET arguments in a datagram", rawV3ShortSet.Bytes(),
			"reply "+Hex(AcceptedReply(0x3006, Success, 1)), "udp", "udp6").Tolerate(
			short+" (rpcbind registers 400200 v1 with an empty netid and address)",
			SameOr(IsReply(AcceptedReply(0x3006, GarbageArgs)))),
		// TRUE either way: it removes what rpcbind made of the stale bytes.
		rpcbStep("undo the short SET", "v3 udp:unpriv unset 400200 1 -", "true"),
		RawStep("GETADDR cut inside r_netid on a stream: GARBAGE_ARGS", rawV4ShortAddr.Bytes(),
			garbage(0x3007), streams...),
		RawStep("GETADDR cut inside r_netid in a datagram", rawV4ShortAddr.Bytes(),
			"reply "+Hex(stringReply(0x3007, "")), "udp", "udp6").Tolerate(
			short, SameOr(IsReply(AcceptedReply(0x3007, GarbageArgs)))),
		RawStep("UADDR2TADDR without its string: GARBAGE_ARGS", rawV3NoUaddr.Bytes(),
			garbage(0x3008), all...),
		RawStep("TADDR2UADDR without its buffer on a stream: GARBAGE_ARGS", rawV4NoNetbuf.Bytes(),
			garbage(0x3009), streams...),
		RawStep("TADDR2UADDR without its buffer in a datagram", rawV4NoNetbuf.Bytes(),
			"reply "+Hex(stringReply(0x3009, "")), "udp", "udp6").Tolerate(
			short, SameOr(IsReply(AcceptedReply(0x3009, GarbageArgs)))),

		RawStep("v4 GETADDR in one fragment", rawV4Getaddr.Bytes(), "", "tcp").Expect(
			RawOut("tcp", rawV4Getaddr.Bytes(), "reply "+Hex(stringReply(0x300a, "127.0.0.1.0.111")))),
		Client("v4 GETADDR in two fragments",
			"rawrec tcp "+Hex(twoFrag), "rawrec tcp6 "+Hex(twoFrag), "rawrec local "+Hex(twoFrag)).Expect(
			"rawrec tcp "+Hex(twoFrag)+": closed",
			"rawrec tcp6 "+Hex(twoFrag)+": closed",
			"rawrec local "+Hex(twoFrag)+": closed",
		).Tolerate(multi, SameOr(func(ref, got string) error {
			var want string
			switch {
			case strings.HasPrefix(got, "rawrec tcp "):
				want = "127.0.0.1.0.111"
			case strings.HasPrefix(got, "rawrec tcp6 "):
				want = "::1.0.111"
			default:
				want = "/run/rpcbind.sock"
			}
			return IsRecord(stringReply(0x300a, want))(ref, got)
		})),
		Client("v4 GETADDR in 4-byte fragments",
			"rawrec tcp "+Hex(fragments(rawV4Getaddr.Bytes(), 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52))).Expect(
			"rawrec tcp "+Hex(fragments(rawV4Getaddr.Bytes(), 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52))+": closed",
		).Tolerate(multi, SameOr(IsRecord(stringReply(0x300a, "127.0.0.1.0.111")))),
		Client("v4 NULL after an empty first fragment",
			"rawrec local "+Hex(fragments(rawV4Null.Bytes(), 0))).Expect(
			"rawrec local "+Hex(fragments(rawV4Null.Bytes(), 0))+": closed",
		).Tolerate(multi, SameOr(IsRecord(AcceptedReply(0x300c, Success)))),
		Client("the daemon still answers on the streams", "v4 tcp null", "v4 tcp6 null", "v4 local null").Expect(
			"v4 tcp null: ok", "v4 tcp6 null: ok", "v4 local null: ok"),

		Client("SET and GETADDR with a netid of 4000 bytes",
			"v3 tcp set 400201 1 "+longNetid+" 0.0.0.0.1.1",
			"v3 tcp getaddr 400201 1 "+longNetid,
			"v4 tcp getversaddr 400201 1 "+longNetid).Expect(
			"v3 tcp set 400201 1 "+longNetid+" 0.0.0.0.1.1: true",
			"v3 tcp getaddr 400201 1 "+longNetid+`: ""`,
			"v4 tcp getversaddr 400201 1 "+longNetid+`: ""`,
		).Tolerate(long, SameOr(refusedLong)),
		Client("SET and GETADDR with an address of 3 KB", "v3 udp set 400202 1 udp "+longAddr,
			"v3 udp getaddr 400202 1", "v3 tcp set 400202 1 tcp "+longAddr).Expect(
			"v3 udp set 400202 1 udp "+longAddr+": true",
			"v3 udp getaddr 400202 1: \""+longAddr+"\"",
			"v3 tcp set 400202 1 tcp "+longAddr+": true",
		).Tolerate(long, SameOr(refusedLong)),
		rpcbStep("UNSET of the long strings", "v3 tcp unset 400201 1 -", "true", "v3 tcp unset 400202 1 -", "true"),
		Client("SET in a record of 10 KB whose strings are under 9000 bytes",
			"v3 tcp set 400201 1 "+longNetid+" "+longAddr+longAddr).Expect(
			"v3 tcp set 400201 1 " + longNetid + " " + longAddr + longAddr + ": error RPC_CANTRECV(Connection reset by peer)"),
		RawStep("SET with a netid of 9001 bytes", rawV3SetHuge.Bytes(), "closed", "tcp", "local"),
		rpcbStep("UADDR2TADDR of 3 KB", "v3 tcp uaddr2taddr "+longAddr, "maxlen=0 buf="),
		RawStep("UADDR2TADDR of 9001 bytes", rawV3Uaddr9001.Bytes(), "closed", "tcp"),
		// Both read 9000 bytes of a datagram; the string is cut short.
		RawStep("datagrams over 9000 bytes are read as their first 9000", rawV3SetHuge.Bytes(),
			"reply "+Hex(AcceptedReply(0x300d, GarbageArgs)), "udp", "udp6"),
		Client("DUMP after the long strings", "v3 tcp dump").Expect(dumpOut("v3 tcp dump")...),

		rpcbStep("SET stores universal addresses that do not parse",
			"v3 udp set 400203 1 udp 0.0.0.0.1", "true",
			"v3 udp set 400203 2 udp garbage", "true",
			"v3 udp set 400203 3 udp 0.0.0.0.1.300", "true",
			"v3 udp set 400203 4 udp ::1", "true",
			"v3 udp set 400203 5 udp -", "true",
			"v3 udp set 400203 6 udp 256.0.0.1.1.1", "true",
			"v3 udp set 400203 7 udp 1.2.3.4.5.6.7", "true",
			"v3 udp set 400203 8 tcp ::.1.1", "true",
			"v3 udp set 400203 9 udp6 0.0.0.0.1.1", "true",
			"v3 udp set 400203 10 udp 0.0.0.0.-1.1", "true",
			"v3 udp set 400203 11 bogus 0.0.0.0.1.1", "true",
		),
		rpcbStep("GETVERSADDR answers what it cannot merge as stored",
			"v4 udp getversaddr 400203 1", `"0.0.0.0.1"`,
			"v4 udp getversaddr 400203 2", `"garbage"`,
			"v4 udp getversaddr 400203 3", `"127.0.0.1.1.44"`,
			"v4 udp getversaddr 400203 4", `"::1"`,
			"v4 udp getversaddr 400203 5", `""`,
			"v4 udp getversaddr 400203 6", `"256.0.0.1.1.1"`,
			"v4 udp getversaddr 400203 7", `"1.2.3.4.5.6.7"`,
			"v4 tcp getversaddr 400203 8", `"::.1.1"`,
			"v4 udp6 getversaddr 400203 9", `"0.0.0.0.1.1"`,
			"v4 udp getversaddr 400203 10", `"127.0.0.1.255.1"`,
			"v4 local getversaddr 400203 11", `""`,
			"v3 udp getversaddr 400203 1", "error RPC_PROCUNAVAIL",
		),
		Client("GETADDRLIST skips what it cannot merge", "v4 udp getaddrlist 400203 2",
			"v4 udp getaddrlist 400203 3", "v4 udp getaddrlist 400203 6", "v4 tcp getaddrlist 400203 8").Expect(
			"v4 udp getaddrlist 400203 2: 0 rows",
			"v4 udp getaddrlist 400203 3: 1 rows",
			"  127.0.0.1.1.44 udp 1 inet udp",
			"v4 udp getaddrlist 400203 6: 0 rows",
			"v4 tcp getaddrlist 400203 8: 0 rows",
		),
		Client("v2 sees those addresses as ports", "v2 udp dump", "v2 udp getport 400203 3 17",
			"v2 udp getport 400203 2 17").Expect(
			"v2 udp dump: 12 rows",
			"  100000 4 6 111",
			"  100000 3 6 111",
			"  100000 2 6 111",
			"  100000 4 17 111",
			"  100000 3 17 111",
			"  100000 2 17 111",
			"  400203 1 17 1",
			"  400203 3 17 556",
			"  400203 6 17 257",
			"  400203 7 17 1543",
			"  400203 8 6 257",
			"  400203 10 17 4294967041",
			"v2 udp getport 400203 3 17: 556",
			"v2 udp getport 400203 2 17: 4294967041",
		),
		Client("v3 DUMP shows them as stored", "v3 udp dump").Expect(dumpOut("v3 udp dump",
			"  400203 1 udp 0.0.0.0.1 superuser",
			"  400203 2 udp garbage superuser",
			"  400203 3 udp 0.0.0.0.1.300 superuser",
			"  400203 4 udp ::1 superuser",
			"  400203 5 udp  superuser",
			"  400203 6 udp 256.0.0.1.1.1 superuser",
			"  400203 7 udp 1.2.3.4.5.6.7 superuser",
			"  400203 8 tcp ::.1.1 superuser",
			"  400203 9 udp6 0.0.0.0.1.1 superuser",
			"  400203 10 udp 0.0.0.0.-1.1 superuser",
			"  400203 11 bogus 0.0.0.0.1.1 superuser",
		)...),
		Command("rpcinfo -p with those addresses", "rpcinfo", "-p", "127.0.0.1"),
		Command("rpcinfo with those addresses", "rpcinfo", "127.0.0.1"),
		Command("rpcinfo -s with those addresses", "rpcinfo", "-s", "127.0.0.1"),
		rpcbStep("UNSET of those addresses", slices.Concat(
			repeatEach("true", "v3 udp unset 400203 1 -", "v3 udp unset 400203 2 -", "v3 udp unset 400203 3 -",
				"v3 udp unset 400203 4 -", "v3 udp unset 400203 5 -", "v3 udp unset 400203 6 -",
				"v3 udp unset 400203 7 -", "v3 udp unset 400203 8 -", "v3 udp unset 400203 9 -",
				"v3 udp unset 400203 10 -", "v3 udp unset 400203 11 -"))...),

		rpcbStep("UADDR2TADDR of universal addresses that do not parse",
			"v3 udp uaddr2taddr garbage", "maxlen=0 buf=",
			"v3 udp uaddr2taddr 1.2.3.4.5", "maxlen=0 buf=",
			"v3 udp uaddr2taddr 127.0.0.1.256.1", "maxlen=16 buf="+sockaddrIn("127.0.0.1", 1),
			"v3 udp uaddr2taddr 127.0.0.1.1.256", "maxlen=16 buf="+sockaddrIn("127.0.0.1", 256),
			"v3 udp uaddr2taddr -", "maxlen=0 buf=",
			"v3 udp uaddr2taddr 1.2.3.4.5.6.7", "maxlen=0 buf=",
			"v3 udp uaddr2taddr 127.0.0.1.-1.1", "maxlen=16 buf="+sockaddrIn("127.0.0.1", 65281),
			"v3 udp uaddr2taddr 127.0.0.1.1.1.", "maxlen=0 buf=",
			"v3 udp uaddr2taddr .1.1", "maxlen=0 buf=",
			"v4 udp6 uaddr2taddr ::1", "maxlen=0 buf=",
			"v4 udp6 uaddr2taddr ::1.1.300", "maxlen=28 buf="+sockaddrIn6("::1", 300),
			"v4 udp6 uaddr2taddr fe80::1%lo.0.1", "maxlen=0 buf=",
			"v4 udp6 uaddr2taddr ::g.1.1", "maxlen=0 buf=",
			"v4 tcp6 uaddr2taddr -", "maxlen=0 buf=",
			"v4 local uaddr2taddr -", "maxlen=0 buf=",
			"v4 local uaddr2taddr relative.sock", "maxlen=0 buf=",
		),
		rpcbStep("TADDR2UADDR of buffers that are not addresses of the arrival family",
			"v3 udp taddr2uaddr 0200", `""`,
			"v3 udp taddr2uaddr "+sockaddrIn6("::1", 1), `"0.0.0.0.0.1"`,
			"v3 udp6 taddr2uaddr "+sockaddrIn("127.0.0.1", 1), `""`,
			"v3 udp taddr2uaddr "+sockaddrIn("127.0.0.1", 1)[:14], `""`,
			"v3 udp taddr2uaddr "+sockaddrIn("127.0.0.1", 1)+" 4", "error RPC_CANTDECODEARGS",
			"v4 tcp6 taddr2uaddr "+sockaddrIn6("::1", 1)[:40], `""`,
		),

		rpcbStep("SET and UNSET from 127.0.0.2 are refused; lookups are not",
			"v3 udp:priv set 400204 1 udp 0.0.0.0.1.1", "error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v4 tcp:priv set 400204 1 tcp 0.0.0.0.1.1", "error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v3 udp:unpriv set 400204 1 udp 0.0.0.0.1.1", "error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v4 tcp:priv unset 100000 4 -", "error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v3 udp:priv unset 100000 3 udp", "error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v4 udp:priv getaddr 100000 4", `"127.0.0.1.0.111"`,
			"v4 tcp:unpriv getversaddr 100000 3", `"127.0.0.1.0.111"`,
		).withOpts("-S", "127.0.0.2"),
		Client("the table is as it started", "v4 udp dump").Expect(dumpOut("v4 udp dump")...),
	}
}
