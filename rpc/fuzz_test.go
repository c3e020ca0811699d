package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/portmapd/portmapd/xdr"
)

// FuzzParseCall decodes a call header and its AUTH_SYS credential. What
// decodes must respect the RFC 5531 limits and re-encode to the very bytes
// it came from, but for padding that was not zero (read past and noted,
// written as zeros) and bytes after an AUTH_SYS credential's groups.
func FuzzParseCall(f *testing.F) {
	f.Add(getportCall(1))
	f.Add(AppendCall(nil, 2, 100000, 4, 3, OpaqueAuth{AuthSys, hexBytes(f, authSysBody)}))
	f.Add(rawCall{xid: 3, mtype: MsgReply, rpcvers: 2}.bytes())
	f.Add(rawCall{xid: 4, rpcvers: 3, cred: OpaqueAuth{6, make([]byte, 400)}}.bytes())
	f.Add(words(5, 0, 2, 100000, 2, 0, AuthSys, 0xffffffff))
	f.Add(hexBytes(f, authSysBody))
	f.Fuzz(func(t *testing.T, msg []byte) {
		// The bytes as a whole message.
		var d xdr.Decoder
		d.Reset(msg)
		h, err := ParseCall(&d)
		if err != nil {
			if !errors.Is(err, ErrNotCall) && !errors.Is(err, xdr.ErrShort) &&
				!errors.Is(err, xdr.ErrTooLong) {
				t.Fatalf("unexpected error %v", err)
			}
		} else {
			if len(h.Cred.Body) > MaxAuthBytes || len(h.Verf.Body) > MaxAuthBytes {
				t.Fatalf("auth bodies of %d and %d bytes", len(h.Cred.Body), len(h.Verf.Body))
			}
			enc := rawCall{xid: h.XID, mtype: MsgCall, rpcvers: h.RPCVers, prog: h.Prog, vers: h.Vers,
				proc: h.Proc, cred: h.Cred, verf: h.Verf}.bytes()
			if !sameButPadding(enc, msg[:d.Offset()]) || bytes.Equal(enc, msg[:d.Offset()]) == d.NonZeroPadding() {
				t.Fatalf("header %x re-encodes as %x (non-zero padding noted: %v)", msg[:d.Offset()], enc, d.NonZeroPadding())
			}
			if !bytes.Equal(d.Rest(), msg[d.Offset():]) {
				t.Fatal("Rest is not what follows the header")
			}
			if h.Cred.Flavor == AuthSys {
				checkAuthSys(t, h.Cred.Body)
			}
		}
		// The bytes as a credential body on their own.
		checkAuthSys(t, msg)
	})
}

func checkAuthSys(t *testing.T, body []byte) {
	t.Helper()
	p, padded, err := parseAuthSys(body)
	if err != nil {
		if !errors.Is(err, ErrAuthSys) {
			t.Fatalf("ParseAuthSys: unexpected error %v", err)
		}
		return
	}
	if len(p.MachineName) > MaxMachineName || p.NGIDs < 0 || p.NGIDs > MaxGroups {
		t.Fatalf("machine name of %d bytes, %d groups", len(p.MachineName), p.NGIDs)
	}
	// The fields come first; what follows the groups is ignored.
	enc := AppendAuthSys(nil, &p)
	if len(enc) > len(body) {
		t.Fatalf("credential %x re-encodes as %x, longer", body, enc)
	}
	if head := body[:len(enc)]; !sameButPadding(enc, head) || bytes.Equal(enc, head) == padded {
		t.Fatalf("credential %x re-encodes as %x (non-zero padding noted: %v)", body, enc, padded)
	}
}

// modelRecords is record marking as RFC 5531 section 11 describes it,
// written for clarity over a byte slice: the reference FuzzRecordReader
// holds the streaming reader to.
func modelRecords(data []byte, max, maxFrags int) ([][]byte, error) {
	var recs [][]byte
	for {
		var rec []byte
		for frag := 0; ; frag++ {
			if frag >= maxFrags {
				return recs, ErrTooManyFrags
			}
			if len(data) == 0 && frag == 0 {
				return recs, io.EOF
			}
			if len(data) < 4 {
				return recs, io.ErrUnexpectedEOF
			}
			h := binary.BigEndian.Uint32(data)
			data = data[4:]
			n := int(h & 0x7fffffff)
			if len(rec)+n > max {
				return recs, ErrRecordTooLarge
			}
			if len(data) < n {
				return recs, io.ErrUnexpectedEOF
			}
			rec = append(rec, data[:n]...)
			data = data[n:]
			if h&0x80000000 != 0 {
				break
			}
		}
		recs = append(recs, rec)
	}
}

