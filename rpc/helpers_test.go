package rpc

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

// hexBytes turns "00000001 ff" into bytes; spaces only group words for the
// reader.
func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// words encodes XDR unsigned ints.
func words(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = xdr.AppendUint32(b, w)
	}
	return b
}

// rawCall builds a call message field by field, so tests can put in it what
// AppendCall would never write.
type rawCall struct {
	xid, mtype, rpcvers, prog, vers, proc uint32
	cred, verf                            OpaqueAuth
	args                                  []byte
}

func (c rawCall) bytes() []byte {
	b := words(c.xid, c.mtype, c.rpcvers, c.prog, c.vers, c.proc, c.cred.Flavor)
	b = xdr.AppendOpaque(b, c.cred.Body)
	b = xdr.AppendUint32(b, c.verf.Flavor)
	b = xdr.AppendOpaque(b, c.verf.Body)
	return append(b, c.args...)
}

// getportCall is the message a PMAP v2 GETPORT of (100003, 3, tcp) sends.
func getportCall(xid uint32) []byte {
	b := AppendCall(nil, xid, 100000, 2, 3, OpaqueAuth{Flavor: AuthNone})
	return append(b, words(100003, 3, 6, 0)...)
}

// authSysBody is a well-formed AUTH_SYS credential: stamp, machine name
// "host", uid 1000, gid 100, groups 4 and 24.
const authSysBody = "01020304 00000004 686f7374 000003e8 00000064 00000002 00000004 00000018"

// sameButPadding reports whether enc, an encoding, equals in except where
// in has non-zero padding that the encoder wrote as zeros.
func sameButPadding(enc, in []byte) bool {
	if len(enc) != len(in) {
		return false
	}
	for i := range enc {
		if enc[i] != in[i] && enc[i] != 0 {
			return false
		}
	}
	return true
}
