package e2e

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Flavours of RFC 5531 and its successors that portmapd does not serve.
const (
	authShort     = 2
	authDH        = 3
	authKerb4     = 4
	authRPCSecGSS = 6
	authTLS       = 7
)

// credShape is a call whose credential, verifier or arguments are unusual:
// a flavour portmapd does not serve, an AUTH_SYS body of a shape libtirpc
// accepts or refuses, or padding that is not zero. reply is what rpcbind
// 1.2.6 answers, nil for no answer (and a closed stream).
type credShape struct {
	name  string
	msg   []byte
	reply []byte
	// echo marks a call whose verifier rpcbind echoes (see verfEchoed).
	echo bool
	// local, when set, is the answer on the local socket.
	local []byte
	// mismatch marks a call rpcbind drops, closing the stream.
	mismatch bool
}

// getportCall is a v2 GETPORT of the portmapper's own tcp row, whose
// answer (111) shows the call was served.
func getportCall(xid uint32) Call { return NewCall(xid, 100000, 2, 3, 100000, 2, 6, 0) }

// withCred returns a GETPORT with the given credential and verifier.
func withCred(xid uint32, cred, verf Auth) Call {
	c := getportCall(xid)
	c.Cred, c.Verf = cred, verf
	return c
}

// authSysBody builds an AUTH_SYS body field by field, so that shapes no
// client sends can be made: a machine-name length that is not its bytes'.
func authSysBody(machine []byte, nameLen uint32, gids ...uint32) []byte {
	b := Words(0x5eed, nameLen)
	b = append(b, machine...)
	b = append(b, make([]byte, (4-len(machine)%4)%4)...)
	b = append(b, Words(0, 0, uint32(len(gids)))...)
	return append(b, Words(gids...)...)
}

// badPadding returns an XDR opaque of p whose padding bytes are not zero.
func badPadding(p []byte) []byte {
	b := XDROpaque(p)
	for i := 4 + len(p); i < len(b); i++ {
		b[i] = 0xa5
	}
	return b
}

// rawWithBadPad is a GETPORT whose credential (AUTH_NONE with a
// three-byte body) or verifier carries non-zero padding; Call.Bytes would
// zero it, so the message is written here.
func rawWithBadPad(xid uint32, inVerf bool) []byte {
	b := Words(xid, 0, 2, 100000, 2, 3)
	if inVerf {
		b = append(b, Words(AuthNone, 0, AuthNone)...)
		b = append(b, badPadding([]byte("v"))...)
	} else {
		b = append(b, Words(AuthNone)...)
		b = append(b, badPadding([]byte("abc"))...)
		b = append(b, Words(AuthNone, 0)...)
	}
	return append(b, Words(100000, 2, 6, 0)...)
}

// rawGetaddrBadPad is a v4 GETADDR of 100000 v4 on "tcp" whose r_netid
// ("tcp", one byte of padding) and empty r_addr are followed by non-zero
// padding where padding exists.
func rawGetaddrBadPad(xid uint32) []byte {
	b := Words(xid, 0, 2, 100000, 4, 3, AuthNone, 0, AuthNone, 0, 100000, 4)
	b = append(b, badPadding([]byte("tcp"))...)
	b = append(b, XDRString("")...)
	return append(b, badPadding([]byte("o"))...)
}

// verfEchoed is why the AUTH_SYS rows with a verifier differ: libtirpc's
// _svcauth_unix sends the call's verifier back in the reply when it is not
// empty; portmapd answers with an AUTH_NONE verifier, as RFC 5531 has an
// AUTH_SYS server do and as libtirpc's clients expect (they ignore it).
const verfEchoed = "rpcbind echoes a non-empty verifier of an AUTH_SYS call in its reply; " +
	"portmapd answers with AUTH_NONE, the same reply otherwise"