// FuzzRecordReader reads arbitrary stream bytes under a small cap. It must
// never panic, never return a record over the cap, never hold much more
// memory than the cap, and agree with modelRecords on every record and on
// how the stream ends.
func FuzzRecordReader(f *testing.F) {
	f.Add(stream(frag(true, "abcd"), frag(false, "ef"), frag(true, "g")), uint16(100), uint8(4))
	f.Add(stream(frag(false, "123456"), frag(true, "789012")), uint16(10), uint8(4))
	f.Add(bytes.Repeat(frag(false, ""), 20), uint16(10), uint8(8))
	f.Add(words(0xffffffff, 1), uint16(4096), uint8(0x84))
	f.Add(append(frag(true, "ab"), 0x80, 0), uint16(16), uint8(2))
	f.Add(stream(frag(true, string(getportCall(7))), frag(true, string(getportCall(8)))), uint16(512), uint8(0x81))
	f.Fuzz(func(t *testing.T, data []byte, max uint16, frags uint8) {
		limit := int(max % 8192)
		maxFrags := int(frags & 0x3f)
		var r io.Reader = bytes.NewReader(data)
		if frags&0x80 != 0 {
			r = iotest.OneByteReader(r)
		}
		rr := NewRecordReader(r, limit)
		rr.MaxFragments = maxFrags
		want, wantErr := modelRecords(data, limit, maxFrags)
		for i := 0; ; i++ {
			rec, err := rr.Next()
			if cap(rr.buf) > 2*limit+2*readChunk {
				t.Fatalf("buffer of %d bytes under a cap of %d", cap(rr.buf), limit)
			}
			if err != nil {
				if i != len(want) || !errors.Is(err, wantErr) {
					t.Fatalf("ended with %v after %d records, want %v after %d", err, i, wantErr, len(want))
				}
				return
			}
			if len(rec) > limit {
				t.Fatalf("record of %d bytes under a cap of %d", len(rec), limit)
			}
			if i >= len(want) || !bytes.Equal(rec, want[i]) {
				t.Fatalf("record %d = %x, want the model's %d records %x", i, rec, len(want), want)
			}
		}
	})
}

// FuzzDispatch feeds arbitrary messages to the server's dispatcher with the
// test program behind it. A message whose header does not parse gets no
// reply; every reply carries the call's xid and is a well-formed reply.
func FuzzDispatch(f *testing.F) {
	f.Add(testCall(1, 1, procAdd, 2, 3))
	f.Add(testCall(2, 2, procNull))
	f.Add(testCall(3, 1, procWhoami))
	f.Add(AppendCall(nil, 4, testProg, 1, procAdd, OpaqueAuth{AuthSys, hexBytes(f, authSysBody)}))
	f.Add(AppendCall(nil, 5, testProg, 1, procNull, OpaqueAuth{AuthSys, words(1, 300)}))
	f.Add(rawCall{xid: 6, rpcvers: 3}.bytes())
	f.Add(rawCall{xid: 7, mtype: MsgReply, rpcvers: 2}.bytes())
	f.Add(getportCall(8))
	s := &Server{Handler: testMux()}
	s.init()
	out := make([]byte, 0, 1024)
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := &Call{Netid: NetidUDP, uid: -1}
		var w Reply
		ok := s.dispatch(&w, out[:0], msg, c)
		reply := w.Body
		var d xdr.Decoder
		d.Reset(msg)
		h, perr := ParseCall(&d)
		if perr != nil {
			if ok {
				t.Fatalf("reply %x to a message whose header does not parse (%v)", reply, perr)
			}
			return
		}
		if !ok {
			if h.RPCVers == Version && h.Prog == testProg && h.Proc == procNoReply &&
				(h.Vers == testVersLow || h.Vers == testVersHi) {
				return
			}
			t.Fatalf("no reply to %+v", h)
		}
		checkReply(t, reply, h.XID)
	})
}

// checkReply checks the structure of a reply message (RFC 5531, section 9).
func checkReply(t *testing.T, reply []byte, xid uint32) {
	t.Helper()
	var d xdr.Decoder
	d.Reset(reply)
	x, _ := d.Uint32()
	mtype, _ := d.Uint32()
	stat, err := d.Uint32()
	if err != nil || x != xid || mtype != MsgReply {
		t.Fatalf("reply %x: xid %#x (want %#x), msg_type %d, %v", reply, x, xid, mtype, err)
	}
	switch stat {
	case MsgAccepted:
		flavor, _ := d.Uint32()
		verf, err1 := d.Opaque(MaxAuthBytes)
		as, err2 := d.Uint32()
		if err1 != nil || err2 != nil || flavor != AuthNone || len(verf) != 0 || as > uint32(SystemErr) {
			t.Fatalf("accepted reply %x: verifier %d/%x, status %d", reply, flavor, verf, as)
		}
		if AcceptStat(as) == ProgMismatch {
			if _, err := d.Uint64(); err != nil || d.Len() != 0 {
				t.Fatalf("PROG_MISMATCH reply %x", reply)
			}
		} else if AcceptStat(as) != Success && d.Len() != 0 {
			t.Fatalf("error reply %x carries results", reply)
		}
	case MsgDenied:
		rs, _ := d.Uint32()
		switch RejectStat(rs) {
		case RPCMismatch:
			_, err = d.Uint64()
		case AuthError:
			_, err = d.Uint32()
		default:
			t.Fatalf("denied reply %x: reject_stat %d", reply, rs)
		}
		if err != nil || d.Len() != 0 {
			t.Fatalf("denied reply %x is malformed", reply)
		}
	default:
		t.Fatalf("reply %x: reply_stat %d", reply, stat)
	}
}
