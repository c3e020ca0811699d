package e2e

import (
	"slices"
	"testing"
)

// TestPMAPv2Differential replays the PMAP v2 scenario against Debian's
// rpcbind and against portmapd and requires the same output from libtirpc's
// clnt_create(host, 100000, 2, "udp"|"tcp") clients, rpcinfo and raw
// messages, except where a step documents a deliberate difference.
func TestPMAPv2Differential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), pmapV2Steps())
}

// Raw messages of the scenario. Their xids are fixed so that replies can be
// compared byte for byte.
var (
	rawProcUnavail = NewCall(0x1001, 100000, 2, 99)
	rawRPCVers3    = with(NewCall(0x1002, 100000, 2, 0), func(c *Call) { c.RPCVers = 3 })
	rawVers5       = NewCall(0x1003, 100000, 5, 0)
	rawProgUnavail = NewCall(0x1004, 400099, 1, 0)
	rawShortArgs   = NewCall(0x1005, 100000, 2, 3, 400001, 1) // GETPORT without prot, port
	rawShortHeader = Words(0x1006, 0)
	rawReplyType   = with(NewCall(0x1007, 100000, 2, 0), func(c *Call) { c.MsgType = 1 })
	rawCredUnknown = with(NewCall(0x1008, 100000, 2, 3, 400001, 1, 17, 0), func(c *Call) { c.Cred = Auth{Flavor: 99} })
	rawCredSys     = with(NewCall(0x1009, 100000, 2, 3, 400001, 1, 17, 0), func(c *Call) { c.Cred = AuthSysCred(0, "e2e", 0, 0) })
	rawCredSysBad  = with(NewCall(0x100a, 100000, 2, 3, 400001, 1, 17, 0), func(c *Call) { c.Cred = Auth{Flavor: AuthSys, Body: Words(1, 2)} })
	rawExtraArgs   = NewCall(0x100b, 100000, 2, 3, 400001, 1, 17, 0, 0xdeadbeef)
	rawShortSet    = NewCall(0x100c, 100000, 2, 1, 400001, 1, 17) // SET without port
	rawVerfUnknown = with(NewCall(0x100d, 100000, 2, 0), func(c *Call) { c.Verf = Auth{Flavor: 99} })
	rawCallit      = NewCall(0x100e, 100000, 2, 5, 400005, 1, 0, 0)
	rawTruncCred   = Words(0x100f, 0, 2, 100000, 2, 0, AuthSys, 400) // promises 400 bytes of credential
	rawGetport     = NewCall(0x1010, 100000, 2, 3, 400001, 1, 17, 0)
)

func with(c Call, f func(*Call)) Call {
	f(&c)
	return c
}

