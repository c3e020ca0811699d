package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestRemoteCallsOffDifferential sends CALLIT (v2, v3), BCAST and
// INDIRECT (v4) for a registered, running service to daemons that forward
// no remote calls: Debian's rpcbind without -r, and portmapd as it is
// started here.
func TestRemoteCallsOffDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), remoteCallsOffSteps())
}

// Raw remote calls: CALLIT and BCAST get no reply at all, so only raw
// messages show whether the daemon answers with an error instead.
var (
	rmtArgs          = Words(400300, 1, 1, 4, 0xdeadbeef) // prog, vers, proc, args<>
	rawV4Indirect    = rpcbCall(0x5001, 4, 10, rmtArgs)
	rawV4IndirectBad = rpcbCall(0x5002, 4, 10, Words(400300, 1))       // cut after vers
	rawV4IndirectPMP = rpcbCall(0x5003, 4, 10, Words(100000, 2, 4, 0)) // the portmapper itself
	rawV4IndirectNFS = rpcbCall(0x5004, 4, 10, Words(100003, 3, 1, 0)) // never forwarded
	rawV4IndirectUnk = rpcbCall(0x5005, 4, 10, Words(400377, 1, 0, 0)) // not registered
	rawV4IndirectVer = rpcbCall(0x5006, 4, 10, Words(400300, 7, 0, 0)) // no such version
	rawV3Callit      = rpcbCall(0x5007, 3, 5, rmtArgs)
	rawV4Bcast       = rpcbCall(0x5008, 4, 5, rmtArgs)
	rawV2Callit      = with(NewCall(0x5009, 100000, 2, 5), func(c *Call) { c.Args = rmtArgs })
	rawV4BcastUnk    = rpcbCall(0x500a, 4, 5, Words(400377, 1, 0, 0))
	rawV4IndirectBig = rpcbCall(0x500b, 4, 10, Words(400300, 1, 1, 100000)) // args<> longer than the call
)

// quickNoReply shortens the client's wait in steps where no reply is
// expected: replies on loopback take well under a millisecond.
var quickNoReply = []string{"-w", "200"}

// indirectCount names the GETSTAT difference of remote call entries.
const indirectCount = "GETSTAT indirect count: rpcbind's rpcbs_rmtcall starts every new remote call entry " +
	"at indirect=1, even one made by CALLIT or BCAST; portmapd counts INDIRECT calls only"

// indirectOneLess accepts a line that differs from the reference's only in
// an indirect count one lower: "indirect=N" of the C client's GETSTAT, or
// the fourth tab-separated column of rpcinfo -m's RPCB_RMTCALL (version 4)
// table ("prog vers<TAB>proc<TAB>netid<TAB>indirect<TAB> success<TAB>failure").
func indirectOneLess(ref, got string) error {
	rf, gf := strings.Split(ref, "\t"), strings.Split(got, "\t")
	at := 3
	if len(rf) != 6 {
		rf, gf = strings.Split(ref, " "), strings.Split(got, " ")
		at = len(rf) - 1
		if at < 0 || !strings.HasPrefix(rf[at], "indirect=") {
			return fmt.Errorf("not an indirect count: %q", got)
		}
	}
	if len(rf) != len(gf) {
		return fmt.Errorf("%q is not %q with another indirect count", got, ref)
	}
	for i := range rf {
		if i == at {
			r, errR := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(rf[i], "indirect=")))
			g, errG := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(gf[i], "indirect=")))
			if errR != nil || errG != nil || g != r-1 {
				return fmt.Errorf("indirect count %q where the reference has %q", gf[i], rf[i])
			}
		} else if rf[i] != gf[i] {
			return fmt.Errorf("%q is not %q with another indirect count", got, ref)
		}
	}
	return nil
}

