package e2e

import (
	"os"
	"testing"
)

// TestRemoteCallsOnDifferential drives remote calls through daemons that
// forward them: Debian's rpcbind with -r and portmapd with --remote-calls.
func TestRemoteCallsOnDifferential(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	RunDiff(t, Rpcbind("-r"), Portmapd("--remote-calls"), remoteCallsOnSteps(host))
}

// Raw remote calls whose replies are compared byte for byte.
var (
	fwdEchoArgs     = Words(400300, 1, 1, 8, 0xcafef00d, 0x01020304) // proc 1 echoes 8 bytes
	fwdEchoResults  = XDROpaque(Words(0xcafef00d, 0x01020304))
	fwdUaddr4       = XDRString("127.0.0.1.17.148")
	fwdUaddr6       = XDRString("::1.17.149")
	rawFwdV2Callit  = with(NewCall(0x6001, 100000, 2, 5), func(c *Call) { c.Args = fwdEchoArgs })
	rawFwdV3Callit  = rpcbCall(0x6002, 3, 5, fwdEchoArgs)
	rawFwdV4Bcast   = rpcbCall(0x6003, 4, 5, fwdEchoArgs)
	rawFwdV4Indir   = rpcbCall(0x6004, 4, 10, fwdEchoArgs)
	rawFwdIndirNull = rpcbCall(0x6005, 4, 10, Words(400300, 1, 0, 0))
	rawFwdIndirErr  = rpcbCall(0x6006, 4, 10, Words(400300, 1, 7, 0)) // PROC_UNAVAIL from the service
	rawFwdIndirVer  = rpcbCall(0x6007, 4, 10, Words(400300, 2, 0, 0)) // registered, PROG_MISMATCH from the service
	rawFwdCallitErr = rpcbCall(0x6008, 3, 5, Words(400300, 1, 7, 0))  // the same through CALLIT
	rawFwdIndirDead = rpcbCall(0x6009, 4, 10, Words(400302, 1, 0, 0)) // registered, nothing listening
	rawFwdIndirSil  = rpcbCall(0x600a, 4, 10, Words(400300, 1, 3, 0)) // the service never answers
	rawFwdIndirUnk  = rpcbCall(0x600b, 4, 10, Words(400377, 1, 0, 0)) // not registered
	rawFwdIndirNFS  = rpcbCall(0x600c, 4, 10, Words(100003, 3, 1, 0)) // never forwarded
	rawFwdIndirMis  = rpcbCall(0x600d, 4, 10, Words(400300, 7, 0, 0)) // no such version registered
	rawFwdIndirSelf = rpcbCall(0x600e, 4, 10, Words(100000, 4, 0, 0)) // the portmapper's own NULL
	rawFwdCred      = with(rpcbCall(0x600f, 4, 10, Words(400300, 1, 2, 0)), func(c *Call) {
		c.Cred = AuthSysCred(12345, "rawhost", 1000, 100, 27, 4)
	})
)