// pmapV2Steps is the PMAP v2 scenario. The Expect lines are what Debian's
// rpcbind 1.2.6 (libtirpc 1.3.3) printed; the comments record what each
// shows about it. Findings worth knowing before reading the steps:
//
//   - SET and UNSET over UDP and TCP from 127.0.0.1 are accepted from any
//     source port. The owner rpcbind records (visible in v3 DUMP, see
//     TestRegistrationOwnerDifferential) is "superuser" from a port below
//     1024 and "unknown" otherwise; clnt_create run as root binds a reserved
//     port, so its registrations are "superuser". From 127.0.0.2 both are
//     refused with AUTH_ERROR/AUTH_TOOWEAK.
//   - UNSET is TRUE when nothing matched, but FALSE when an entry matched
//     and the caller may not remove it ("unknown" caller, "superuser" entry).
//   - GETPORT of a missing version returns the port of the LAST registered
//     version of the program on that transport.
//   - libtirpc never sends RPC_MISMATCH: a call with RPC version 3 is
//     dropped (UDP) or ends the connection (TCP), as is a message that is
//     not a CALL or too short for the header.
//   - Over UDP, libtirpc decodes arguments from its whole receive buffer,
//     not just the datagram, so truncated arguments are completed with
//     stale bytes from earlier datagrams: a GETPORT without prot and port
//     succeeds and a SET without port registers port 0. Over TCP the same
//     calls get GARBAGE_ARGS. portmapd answers GARBAGE_ARGS on both.
//   - Debian's rpcbind forwards no remote calls unless started with -r, so
//     CALLIT gets no reply at all; over TCP it never gets one anyway.
func pmapV2Steps() []Step {
	dump0 := []string{
		"  100000 4 6 111",
		"  100000 3 6 111",
		"  100000 2 6 111",
		"  100000 4 17 111",
		"  100000 3 17 111",
		"  100000 2 17 111",
	}
	rpcinfoP0 := []string{
		"   program vers proto   port  service",
		"    100000    4   tcp    111  portmapper",
		"    100000    3   tcp    111  portmapper",
		"    100000    2   tcp    111  portmapper",
		"    100000    4   udp    111  portmapper",
		"    100000    3   udp    111  portmapper",
		"    100000    2   udp    111  portmapper",
	}
	// The daemon's own rows come first: v4, v3, v2 per transport, tcp first.
	dump := func(head string, rows ...string) []string {
		return slices.Concat([]string{head}, dump0, rows)
	}
	return []Step{
		Client("NULL answers on udp and tcp", "v2 udp null", "v2 tcp null").Expect(
			"v2 udp null: ok",
			"v2 tcp null: ok",
		),
		Client("a fresh daemon lists only its own rows", "v2 udp dump", "v2 tcp dump").Expect(
			slices.Concat(dump("v2 udp dump: 6 rows"), dump("v2 tcp dump: 6 rows"))...,
		),
		Command("rpcinfo -p on a fresh daemon", "rpcinfo", "-p", "127.0.0.1").Expect(rpcinfoP0...),

		Client("SET twice with the same port is TRUE",
			"v2 udp set 400001 1 17 4001", "v2 udp set 400001 1 17 4001").Expect(
			"v2 udp set 400001 1 17 4001: true",
			"v2 udp set 400001 1 17 4001: true",
		),
		Client("SET of a registered key with another port is FALSE",
			"v2 udp set 400001 1 17 4002", "v2 tcp set 400001 1 17 4002").Expect(
			"v2 udp set 400001 1 17 4002: false",
			"v2 tcp set 400001 1 17 4002: false",
		),
		Client("SET with a prot other than 6 or 17 is FALSE",
			"v2 udp set 400001 2 99 4001", "v2 udp set 400001 2 0 4001").Expect(
			"v2 udp set 400001 2 99 4001: false",
			"v2 udp set 400001 2 0 4001: false",
		),
		// Port 0 is stored and dumped like any other port, yet GETPORT
		// cannot tell it from "not registered".
		Client("SET over tcp, and SET of port 0",
			"v2 tcp set 400001 1 6 4001", "v2 tcp set 400001 3 6 4003", "v2 udp set 400002 1 17 0").Expect(
			"v2 tcp set 400001 1 6 4001: true",
			"v2 tcp set 400001 3 6 4003: true",
			"v2 udp set 400002 1 17 0: true",
		),

		Client("GETPORT of a registered key",
			"v2 udp getport 400001 1 17", "v2 tcp getport 400001 1 6", "v2 udp getport 400001 3 6").Expect(
			"v2 udp getport 400001 1 17: 4001",
			"v2 tcp getport 400001 1 6: 4001",
			"v2 udp getport 400001 3 6: 4003",
		),
		// tcp has versions 1 (4001) then 3 (4003): the last one wins.
		Client("GETPORT of a missing version falls back to the last registered version",
			"v2 udp getport 400001 7 17", "v2 udp getport 400001 7 6", "v2 udp getport 400001 2 6").Expect(
			"v2 udp getport 400001 7 17: 4001",
			"v2 udp getport 400001 7 6: 4003",
			"v2 udp getport 400001 2 6: 4003",
		),
		Client("GETPORT of an unknown program or prot is 0",
			"v2 udp getport 400077 1 17", "v2 tcp getport 400001 1 99", "v2 udp getport 400002 1 17").Expect(
			"v2 udp getport 400077 1 17: 0",
			"v2 tcp getport 400001 1 99: 0",
			"v2 udp getport 400002 1 17: 0",
		),

		Client("DUMP keeps registration order after set, unset, set",
			"v2 udp set 400003 1 17 4031", "v2 udp set 400004 1 17 4041",
			"v2 udp unset 400003 1", "v2 udp set 400003 1 17 4032", "v2 tcp dump").Expect(
			slices.Concat([]string{
				"v2 udp set 400003 1 17 4031: true",
				"v2 udp set 400004 1 17 4041: true",
				"v2 udp unset 400003 1: true",
				"v2 udp set 400003 1 17 4032: true",
			}, dump("v2 tcp dump: 12 rows",
				"  400001 1 17 4001",
				"  400001 1 6 4001",
				"  400001 3 6 4003",
				"  400002 1 17 0",
				"  400004 1 17 4041",
				"  400003 1 17 4032",
			))...,
		),
		Client("UNSET answers TRUE when nothing matched",
			"v2 udp unset 400077 1", "v2 tcp unset 400001 9").Expect(
			"v2 udp unset 400077 1: true",
			"v2 tcp unset 400001 9: true",
		),
		Client("UNSET removes udp and tcp and ignores prot and port",
			"v2 udp unset 400001 1", "v2 tcp unset 400001 3 17 9999", "v2 udp dump").Expect(
			slices.Concat([]string{
				"v2 udp unset 400001 1: true",
				"v2 tcp unset 400001 3 17 9999: true",
			}, dump("v2 udp dump: 9 rows",
				"  400002 1 17 0",
				"  400004 1 17 4041",
				"  400003 1 17 4032",
			))...,
		),
		Command("rpcinfo -p after unset", "rpcinfo", "-p", "127.0.0.1").Expect(
			slices.Concat(rpcinfoP0, []string{
				"    400002    1   udp      0",
				"    400004    1   udp   4041",
				"    400003    1   udp   4032",
			})...,
		),

		Client("SET from 127.0.0.1 is accepted from any source port",
			"v2 udp:unpriv set 400005 1 17 4051", "v2 tcp:unpriv set 400005 1 6 4051",
			"v2 udp:priv set 400006 1 17 4061", "v2 tcp:priv set 400006 1 6 4061").Expect(
			"v2 udp:unpriv set 400005 1 17 4051: true",
			"v2 tcp:unpriv set 400005 1 6 4051: true",
			"v2 udp:priv set 400006 1 17 4061: true",
			"v2 tcp:priv set 400006 1 6 4061: true",
		),
		Client("UNSET from an unprivileged port of a superuser entry is FALSE",
			"v2 udp:unpriv unset 400006 1", "v2 udp getport 400006 1 17").Expect(
			"v2 udp:unpriv unset 400006 1: false",
			"v2 udp getport 400006 1 17: 4061",
		),
		Client("UNSET from an unprivileged port of an unknown-owner entry",
			"v2 tcp:unpriv unset 400005 1", "v2 udp getport 400005 1 17").Expect(
			"v2 tcp:unpriv unset 400005 1: true",
			"v2 udp getport 400005 1 17: 0",
		),
		ClientOpts("SET and UNSET from 127.0.0.2 are refused", []string{"-S", "127.0.0.2"},
			"v2 udp:priv set 400007 1 17 4071", "v2 tcp:priv set 400007 1 6 4071",
			"v2 udp:priv unset 400006 1", "v2 udp:priv getport 400006 1 17").Expect(
			"v2 udp:priv set 400007 1 17 4071: error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v2 tcp:priv set 400007 1 6 4071: error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v2 udp:priv unset 400006 1: error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v2 udp:priv getport 400006 1 17: 4061",
		),
		Client("registrations for the CALLIT and rpcinfo steps",
			"v2 udp set 400005 1 17 4051", "v2 udp set 100024 1 17 4052", "v2 tcp dump").Expect(
			slices.Concat([]string{
				"v2 udp set 400005 1 17 4051: true",
				"v2 udp set 100024 1 17 4052: true",
			}, dump("v2 tcp dump: 13 rows",
				"  400002 1 17 0",
				"  400004 1 17 4041",
				"  400003 1 17 4032",
				"  400006 1 17 4061",
				"  400006 1 6 4061",
				"  400005 1 17 4051",
				"  100024 1 17 4052",
			))...,
		),

		Client("CALLIT gets no reply without remote calls, nor over tcp",
			"v2 udp callit 400005 1 0", "v2 udp callit 400077 1 0",
			"v2 udp callit 100000 2 0", "v2 tcp callit 400005 1 0").Expect(
			"v2 udp callit 400005 1 0: error RPC_TIMEDOUT",
			"v2 udp callit 400077 1 0: error RPC_TIMEDOUT",
			"v2 udp callit 100000 2 0: error RPC_TIMEDOUT",
			"v2 tcp callit 400005 1 0: error RPC_TIMEDOUT",
		),
		Client("CALLIT over tcp gets no reply and the connection stays open",
			"raw tcp "+rawCallit.Hex()).Expect(
			RawOut("tcp", rawCallit.Bytes(), "noreply"),
		),

		Command("rpcinfo -p", "rpcinfo", "-p", "127.0.0.1").Expect(
			slices.Concat(rpcinfoP0, []string{
				"    400002    1   udp      0",
				"    400004    1   udp   4041",
				"    400003    1   udp   4032",
				"    400006    1   udp   4061",
				"    400006    1   tcp   4061",
				"    400005    1   udp   4051",
				"    100024    1   udp   4052  status",
			})...,
		),
		Command("rpcinfo -u 100000 2", "rpcinfo", "-u", "127.0.0.1", "100000", "2").Expect(
			"program 100000 version 2 ready and waiting",
		),
		Command("rpcinfo -t 100000 2", "rpcinfo", "-t", "127.0.0.1", "100000", "2").Expect(
			"program 100000 version 2 ready and waiting",
		),
		// stderr: "rpcinfo: RPC: Unable to receive; errno = Connection refused"
		Command("rpcinfo -u of a registered program nobody serves",
			"rpcinfo", "-u", "127.0.0.1", "400005", "1").Expect(
			"program 400005 version 1 is not available",
		),
		// stderr: "127.0.0.1: RPC: Program not registered", exit 1.
		Command("rpcinfo -t of an unregistered program", "rpcinfo", "-t", "127.0.0.1", "400077", "1"),
		// rpcinfo -d goes through rpcb_unset: the local socket first.
		Command("rpcinfo -d removes a registration", "rpcinfo", "-d", "400005", "1"),
		Command("rpcinfo -p after rpcinfo -d", "rpcinfo", "-p", "127.0.0.1").Expect(
			slices.Concat(rpcinfoP0, []string{
				"    400002    1   udp      0",
				"    400004    1   udp   4041",
				"    400003    1   udp   4032",
				"    400006    1   udp   4061",
				"    400006    1   tcp   4061",
				"    100024    1   udp   4052  status",
			})...,
		),
		Client("libtirpc's pmap_getport (v2 over udp) and pmap_getmaps (v2 over tcp)",
			"lib pmap_getport 400004 1 17", "lib pmap_getport 400077 1 17", "lib pmap_getmaps").Expect(
			slices.Concat([]string{
				"lib pmap_getport 400004 1 17: 4041",
				"lib pmap_getport 400077 1 17: 0 (RPC_PROGNOTREGISTERED)",
			}, dump("lib pmap_getmaps: 12 rows",
				"  400002 1 17 0",
				"  400004 1 17 4041",
				"  400003 1 17 4032",
				"  400006 1 17 4061",
				"  400006 1 6 4061",
				"  100024 1 17 4052",
			))...,
		),

		RawStep("unknown procedure: PROC_UNAVAIL", rawProcUnavail.Bytes(),
			"reply "+Hex(AcceptedReply(0x1001, ProcUnavail)), "udp", "tcp"),
		RawStep("RPC version 3 is dropped, not answered with RPC_MISMATCH", rawRPCVers3.Bytes(),
			"", "udp", "tcp").Tolerate(
			"portmapd may answer RPC_MISMATCH(2, 2) as RFC 5531 asks, where libtirpc drops the call",
			SameOr(IsReply(DeniedReply(0x1002, RPCMismatch, 2, 2)))),
		// Strict now that portmapd serves versions 3 and 4; while it
		// served only version 2 this step tolerated PROG_MISMATCH(2, 2)
		// with SameOr(IsReply(AcceptedReply(0x1003, ProgMismatch, 2, 2))).
		RawStep("unknown version of 100000: PROG_MISMATCH(2, 4)", rawVers5.Bytes(),
			"reply "+Hex(AcceptedReply(0x1003, ProgMismatch, 2, 4)), "udp", "tcp"),
		RawStep("unknown program: PROG_UNAVAIL", rawProgUnavail.Bytes(),
			"reply "+Hex(AcceptedReply(0x1004, ProgUnavail)), "udp", "tcp"),
		RawStep("truncated GETPORT arguments over tcp: GARBAGE_ARGS", rawShortArgs.Bytes(),
			"reply "+Hex(AcceptedReply(0x1005, GarbageArgs)), "tcp"),
		RawStep("truncated GETPORT arguments over udp", rawShortArgs.Bytes(),
			"reply "+Hex(AcceptedReply(0x1005, Success, 0)), "udp").Tolerate(
			"rpcbind completes the arguments with stale buffer bytes; portmapd answers GARBAGE_ARGS",
			SameOr(IsReply(AcceptedReply(0x1005, GarbageArgs)))),
		RawStep("truncated SET arguments over tcp: GARBAGE_ARGS", rawShortSet.Bytes(),
			"reply "+Hex(AcceptedReply(0x100c, GarbageArgs)), "tcp"),
		RawStep("truncated SET arguments over udp", rawShortSet.Bytes(),
			"reply "+Hex(AcceptedReply(0x100c, Success, 1)), "udp").Tolerate(
			"rpcbind registers 400001 v1 udp with a port made of stale buffer bytes; portmapd answers GARBAGE_ARGS",
			SameOr(IsReply(AcceptedReply(0x100c, GarbageArgs)))),
		// Removes what rpcbind registered from stale bytes (TRUE either way).
		Client("undo the truncated SET", "v2 udp unset 400001 1").Expect("v2 udp unset 400001 1: true"),
		RawStep("GETPORT with trailing bytes after its arguments is answered", rawExtraArgs.Bytes(),
			"reply "+Hex(AcceptedReply(0x100b, Success, 0)), "udp", "tcp"),
		RawStep("a message too short for an RPC header gets no reply", rawShortHeader,
			"", "udp", "tcp").Tolerate(junkRecord, SameOr(IsKeptOpen)),
		Client("an empty datagram gets no reply", "raw udp -").Expect("raw udp -: noreply"),
		RawStep("a credential longer than the message over tcp ends the connection", rawTruncCred,
			"closed", "tcp").Tolerate(junkRecord, SameOr(IsKeptOpen)),
		RawStep("a credential longer than the datagram", rawTruncCred,
			"reply "+Hex(DeniedReply(0x100f, AuthError, AuthBadCred)), "udp").Tolerate(
			"rpcbind reads the missing credential bytes from its stale buffer and rejects them; portmapd drops the datagram",
			SameOr(IsNoReply)),
		RawStep("a REPLY sent to the server gets no reply", rawReplyType.Bytes(), "", "udp", "tcp").Tolerate(
			junkRecord, SameOr(IsKeptOpen)),
		RawStep("an unknown credential flavor: AUTH_REJECTEDCRED", rawCredUnknown.Bytes(),
			"reply "+Hex(DeniedReply(0x1008, AuthError, AuthRejectedCred)), "udp", "tcp"),
		RawStep("an unknown verifier flavor is ignored", rawVerfUnknown.Bytes(),
			"reply "+Hex(AcceptedReply(0x100d, Success)), "udp", "tcp"),
		RawStep("AUTH_SYS credentials are accepted", rawCredSys.Bytes(),
			"reply "+Hex(AcceptedReply(0x1009, Success, 0)), "udp", "tcp"),
		RawStep("GETPORT with AUTH_NONE", rawGetport.Bytes(),
			"reply "+Hex(AcceptedReply(0x1010, Success, 0)), "udp", "tcp"),
		RawStep("an AUTH_SYS credential that does not decode: AUTH_BADCRED", rawCredSysBad.Bytes(),
			"reply "+Hex(DeniedReply(0x100a, AuthError, AuthBadCred)), "udp", "tcp"),

		Client("the daemon still answers after all that", "v2 udp null", "v2 tcp null", "v2 udp dump").Expect(
			slices.Concat([]string{
				"v2 udp null: ok",
				"v2 tcp null: ok",
			}, dump("v2 udp dump: 12 rows",
				"  400002 1 17 0",
				"  400004 1 17 4041",
				"  400003 1 17 4032",
				"  400006 1 17 4061",
				"  400006 1 6 4061",
				"  100024 1 17 4052",
			))...,
		),
	}
}
