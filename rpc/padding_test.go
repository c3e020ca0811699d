package rpc

import (
	"bytes"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

// RFC 4506 asks senders to zero padding; libtirpc reads it without looking
// at it, so rpcbind serves such calls. So does the server: a call with
// non-zero padding in its credential, verifier, AUTH_SYS machine name or
// arguments gets the answer it would get with zero padding, and is
// counted once.
func TestNonZeroPaddingIsServedAndCounted(t *testing.T) {
	const x = 0x9ad
	// The handler echoes a string argument, noting its padding.
	echo := HandlerFunc(func(w *Reply, c *Call) error {
		d := xdr.NewDecoder(c.Args)
		defer c.NotePadding(d)
		s, err := d.StringBytes(64)
		if err != nil {
			return ErrGarbageArgs
		}
		w.Body = xdr.AppendOpaque(w.Body, s)
		return nil
	})
	arg := xdr.AppendString(nil, "abc")
	badArg := bytes.Clone(arg)
	badArg[7] = 0xff
	authSys := hexBytes(t, "00000001 00000001 68000000 00000000 00000000 00000000")
	badAuthSys := bytes.Clone(authSys)
	badAuthSys[9] = 0x01
	call := func(cred, verf OpaqueAuth, args []byte) []byte {
		return rawCall{xid: x, rpcvers: 2, prog: testProg, vers: 1, cred: cred, verf: verf, args: args}.bytes()
	}
	// rawCall writes zero padding; put a non-zero byte where padding is.
	padAt := func(msg []byte, i int) []byte { msg = bytes.Clone(msg); msg[i] = 0x5a; return msg }
	want := xdr.AppendOpaque(AppendSuccess(nil, x), []byte("abc"))
	tests := []struct {
		name   string
		msg    []byte
		padded bool
	}{
		{"zero padding everywhere", call(OpaqueAuth{AuthSys, authSys}, OpaqueAuth{}, arg), false},
		{"in the arguments", call(OpaqueAuth{}, OpaqueAuth{}, badArg), true},
		{"in the AUTH_SYS machine name", call(OpaqueAuth{AuthSys, badAuthSys}, OpaqueAuth{}, arg), true},
		// xid..proc (24), flavour, length 1, one byte: padding at 33.
		{"in the credential", padAt(call(OpaqueAuth{AuthNone, []byte{1}}, OpaqueAuth{}, arg), 33), true},
		// credential (8), verifier flavour, length 2, two bytes: padding at 42.
		{"in the verifier", padAt(call(OpaqueAuth{}, OpaqueAuth{AuthNone, []byte{1, 2}}, arg), 42), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &countingObserver{}
			s := &Server{Handler: echo, Observer: obs}
			s.init()
			var c Call
			var w Reply
			ok := s.dispatch(&w, nil, tt.msg, &c)
			reply := w.Body
			if !ok || !bytes.Equal(reply, want) {
				t.Fatalf("reply %x (sent %v), want %x", reply, ok, want)
			}
			n := 0
			if tt.padded {
				n = 1
			}
			if got := s.Counters.NonZeroPadding.Load(); got != uint64(n) || obs.padded.Load() != int64(n) {
				t.Errorf("counted %d (observer %d), want %d", got, obs.padded.Load(), n)
			}
		})
	}
}