func credShapes() []credShape {
	none := Auth{Flavor: AuthNone}
	body8 := Words(1, 2)
	sys := AuthSysCred(0x5eed, "host", 0, 0).Body
	long := bytes.Repeat([]byte("m"), 256)
	var rows []credShape
	xid := uint32(0xa000)
	served := func(name string, cred, verf Auth) {
		xid++
		rows = append(rows, credShape{name: name, msg: withCred(xid, cred, verf).Bytes(), reply: AcceptedReply(xid, Success, 111)})
	}
	denied := func(name string, cred, verf Auth, stat uint32) {
		xid++
		rows = append(rows, credShape{name: name, msg: withCred(xid, cred, verf).Bytes(), reply: DeniedReply(xid, AuthError, stat)})
	}
	for _, f := range []struct {
		name   string
		flavor uint32
		stat   uint32
	}{
		{"AUTH_SHORT in a call: AUTH_REJECTEDCRED", authShort, AuthRejectedCred},
		{"AUTH_DH: AUTH_FAILED", authDH, AuthFailed},
		{"AUTH_KERB4: AUTH_REJECTEDCRED", authKerb4, AuthRejectedCred},
		{"flavour 5: AUTH_REJECTEDCRED", 5, AuthRejectedCred},
		{"RPCSEC_GSS: AUTH_BADCRED", authRPCSecGSS, AuthBadCred},
		{"AUTH_TLS: AUTH_REJECTEDCRED", authTLS, AuthRejectedCred},
		{"flavour 390003: AUTH_REJECTEDCRED", 390003, AuthRejectedCred},
		{"flavour 0xffffffff: AUTH_REJECTEDCRED", 0xffffffff, AuthRejectedCred},
	} {
		denied(f.name+", 8-byte body", Auth{f.flavor, body8}, none, f.stat)
		denied(f.name+", empty body", Auth{f.flavor, nil}, none, f.stat)
	}
	denied("AUTH_SYS, empty body: AUTH_BADCRED", Auth{AuthSys, nil}, none, AuthBadCred)
	denied("AUTH_SYS, stamp only: AUTH_BADCRED", Auth{AuthSys, Words(1)}, none, AuthBadCred)
	denied("AUTH_SYS, cut inside the gids: AUTH_BADCRED",
		Auth{AuthSys, authSysBody([]byte("h"), 1, 1, 2, 3)[:28]}, none, AuthBadCred)
	denied("AUTH_SYS, 17 gids: AUTH_BADCRED", Auth{AuthSys, authSysBody(nil, 0, make([]uint32, 17)...)}, none, AuthBadCred)
	served("AUTH_SYS, 16 gids: served", Auth{AuthSys, authSysBody(nil, 0, make([]uint32, 16)...)}, none)
	denied("AUTH_SYS, machine name of 256 bytes: AUTH_BADCRED", Auth{AuthSys, authSysBody(long[:256], 256)}, none, AuthBadCred)
	served("AUTH_SYS, machine name of 255 bytes: served", Auth{AuthSys, authSysBody(long[:255], 255)}, none)
	denied("AUTH_SYS, machine name longer than the body: AUTH_BADCRED",
		Auth{AuthSys, authSysBody([]byte("h"), 200)}, none, AuthBadCred)
	served("AUTH_SYS, 8 bytes after the gids: served", Auth{AuthSys, append(slices.Clone(sys), Words(7, 7)...)}, none)
	served("AUTH_SYS, 2 bytes after the gids: served", Auth{AuthSys, append(slices.Clone(sys), 7, 7)}, none)
	served("AUTH_SYS, non-zero padding after the machine name: served", Auth{AuthSys,
		append(append(Words(0x5eed), badPadding([]byte("h"))...), Words(0, 0, 0)...)}, none)
	served("AUTH_NONE with a body: served", Auth{AuthNone, body8}, none)
	served("AUTH_NONE with an AUTH_SYS verifier: served", none, Auth{AuthSys, sys})
	served("AUTH_NONE with a verifier of flavour 0xffffffff: served", none, Auth{0xffffffff, body8})
	served("a credential of 400 bytes: served", Auth{AuthNone, make([]byte, 400)}, none)
	for _, v := range []Auth{{AuthSys, sys}, {authDH, body8}} {
		xid++
		c := withCred(xid, Auth{AuthSys, sys}, v)
		reply := Words(xid, 1, MsgAccepted, v.Flavor)
		reply = append(reply, XDROpaque(v.Body)...)
		rows = append(rows, credShape{name: "AUTH_SYS with a verifier of flavour " + strconv.FormatUint(uint64(v.Flavor), 10) + ": served",
			msg: c.Bytes(), reply: append(reply, Words(Success, 111)...), echo: true})
	}
	xid++
	rows = append(rows, credShape{name: "a credential of 401 bytes: no reply",
		msg: withCred(xid, Auth{AuthNone, make([]byte, 401)}, none).Bytes()})
	xid++
	rows = append(rows, credShape{name: "a verifier of 401 bytes: no reply",
		msg: withCred(xid, none, Auth{AuthNone, make([]byte, 401)}).Bytes()})
	xid++
	rows = append(rows, credShape{name: "non-zero padding in the credential: served",
		msg: rawWithBadPad(xid, false), reply: AcceptedReply(xid, Success, 111)})
	xid++
	rows = append(rows, credShape{name: "non-zero padding in the verifier: served",
		msg: rawWithBadPad(xid, true), reply: AcceptedReply(xid, Success, 111)})
	xid++
	rows = append(rows, credShape{name: "non-zero padding in GETADDR's strings: served",
		msg: rawGetaddrBadPad(xid), reply: stringReply(xid, "127.0.0.1.0.111"), local: stringReply(xid, "/run/rpcbind.sock")})
	return rows
}