// remoteCallsOffSteps: an echo service (rpcclient serve) runs on
// 127.0.0.1:4500 as program 400300 version 1, registered on udp; proc 1
// returns its arguments, and rpcinfo -u shows that it answers. The Expect
// lines are what Debian's rpcbind 1.2.6, started without -r, answered:
//
//   - CALLIT (v2, v3) and BCAST (v4) never get a reply, whatever the
//     program, nor does any remote call over a stream (the connection
//     stays open).
//   - INDIRECT of the running, registered service gets SYSTEM_ERR;
//     unregistered: PROG_UNAVAIL; registered in other versions only:
//     PROG_MISMATCH(low, high) of the registered versions; the portmapper
//     itself or NFS: AUTH_ERROR/AUTH_TOOWEAK; arguments longer than the
//     call: GARBAGE_ARGS.
//   - The calls are counted in GETSTAT's remote call lists as if they
//     had been forwarded: success when the exact version is registered.
func remoteCallsOffSteps() []Step {
	svc := newServices()
	udp := []string{"udp", "udp6"}
	return []Step{
		svc.Start("echo service", "serving", ClientCmd, "serve udp 4500 400300 1 60"),
		rpcbStep("register the echo service on udp",
			"v2 udp set 400300 1 17 4500", "true",
			"v4 udp set 400300 1 udp6 ::1.17.148", "true",
		),
		Command("the echo service answers", "rpcinfo", "-u", "127.0.0.1", "400300", "1").Expect(
			"program 400300 version 1 ready and waiting"),

		rpcbStep("CALLIT and BCAST through libtirpc get no reply",
			"v2 udp callit 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v3 udp callit 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v4 udp bcast 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v3 udp6 callit 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v4 udp bcast 400377 1 0", "error RPC_TIMEDOUT",
		).withOpts(quickNoReply...),
		rpcbStep("INDIRECT through libtirpc",
			"v4 udp indirect 400300 1 1 deadbeef", "error RPC_SYSTEMERROR(Success)",
			"v4 udp6 indirect 400300 1 1 deadbeef", "error RPC_SYSTEMERROR(Success)",
			"v4 udp indirect 400377 1 0", "error RPC_PROGUNAVAIL",
			"v4 udp indirect 400300 7 0", "error RPC_PROGVERSMISMATCH(low=1 high=1)",
			"v4 udp indirect 100000 2 4", "error RPC_AUTHERROR(AUTH_TOOWEAK)",
		),
		rpcbStep("remote calls over streams through libtirpc get no reply",
			"v4 tcp indirect 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v3 tcp6 callit 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v4 local indirect 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
		).withOpts(quickNoReply...),

		RawStep("v2 CALLIT", rawV2Callit.Bytes(), "", udp...).withOpts(quickNoReply...),
		RawStep("v3 CALLIT", rawV3Callit.Bytes(), "", udp...).withOpts(quickNoReply...),
		RawStep("v4 BCAST", rawV4Bcast.Bytes(), "", udp...).withOpts(quickNoReply...),
		RawStep("v4 BCAST of an unregistered program", rawV4BcastUnk.Bytes(), "", udp...).withOpts(quickNoReply...),
		RawStep("v4 INDIRECT of the echo service: SYSTEM_ERR", rawV4Indirect.Bytes(),
			"reply "+Hex(AcceptedReply(0x5001, SystemErr)), udp...),
		RawStep("v4 INDIRECT with arguments longer than the call: GARBAGE_ARGS", rawV4IndirectBig.Bytes(),
			"reply "+Hex(AcceptedReply(0x500b, GarbageArgs)), udp...),
		RawStep("v4 INDIRECT of the portmapper itself: AUTH_TOOWEAK", rawV4IndirectPMP.Bytes(),
			"reply "+Hex(DeniedReply(0x5003, AuthError, AuthTooWeak)), udp...),
		RawStep("v4 INDIRECT of NFS: AUTH_TOOWEAK", rawV4IndirectNFS.Bytes(),
			"reply "+Hex(DeniedReply(0x5004, AuthError, AuthTooWeak)), udp...),
		RawStep("v4 INDIRECT of an unregistered program: PROG_UNAVAIL", rawV4IndirectUnk.Bytes(),
			"reply "+Hex(AcceptedReply(0x5005, ProgUnavail)), udp...),
		RawStep("v4 INDIRECT of a missing version: PROG_MISMATCH(1, 1)", rawV4IndirectVer.Bytes(),
			"reply "+Hex(AcceptedReply(0x5006, ProgMismatch, 1, 1)), udp...),
		RawStep("remote calls over streams get no reply", rawV4Indirect.Bytes(), "noreply",
			"tcp", "tcp6", "local").withOpts(quickNoReply...),

		Client("GETSTAT after the remote calls", "v4 udp getstat").Expect(
			"v4 udp getstat: ok",
			"  v2 info=1,1,0,0,0,3,0,0,0,0,0,0,0 set=1 unset=0",
			"    rmt 400300 1 1 udp6 success=1 failure=0 indirect=1",
			"    rmt 400300 1 1 udp success=2 failure=0 indirect=1",
			"  v3 info=0,0,0,0,0,5,0,0,0,0,0,0,0 set=0 unset=0",
			"    rmt 400300 1 1 udp6 success=2 failure=0 indirect=1",
			"    rmt 400300 1 1 udp success=2 failure=0 indirect=1",
			"  v4 info=0,1,0,16,0,6,0,0,0,0,22,0,1 set=1 unset=0",
			"    addr 100000 3 tcp6 success=1 failure=0",
			"    addr 100000 4 tcp success=1 failure=0",
			"    addr 100000 4 udp6 success=1 failure=0",
			"    addr 100000 3 udp6 success=1 failure=0",
			"    addr 100000 3 udp success=1 failure=0",
			"    addr 400300 1 udp success=1 failure=0",
			"    addr 100000 4 udp success=8 failure=0",
			"    addr 100000 2 udp success=2 failure=0",
			"    rmt 400300 7 0 udp6 success=0 failure=1 indirect=1",
			"    rmt 400377 1 0 udp6 success=0 failure=2 indirect=2",
			"    rmt 400300 7 0 udp success=0 failure=2 indirect=2",
			"    rmt 400300 1 1 udp6 success=3 failure=0 indirect=2",
			"    rmt 400377 1 0 udp success=0 failure=4 indirect=3",
			"    rmt 400300 1 1 udp success=4 failure=0 indirect=3",
		),
		Command("rpcinfo -m after the remote calls", "rpcinfo", "-m"),
		// Last: rpcbind decodes the missing arguments from stale bytes of
		// its receive buffer and counts a remote call in its statistics.
		RawStep("v4 INDIRECT with short arguments", rawV4IndirectBad.Bytes(),
			"reply "+Hex(AcceptedReply(0x5002, SystemErr)), udp...).Tolerate(
			"rpcbind decodes the missing arguments from stale bytes of its receive buffer; "+
				"portmapd answers GARBAGE_ARGS for short arguments",
			SameOr(IsReply(AcceptedReply(0x5002, GarbageArgs)))),
		svc.Stop("echo service").Expect("echo service exited: signal: terminated"),
	}
}
