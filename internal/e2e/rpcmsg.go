package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Auth is an opaque_auth: a flavor and its body.
type Auth struct {
	Flavor uint32
	Body   []byte
}

// Authentication flavors (RFC 5531).
const (
	AuthNone = 0
	AuthSys  = 1
)

// AuthSysCred returns an AUTH_SYS credential.
func AuthSysCred(stamp uint32, machine string, uid, gid uint32, gids ...uint32) Auth {
	body := Words(stamp)
	body = append(body, XDRString(machine)...)
	body = append(body, Words(uid, gid, uint32(len(gids)))...)
	body = append(body, Words(gids...)...)
	return Auth{Flavor: AuthSys, Body: body}
}

// Reply fields (RFC 5531), for building the replies tests expect.
const (
	MsgAccepted = 0
	MsgDenied   = 1

	Success      = 0 // accept_stat
	ProgUnavail  = 1
	ProgMismatch = 2
	ProcUnavail  = 3
	GarbageArgs  = 4
	SystemErr    = 5

	RPCMismatch = 0 // reject_stat
	AuthError   = 1

	AuthBadCred      = 1 // auth_stat
	AuthRejectedCred = 2
	AuthBadVerf      = 3
	AuthTooWeak      = 5
	AuthFailed       = 7
)

// AcceptedReply is a MSG_ACCEPTED reply with an AUTH_NONE verifier, the
// given accept_stat and what follows it (results, or a version range).
func AcceptedReply(xid, stat uint32, rest ...uint32) []byte {
	return Words(append([]uint32{xid, 1, MsgAccepted, AuthNone, 0, stat}, rest...)...)
}

// DeniedReply is a MSG_DENIED reply: reject_stat and its details, e.g.
// DeniedReply(xid, AuthError, AuthTooWeak).
func DeniedReply(xid uint32, rest ...uint32) []byte {
	return Words(append([]uint32{xid, 1, MsgDenied}, rest...)...)
}

// Call is an RPC call message built byte by byte, so that tests can send
// what no library would: wrong RPC versions, odd credentials, short
// arguments.
type Call struct {
	XID              uint32
	MsgType          uint32 // 0 CALL; anything else for tests of bad messages
	RPCVers          uint32
	Prog, Vers, Proc uint32
	Cred, Verf       Auth
	Args             []byte
}

// NewCall returns a well-formed RPC version 2 call with AUTH_NONE whose
// arguments are the given XDR words.
func NewCall(xid, prog, vers, proc uint32, args ...uint32) Call {
	return Call{XID: xid, RPCVers: 2, Prog: prog, Vers: vers, Proc: proc, Args: Words(args...)}
}

// Bytes encodes the call as it travels in a datagram (no record mark).
func (c Call) Bytes() []byte {
	b := Words(c.XID, c.MsgType, c.RPCVers, c.Prog, c.Vers, c.Proc)
	for _, a := range []Auth{c.Cred, c.Verf} {
		b = append(b, Words(a.Flavor)...)
		b = append(b, XDROpaque(a.Body)...)
	}
	return append(b, c.Args...)
}

// Hex is Bytes in the form rpcclient's raw operation takes.
func (c Call) Hex() string { return hex.EncodeToString(c.Bytes()) }

// Hex renders bytes for rpcclient's raw operation; "-" stands for none.
func Hex(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

// Words encodes XDR unsigned integers.
func Words(vs ...uint32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// XDROpaque encodes variable-length opaque data: length, bytes, padding.
func XDROpaque(p []byte) []byte {
	b := Words(uint32(len(p)))
	b = append(b, p...)
	return append(b, make([]byte, (4-len(p)%4)%4)...)
}

// XDRString encodes an XDR string.
func XDRString(s string) []byte { return XDROpaque([]byte(s)) }

// ReplyWords extracts the reply of a raw operation from rpcclient's output
// line ("...: reply HEX") as XDR words, for checks that inspect replies
// instead of comparing them byte for byte.
func ReplyWords(stdout string) ([]uint32, error) {
	_, h, ok := strings.Cut(strings.TrimSpace(stdout), ": reply ")
	if !ok {
		return nil, fmt.Errorf("no reply in %q", stdout)
	}
	b, err := hex.DecodeString(strings.Fields(h)[0])
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("reply of %d bytes is not whole XDR words", len(b))
	}
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return w, nil
}
