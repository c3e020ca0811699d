package rpcinfo

import (
	"bytes"
)

// xdrReader decodes XDR the way libtirpc's xdrmem does, which is what
// decides what rpcinfo prints for odd replies: padding is skipped
// without being checked, a boolean is anything but zero, and a string is
// a C string that ends at its first NUL. Every length is checked against
// its maximum and the bytes present before anything is sliced, and a
// failure sticks, so decoders check once at the end.
type xdrReader struct {
	b   []byte
	off int
	bad bool
}

func newReader(b []byte) *xdrReader { return &xdrReader{b: b} }

func (r *xdrReader) ok() bool { return !r.bad }

func (r *xdrReader) u32() uint32 {
	if r.bad || len(r.b)-r.off < 4 {
		r.bad = true
		return 0
	}
	v := uint32(r.b[r.off])<<24 | uint32(r.b[r.off+1])<<16 | uint32(r.b[r.off+2])<<8 | uint32(r.b[r.off+3])
	r.off += 4
	return v
}

func (r *xdrReader) i32() int32 { return int32(r.u32()) }

// boolean is xdr_bool, which reads any non-zero value as TRUE.
func (r *xdrReader) boolean() bool { return r.u32() != 0 }

// opaque is xdr_bytes with a maximum: the length, the data, then the
// padding, which must be present but may hold anything.
func (r *xdrReader) opaque(max uint32) []byte {
	n := r.u32()
	if r.bad || n > max {
		r.bad = true
		return nil
	}
	padded := uint64(n) + uint64((4-n&3)&3)
	if uint64(len(r.b)-r.off) < padded {
		r.bad = true
		return nil
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(padded)
	return b
}

// str is xdr_string: the C string ends at the first NUL, which is all
// that printf ever shows of it.
func (r *xdrReader) str(max uint32) string {
	b := r.opaque(max)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Limits of the decoders, as in libtirpc: a verifier holds at most
// MAX_AUTH_BYTES, the strings of rpcbind's structures RPC_MAXDATASIZE.
// xdr_wrapstring has no limit in C; here the size of a datagram is one,
// so a stream cannot make the client allocate what a length claims.
const (
	maxAuthBytes = 400
	maxDataSize  = 9000
	maxWrapStr   = 65535
)

// Message constants of RFC 5531.
const (
	msgReply    = 1
	msgAccepted = 0
	msgDenied   = 1
	acceptSucc  = 0
	acceptProgU = 1
	acceptProgM = 2
	acceptProcU = 3
	acceptGarb  = 4
	acceptSys   = 5
	rejectRPC   = 0
	rejectAuth  = 1
)

// parseReply is xdr_replymsg followed by _seterr_reply. ok is false when
// the message is not a reply libtirpc can decode: a stream client then
// skips the record and a datagram client reports CANTDECODERES. On
// success r is left at the results.
func parseReply(r *xdrReader) (xid uint32, e rpcErr, ok bool) {
	xid = r.u32()
	if r.u32() != msgReply || r.bad {
		return xid, e, false
	}
	switch r.u32() {
	case msgAccepted:
		r.u32() // verifier flavour: AUTH_NONE and AUTH_SYS clients accept any
		r.opaque(maxAuthBytes)
		stat := r.u32()
		var low, high uint32
		if stat == acceptProgM {
			low, high = r.u32(), r.u32()
		}
		if r.bad {
			return xid, e, false
		}
		switch stat {
		case acceptSucc:
			e.Stat = Success
		case acceptProgU:
			e.Stat = ProgUnavail
		case acceptProgM:
			e = rpcErr{Stat: ProgVersMismatch, S1: int32(low), S2: int32(high)}
		case acceptProcU:
			e.Stat = ProcUnavail
		case acceptGarb:
			e.Stat = CantDecodeArgs
		case acceptSys:
			e.Stat = SystemError
		default:
			e = rpcErr{Stat: Failed, S1: msgAccepted, S2: int32(stat)}
		}
	case msgDenied:
		switch r.u32() {
		case rejectRPC:
			low, high := r.u32(), r.u32()
			e = rpcErr{Stat: VersMismatch, S1: int32(low), S2: int32(high)}
		case rejectAuth:
			e = rpcErr{Stat: AuthError, S1: r.i32()}
		default:
			return xid, e, false
		}
		if r.bad {
			return xid, e, false
		}
	default:
		return xid, e, false
	}
	return xid, e, true
}