// remoteCallsOnSteps: an echo service (rpcclient serve) runs as program
// 400300 version 1 on 127.0.0.1:4500 (registered on udp, and as version 2
// too, which it does not serve) and on [::1]:4501 (registered on udp6);
// program 400302 is registered on udp at a port nobody listens on. The
// Expect lines are what Debian's rpcbind 1.2.6 -r answered; what they show:
//
//   - CALLIT (v2, v3), BCAST and INDIRECT reach the service with the
//     caller's procedure and arguments; the caller gets the results under
//     its own xid with the port (v2) or the address merged for it (v3, v4),
//     through libtirpc's pmap_rmtcall and rpcb_rmtcall as through raw
//     messages, over udp and udp6.
//   - AUTH_SYS reaches the service as the caller sent it (the stamp aside,
//     which the echo zeroes: rpcbind makes a new one); AUTH_NONE as
//     AUTH_NONE.
//   - An error reply from the service (PROC_UNAVAIL, PROG_MISMATCH) is
//     SYSTEM_ERR for INDIRECT and nothing for CALLIT; a service that never
//     answers, or a port nobody listens on, leaves every caller without a
//     reply.
//   - The refusals are those of rpcbind without -r: PROG_UNAVAIL,
//     PROG_MISMATCH, AUTH_TOOWEAK; nothing over a stream.
//   - rpcinfo -b on a host with no broadcast interface fails at once.
func remoteCallsOnSteps(hostname string) []Step {
	svc := newServices()
	udp := []string{"udp"}
	cred := func(c Auth) string { return Hex(echoedCred(c)) }
	clientCred := cred(AuthSysCred(0, hostname, 1000, 1000))
	return []Step{
		svc.Start("echo service", "serving", ClientCmd, "serve udp 4500 400300 1 60"),
		svc.Start("udp6 echo service", "serving", ClientCmd, "serve udp6 4501 400300 1 60"),
		rpcbStep("register the echo services, version 2 that is not served and a dead port",
			"v2 udp set 400300 1 17 4500", "true",
			"v2 udp set 400300 2 17 4500", "true",
			"v4 udp set 400300 1 udp6 ::.17.149", "true",
			"v2 udp set 400302 1 17 4599", "true",
		),
		Command("the echo service answers", "rpcinfo", "-u", "127.0.0.1", "400300", "1").Expect(
			"program 400300 version 1 ready and waiting"),

		rpcbStep("libtirpc's pmap_rmtcall and rpcb_rmtcall",
			"lib pmap_rmtcall 400300 1 1 cafe", "port=4500 res=cafe",
			"lib pmap_rmtcall 400300 1 0", "port=4500 res=",
			"lib rpcb_rmtcall udp 400300 1 1 cafef00d01", `uaddr="127.0.0.1.17.148" res=cafef00d01`,
			"lib rpcb_rmtcall udp 400300 1 0", `uaddr="127.0.0.1.17.148" res=`,
			"lib rpcb_rmtcall udp6 400300 1 1 beef", `uaddr="::1.17.149" res=beef`,
		),
		rpcbStep("CALLIT, BCAST and INDIRECT through the C client",
			"v2 udp callit 400300 1 1 deadbeef", "port=4500 res=deadbeef",
			"v3 udp callit 400300 1 1 deadbeef", `uaddr="127.0.0.1.17.148" res=deadbeef`,
			"v4 udp bcast 400300 1 1 deadbeef", `uaddr="127.0.0.1.17.148" res=deadbeef`,
			"v4 udp indirect 400300 1 1 deadbeef", `uaddr="127.0.0.1.17.148" res=deadbeef`,
			"v4 udp indirect 400300 1 0", `uaddr="127.0.0.1.17.148" res=`,
			"v3 udp6 callit 400300 1 1 deadbeef", `uaddr="::1.17.149" res=deadbeef`,
			"v4 udp6 indirect 400300 1 1 deadbeef", `uaddr="::1.17.149" res=deadbeef`,
		),
		rpcbStep("AUTH_NONE is passed on as AUTH_NONE",
			"v3 udp callit 400300 1 2", `uaddr="127.0.0.1.17.148" res=`+cred(Auth{}),
			"v4 udp6 indirect 400300 1 2", `uaddr="::1.17.149" res=`+cred(Auth{}),
		),
		rpcbStep("AUTH_SYS is passed on",
			"v3 udp callit 400300 1 2", `uaddr="127.0.0.1.17.148" res=`+clientCred,
			"v4 udp indirect 400300 1 2", `uaddr="127.0.0.1.17.148" res=`+clientCred,
			"v2 udp callit 400300 1 2", "port=4500 res="+clientCred,
		).withOpts("-u", "1000:1000", "-a"),
		rpcbStep("errors from the service: SYSTEM_ERR for INDIRECT",
			"v4 udp indirect 400300 1 7", "error RPC_SYSTEMERROR(Success)",
			"v4 udp indirect 400300 2 0", "error RPC_SYSTEMERROR(Success)",
			"v4 udp6 indirect 400300 1 7", "error RPC_SYSTEMERROR(Success)",
		),
		rpcbStep("errors from the service, silence and dead ports: no reply",
			"v3 udp callit 400300 1 7", "error RPC_TIMEDOUT",
			"v2 udp callit 400300 2 0", "error RPC_TIMEDOUT",
			"v4 udp bcast 400300 1 7", "error RPC_TIMEDOUT",
			"v4 udp indirect 400300 1 3", "error RPC_TIMEDOUT",
			"v4 udp indirect 400302 1 0", "error RPC_TIMEDOUT",
			"lib pmap_rmtcall 400302 1 0", "error RPC_TIMEDOUT",
			"lib rpcb_rmtcall udp 400300 1 3", "error RPC_TIMEDOUT",
		).withOpts(quickNoReply...),
		rpcbStep("refusals are unchanged",
			"v4 udp indirect 400377 1 0", "error RPC_PROGUNAVAIL",
			"v4 udp indirect 400300 7 0", "error RPC_PROGVERSMISMATCH(low=1 high=2)",
			"v4 udp indirect 100003 3 1", "error RPC_AUTHERROR(AUTH_TOOWEAK)",
			"v4 udp6 indirect 400302 1 0", "error RPC_PROGUNAVAIL",
		),
		rpcbStep("remote calls over streams get no reply",
			"v4 tcp indirect 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v3 tcp6 callit 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
			"v4 local indirect 400300 1 1 deadbeef", "error RPC_TIMEDOUT",
		).withOpts(quickNoReply...),

		RawStep("v2 CALLIT: port and results", rawFwdV2Callit.Bytes(),
			"reply "+Hex(append(AcceptedReply(0x6001, Success, 4500), fwdEchoResults...)), udp...),
		RawStep("v3 CALLIT: merged address and results", rawFwdV3Callit.Bytes(),
			"reply "+Hex(concat(AcceptedReply(0x6002, Success), fwdUaddr4, fwdEchoResults)), udp...),
		RawStep("v4 BCAST", rawFwdV4Bcast.Bytes(),
			"reply "+Hex(concat(AcceptedReply(0x6003, Success), fwdUaddr4, fwdEchoResults)), udp...),
		RawStep("v4 INDIRECT", rawFwdV4Indir.Bytes(),
			"reply "+Hex(concat(AcceptedReply(0x6004, Success), fwdUaddr4, fwdEchoResults)), udp...),
		RawStep("v4 INDIRECT over udp6", rawFwdV4Indir.Bytes(),
			"reply "+Hex(concat(AcceptedReply(0x6004, Success), fwdUaddr6, fwdEchoResults)), "udp6"),
		RawStep("v4 INDIRECT of NULL: empty results", rawFwdIndirNull.Bytes(),
			"reply "+Hex(concat(AcceptedReply(0x6005, Success), fwdUaddr4, XDROpaque(nil))), udp...),
		RawStep("an AUTH_SYS credential reaches the service", rawFwdCred.Bytes(),
			"reply "+Hex(concat(AcceptedReply(0x600f, Success), fwdUaddr4,
				XDROpaque(echoedCred(rawFwdCred.Cred)))), udp...),
		RawStep("PROC_UNAVAIL from the service: SYSTEM_ERR", rawFwdIndirErr.Bytes(),
			"reply "+Hex(AcceptedReply(0x6006, SystemErr)), udp...),
		RawStep("PROG_MISMATCH from the service: SYSTEM_ERR", rawFwdIndirVer.Bytes(),
			"reply "+Hex(AcceptedReply(0x6007, SystemErr)), udp...),
		RawStep("CALLIT of a procedure the service lacks: nothing", rawFwdCallitErr.Bytes(), "", udp...).withOpts(quickNoReply...),
		RawStep("INDIRECT to a dead port: nothing", rawFwdIndirDead.Bytes(), "", udp...).withOpts(quickNoReply...),
		RawStep("INDIRECT to a silent service: nothing", rawFwdIndirSil.Bytes(), "", udp...).withOpts(quickNoReply...),
		RawStep("INDIRECT of an unregistered program: PROG_UNAVAIL", rawFwdIndirUnk.Bytes(),
			"reply "+Hex(AcceptedReply(0x600b, ProgUnavail)), udp...),
		RawStep("INDIRECT of NFS: AUTH_TOOWEAK", rawFwdIndirNFS.Bytes(),
			"reply "+Hex(DeniedReply(0x600c, AuthError, AuthTooWeak)), udp...),
		RawStep("INDIRECT of a missing version: PROG_MISMATCH", rawFwdIndirMis.Bytes(),
			"reply "+Hex(AcceptedReply(0x600d, ProgMismatch, 1, 2)), udp...),
		RawStep("INDIRECT of the portmapper's NULL is forwarded to itself", rawFwdIndirSelf.Bytes(),
			"reply "+Hex(concat(AcceptedReply(0x600e, Success), XDRString("127.0.0.1.0.111"), XDROpaque(nil))), udp...),
		RawStep("remote calls over streams get no reply", rawFwdV4Indir.Bytes(), "noreply",
			"tcp", "tcp6", "local").withOpts(quickNoReply...),

		// On stderr: "rpcinfo: broadcast failed: RPC: Unknown protocol".
		Command("rpcinfo -b without a broadcast interface", "rpcinfo", "-b", "400300", "1"),
		Client("GETSTAT after the remote calls", "v4 udp getstat").Expect(
			"v4 udp getstat: ok",
			"  v2 info=1,3,0,0,0,7,0,0,0,0,0,0,0 set=3 unset=0",
			"    rmt 400302 1 0 udp success=1 failure=0 indirect=1",
			"    rmt 400300 2 0 udp success=1 failure=0 indirect=1",
			"    rmt 400300 1 2 udp success=1 failure=0 indirect=1",
			"    rmt 400300 1 0 udp success=1 failure=0 indirect=1",
			"    rmt 400300 1 1 udp success=3 failure=0 indirect=1",
			"  v3 info=0,0,0,0,0,8,0,0,0,0,0,0,0 set=0 unset=0",
			"    rmt 400300 1 7 udp success=2 failure=0 indirect=1",
			"    rmt 400300 1 2 udp success=2 failure=0 indirect=1",
			"    rmt 400300 1 1 udp6 success=1 failure=0 indirect=1",
			"    rmt 400300 1 1 udp success=2 failure=0 indirect=1",
			"  v4 info=1,1,0,32,0,7,0,0,0,0,31,0,1 set=1 unset=0",
			"    addr 100000 3 tcp6 success=1 failure=0",
			"    addr 100000 4 tcp success=1 failure=0",
			"    addr 100000 4 udp6 success=4 failure=0",
			"    addr 100000 3 udp6 success=1 failure=0",
			"    addr 100000 3 udp success=4 failure=0",
			"    addr 400300 1 udp success=1 failure=0",
			"    addr 100000 4 udp success=14 failure=0",
			"    addr 100000 2 udp success=6 failure=0",
			"    rmt 100000 4 0 udp success=1 failure=0 indirect=1",
			"    rmt 400302 1 0 udp6 success=0 failure=1 indirect=1",
			"    rmt 400300 7 0 udp success=0 failure=2 indirect=2",
			"    rmt 400377 1 0 udp success=0 failure=2 indirect=2",
			"    rmt 400302 1 0 udp success=2 failure=0 indirect=2",
			"    rmt 400300 1 3 udp success=3 failure=0 indirect=2",
			"    rmt 400300 1 7 udp6 success=1 failure=0 indirect=1",
			"    rmt 400300 2 0 udp success=2 failure=0 indirect=2",
			"    rmt 400300 1 7 udp success=3 failure=0 indirect=2",
			"    rmt 400300 1 2 udp success=2 failure=0 indirect=2",
			"    rmt 400300 1 2 udp6 success=1 failure=0 indirect=1",
			"    rmt 400300 1 1 udp6 success=3 failure=0 indirect=3",
			"    rmt 400300 1 0 udp success=3 failure=0 indirect=3",
			"    rmt 400300 1 1 udp success=5 failure=0 indirect=3",
		).Tolerate(indirectCount, SameOr(indirectOneLess)),
		svc.Stop("echo service").Expect("echo service exited: signal: terminated"),
		svc.Stop("udp6 echo service").Expect("udp6 echo service exited: signal: terminated"),
	}
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// echoedCred is what the echo service's procedure 2 returns for a call
// with credential c: its flavour and body, an AUTH_SYS stamp zeroed.
func echoedCred(c Auth) []byte {
	body := append([]byte(nil), c.Body...)
	if c.Flavor == AuthSys {
		copy(body, Words(0))
	}
	return append(Words(c.Flavor), XDROpaque(body)...)
}
