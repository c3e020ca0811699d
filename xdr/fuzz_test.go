package xdr_test

import (
	"math"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

// fuzzSize turns one op byte into a size or maximum: small values, negative
// ones, and a few that would overflow or allocate if the decoder trusted them.
func fuzzSize(b byte) int {
	switch b {
	case 0x7f:
		return math.MaxInt
	case 0x7e:
		return math.MaxInt - 1
	case 0x7d:
		return 1 << 32
	case 0x7c:
		return math.MaxInt32
	}
	return int(int8(b))
}

// FuzzDecoder runs an arbitrary sequence of reads over arbitrary bytes. No
// read may panic, return more than its maximum, or move on failure; what a
// read accepts must be exactly what the encoder writes for the value, since
// XDR has one encoding per value (zero padding, booleans 0 or 1), except
// for padding that was not zero: the decoder reads past it and notes it,
// and the encoder writes zeros there.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, xdr.AppendUint64(xdr.AppendBool(xdr.AppendInt32(xdr.AppendUint32(nil, 7), -1), true), 9))
	f.Add([]byte{4, 3, 5, 8, 6, 8, 7, 8}, hexBytes(f, "01020300 00000003 61626300 00000004 61626364 00000000"))
	f.Add([]byte{5, 0x7f, 6, 0xff, 4, 0x7f}, hexBytes(f, "fffffffc 00000000"))
	f.Add([]byte{5, 4}, hexBytes(f, "00000005 0102030405000000"))
	f.Add([]byte{4, 1, 4, 3}, hexBytes(f, "01000001 01020301"))
	f.Add([]byte{3, 3}, hexBytes(f, "00000002 ffffffff"))
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		var d xdr.Decoder
		d.Reset(data)
		for i := 0; i < len(ops); i++ {
			op := ops[i] % 8
			var arg byte
			if op >= 4 && i+1 < len(ops) {
				i++
				arg = ops[i]
			}
			size := fuzzSize(arg)
			before := d.Offset()
			padBefore := d.NonZeroPadding()
			var enc []byte
			var err error
			switch op {
			case 0:
				var v uint32
				if v, err = d.Uint32(); err == nil {
					enc = xdr.AppendUint32(nil, v)
				}
			case 1:
				var v int32
				if v, err = d.Int32(); err == nil {
					enc = xdr.AppendInt32(nil, v)
				}
			case 2:
				var v uint64
				if v, err = d.Uint64(); err == nil {
					enc = xdr.AppendUint64(nil, v)
				}
			case 3:
				var v bool
				if v, err = d.Bool(); err == nil {
					enc = xdr.AppendBool(nil, v)
				}
			case 4:
				var v []byte
				if v, err = d.FixedOpaque(size); err == nil {
					if len(v) != size || cap(v) != len(v) {
						t.Fatalf("FixedOpaque(%d) returned len %d cap %d", size, len(v), cap(v))
					}
					enc = xdr.AppendFixedOpaque(nil, v)
				}
			case 5, 6:
				var v []byte
				if op == 5 {
					v, err = d.Opaque(size)
				} else {
					v, err = d.StringBytes(size)
				}
				if err == nil {
					if len(v) > size || cap(v) != len(v) {
						t.Fatalf("Opaque(%d) returned len %d cap %d", size, len(v), cap(v))
					}
					enc = xdr.AppendOpaque(nil, v)
				}
			case 7:
				var v string
				if v, err = d.String(size); err == nil {
					if len(v) > size {
						t.Fatalf("String(%d) returned %d bytes", size, len(v))
					}
					enc = xdr.AppendString(nil, v)
				}
			}
			if d.Offset()+d.Len() != len(data) || d.Offset() < 0 || d.Offset()%4 != 0 {
				t.Fatalf("op %d: offset %d + len %d != %d (or unaligned)", op, d.Offset(), d.Len(), len(data))
			}
			if err != nil {
				if d.Offset() != before {
					t.Fatalf("op %d failed (%v) but moved the decoder from %d to %d", op, err, before, d.Offset())
				}
				continue
			}
			got := data[before:d.Offset()]
			if len(got) != len(enc) {
				t.Fatalf("op %d accepted %x, which re-encodes as %x", op, got, enc)
			}
			differs := false
			for j := range got {
				if got[j] != enc[j] {
					// Only padding may differ, and only to zeros.
					if enc[j] != 0 || op < 4 {
						t.Fatalf("op %d accepted %x, which re-encodes as %x", op, got, enc)
					}
					differs = true
				}
			}
			if differs && !d.NonZeroPadding() {
				t.Fatalf("op %d read non-zero padding in %x without noting it", op, got)
			}
			if !differs && !padBefore && d.NonZeroPadding() {
				t.Fatalf("op %d noted non-zero padding in %x, which has none", op, got)
			}
		}
	})
}