// TestCredentialsDifferential sends every flavour portmapd does not serve
// and every shape of credential, verifier and padding that libtirpc
// accepts or refuses, one row each, over udp, tcp and the local socket:
// portmapd must answer byte for byte as rpcbind 1.2.6 does. The Expect
// lines are rpcbind's answers, built from RFC 5531's reply layout:
//
//   - AUTH_DH gets AUTH_FAILED and RPCSEC_GSS AUTH_BADCRED (libtirpc's
//     stubs for them); every other flavour, AUTH_SHORT in a call included,
//     AUTH_REJECTEDCRED.
//   - An AUTH_SYS body is refused (AUTH_BADCRED) only when its fields do
//     not fit in it or break RFC 5531's limits; bytes after the groups and
//     padding that is not zero are not looked at.
//   - A credential or verifier over 400 bytes is not a call: no reply;
//     rpcbind closes a stream for it, portmapd serves the stream on.
func TestCredentialsDifferential(t *testing.T) {
	t.Parallel()
	var steps []Step
	for _, r := range credShapes() {
		var ops, want []string
		for _, n := range []string{"udp", "tcp", "local"} {
			res := "reply " + Hex(r.reply)
			if n == "local" && r.local != nil {
				res = "reply " + Hex(r.local)
			}
			if r.reply == nil {
				res = "noreply"
				if n != "udp" {
					res = "closed"
				}
			}
			ops = append(ops, "raw "+n+" "+Hex(r.msg))
			want = append(want, RawOut(n, r.msg, res))
		}
		s := Client(r.name, ops...).Expect(want...)
		switch {
		case r.echo:
			s = s.Tolerate(verfEchoed, SameOr(IsReply(AcceptedReply(beWord(r.msg), Success, 111))))
		case r.reply == nil:
			s = s.Tolerate(junkRecord, KeptOpen)
		}
		steps = append(steps, s)
	}
	RunDiff(t, Rpcbind(), Portmapd(), steps)
}

