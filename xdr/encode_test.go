package xdr_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"unsigned int", xdr.AppendUint32(nil, 0x01020304), "01020304"},
		{"signed int", xdr.AppendInt32(nil, -2), "fffffffe"},
		{"smallest signed int", xdr.AppendInt32(nil, math.MinInt32), "80000000"},
		{"unsigned hyper", xdr.AppendUint64(nil, 0x0102030405060708), "01020304 05060708"},
		{"TRUE is 1", xdr.AppendBool(nil, true), "00000001"},
		{"FALSE is 0", xdr.AppendBool(nil, false), "00000000"},
		{"fixed opaque of 0 bytes is nothing", xdr.AppendFixedOpaque(nil, nil), ""},
		{"fixed opaque of 1 byte gets 3 of padding", xdr.AppendFixedOpaque(nil, []byte{1}), "01000000"},
		{"fixed opaque of 4 bytes gets none", xdr.AppendFixedOpaque(nil, []byte{1, 2, 3, 4}), "01020304"},
		{"fixed opaque of 6 bytes gets 2", xdr.AppendFixedOpaque(nil, []byte{1, 2, 3, 4, 5, 6}), "01020304 05060000"},
		{"empty opaque is a zero length", xdr.AppendOpaque(nil, nil), "00000000"},
		{"opaque: length, bytes, padding", xdr.AppendOpaque(nil, []byte{0xaa, 0xbb}), "00000002 aabb0000"},
		{"empty string is a zero length", xdr.AppendString(nil, ""), "00000000"},
		{"string: length, bytes, padding", xdr.AppendString(nil, "tcp"), "00000003 74637000"},
		{"string of four bytes is unpadded", xdr.AppendString(nil, "udp6"), "00000004 75647036"},
		{"appending keeps what was there", xdr.AppendUint32([]byte{9}, 1), "09 00000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := hexBytes(t, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("got %x, want %x", tt.got, want)
			}
		})
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	p := []byte("abcde")
	allocs := testing.AllocsPerRun(100, func() {
		b := xdr.AppendUint32(buf[:0], 1)
		b = xdr.AppendInt32(b, -1)
		b = xdr.AppendUint64(b, 2)
		b = xdr.AppendBool(b, true)
		b = xdr.AppendOpaque(b, p)
		b = xdr.AppendFixedOpaque(b, p)
		b = xdr.AppendString(b, "tcp6")
		buf = b
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

// What the encoder writes, the decoder reads back, to the byte.
func TestRoundTrip(t *testing.T) {
	for n := range 9 {
		p := bytes.Repeat([]byte{0x5a}, n)
		b := xdr.AppendOpaque(nil, p)
		b = xdr.AppendString(b, string(p))
		b = xdr.AppendFixedOpaque(b, p)
		if len(b)%4 != 0 {
			t.Fatalf("n=%d: encoding of %d bytes is not a multiple of four", n, len(b))
		}
		d := xdr.NewDecoder(b)
		o, err1 := d.Opaque(n)
		s, err2 := d.String(n)
		f, err3 := d.FixedOpaque(n)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("n=%d: %v %v %v", n, err1, err2, err3)
		}
		if !bytes.Equal(o, p) || s != string(p) || !bytes.Equal(f, p) || d.Len() != 0 {
			t.Errorf("n=%d: got %x %q %x with %d left", n, o, s, f, d.Len())
		}
	}
}