// TestPipelinedBadCallsDifferential sends, on one stream, a good call, a
// call that is bad in one of the ways of TestCredentialsDifferential (or
// has arguments that do not decode, another RPC version, an unknown
// program), and another good call: every call whose header decodes gets
// its answer, a record that is not a call (a credential over 400 bytes)
// gets none, and the calls behind both are served. rpcbind closes the
// stream for the record that is not a call and for another RPC version.
func TestPipelinedBadCallsDifferential(t *testing.T) {
	t.Parallel()
	rows := credShapes()
	more := []struct {
		name  string
		call  Call
		reply func(xid uint32) []byte
	}{
		{"short arguments: GARBAGE_ARGS", NewCall(0, 100000, 2, 3, 100000, 2), func(x uint32) []byte { return AcceptedReply(x, GarbageArgs) }},
		{"unknown program: PROG_UNAVAIL", NewCall(0, 100001, 2, 0), func(x uint32) []byte { return AcceptedReply(x, ProgUnavail) }},
		{"unknown procedure: PROC_UNAVAIL", NewCall(0, 100000, 2, 77), func(x uint32) []byte { return AcceptedReply(x, ProcUnavail) }},
		{"unknown version: PROG_MISMATCH", NewCall(0, 100000, 7, 0), func(x uint32) []byte { return AcceptedReply(x, ProgMismatch, 2, 4) }},
	}
	for i, m := range more {
		xid := uint32(0xc000 + i)
		m.call.XID = xid
		rows = append(rows, credShape{name: m.name, msg: m.call.Bytes(), reply: m.reply(xid)})
	}
	// libtirpc drops a call of another RPC version and, on a stream,
	// closes it; portmapd answers RPC_MISMATCH (RFC 5531) and goes on.
	mismatch := with(NewCall(0xc0ff, 100000, 2, 0), func(c *Call) { c.RPCVers = 3 })
	rows = append(rows, credShape{name: "RPC version 3: RPC_MISMATCH", msg: mismatch.Bytes(),
		reply: DeniedReply(0xc0ff, RPCMismatch, 2, 2), mismatch: true})
	var steps []Step
	for i, r := range rows {
		first := NewCall(uint32(0xd000+2*i), 100000, 2, 0)
		last := NewCall(uint32(0xd001+2*i), 100000, 4, 0)
		in := slices.Concat(record(first.Bytes()), record(r.msg), record(last.Bytes()))
		out := record(AcceptedReply(first.XID, Success))
		var ops, want, full []string
		for _, n := range []string{"tcp", "local"} {
			reply := r.reply
			if n == "local" && r.local != nil {
				reply = r.local
			}
			closed := "reply " + Hex(out) + " closed"
			all := "reply " + Hex(slices.Concat(out, record(reply), record(AcceptedReply(last.XID, Success))))
			op := "rawpipe " + n + " 3 " + Hex(in)
			ops = append(ops, op)
			switch {
			case r.reply == nil:
				want = append(want, op+": "+closed)
				full = append(full, op+": reply "+Hex(slices.Concat(out, record(AcceptedReply(last.XID, Success)))))
			case r.mismatch:
				want = append(want, op+": "+closed)
				full = append(full, op+": "+all)
			default:
				want = append(want, op+": "+all)
			}
		}
		s := Client("pipelined: "+r.name, ops...).Expect(want...)
		switch {
		case r.echo:
			s = s.Tolerate(verfEchoed, SameOr(func(ref, got string) error {
				w := strings.Replace(ref, Hex(record(r.reply)), Hex(record(AcceptedReply(beWord(r.msg), Success, 111))), 1)
				if got != w {
					return fmt.Errorf("want %q", w)
				}
				return nil
			}))
		case r.mismatch:
			s = s.Tolerate("rpcbind drops a call of another RPC version and closes the stream; "+
				"portmapd answers RPC_MISMATCH(2, 2) and serves the calls behind it", Exactly(full...))
		case r.reply == nil:
			s = s.Tolerate(junkRecord+" (the call behind it is answered)", Exactly(full...))
		}
		steps = append(steps, s)
	}
	RunDiff(t, Rpcbind(), Portmapd(), steps)
}

// beWord is the first XDR word of b: a message's xid.
func beWord(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
