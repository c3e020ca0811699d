package xdr_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
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

// A failed read must leave the decoder where it was, so a caller can report
// the offset of the field that did not decode.
func checkUnmoved(t *testing.T, d *xdr.Decoder, in []byte) {
	t.Helper()
	if d.Offset() != 0 || d.Len() != len(in) {
		t.Errorf("failed read moved the decoder: offset %d, len %d of %d", d.Offset(), d.Len(), len(in))
	}
}

func TestUint32(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint32
		err  error
	}{
		{"an unsigned int is four bytes, big-endian", "01020304", 0x01020304, nil},
		{"the largest value", "ffffffff", math.MaxUint32, nil},
		{"bytes after the value are left alone", "00000007 ff", 7, nil},
		{"empty input is short", "", 0, xdr.ErrShort},
		{"one byte is short", "01", 0, xdr.ErrShort},
		{"three bytes are short", "010203", 0, xdr.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hexBytes(t, tt.in)
			var d xdr.Decoder
			d.Reset(in)
			got, err := d.Uint32()
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				checkUnmoved(t, &d, in)
				return
			}
			if got != tt.want || d.Offset() != 4 {
				t.Errorf("got %#x at offset %d, want %#x at 4", got, d.Offset(), tt.want)
			}
		})
	}
}

func TestInt32(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int32
		err  error
	}{
		{"a signed int is two's complement", "fffffffe", -2, nil},
		{"the smallest value", "80000000", math.MinInt32, nil},
		{"the largest value", "7fffffff", math.MaxInt32, nil},
		{"three bytes are short", "ffffff", 0, xdr.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hexBytes(t, tt.in)
			d := xdr.NewDecoder(in)
			got, err := d.Int32()
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				checkUnmoved(t, d, in)
				return
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestUint64(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint64
		err  error
	}{
		{"an unsigned hyper is eight bytes, big-endian", "01020304 05060708", 0x0102030405060708, nil},
		{"the largest value", "ffffffff ffffffff", math.MaxUint64, nil},
		{"seven bytes are short", "01020304 050607", 0, xdr.ErrShort},
		{"four bytes are short", "01020304", 0, xdr.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hexBytes(t, tt.in)
			d := xdr.NewDecoder(in)
			got, err := d.Uint64()
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				checkUnmoved(t, d, in)
				return
			}
			if got != tt.want || d.Offset() != 8 {
				t.Errorf("got %#x at offset %d, want %#x at 8", got, d.Offset(), tt.want)
			}
		})
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
		err  error
	}{
		{"0 is FALSE", "00000000", false, nil},
		{"1 is TRUE", "00000001", true, nil},
		{"2 is neither", "00000002", false, xdr.ErrBool},
		{"a set high bit is neither", "80000001", false, xdr.ErrBool},
		{"all ones is neither", "ffffffff", false, xdr.ErrBool},
		{"three bytes are short", "000000", false, xdr.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hexBytes(t, tt.in)
			d := xdr.NewDecoder(in)
			got, err := d.Bool()
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				checkUnmoved(t, d, in)
				return
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFixedOpaque(t *testing.T) {
	tests := []struct {
		name string
		n    int
		in   string
		want string
		err  error
	}{
		{"zero bytes take no room", 0, "", "", nil},
		{"four bytes need no padding", 4, "01020304", "01020304", nil},
		{"one byte is padded to four", 1, "01000000", "01", nil},
		{"three bytes are padded to four", 3, "01020300", "010203", nil},
		{"five bytes are padded to eight", 5, "01020304 05000000", "0102030405", nil},
		{"padding that is not zero is read past (first pad byte)", 1, "01010000", "01", nil},
		{"padding that is not zero is read past (last pad byte)", 1, "01000001", "01", nil},
		{"padding that is not zero is read past (single pad byte)", 3, "010203ff", "010203", nil},
		{"data cut short", 4, "010203", "", xdr.ErrShort},
		{"padding cut short", 3, "010203", "", xdr.ErrShort},
		{"padding partly present", 1, "0100", "", xdr.ErrShort},
		{"a negative size is refused", -1, "01020304", "", xdr.ErrTooLong},
		{"a size near MaxInt is short, not a panic", math.MaxInt, "01020304", "", xdr.ErrShort},
		{"a size one below MaxInt is short", math.MaxInt - 1, "01020304", "", xdr.ErrShort},
		{"a size of 4 GB is short", 1 << 32, "01020304", "", xdr.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hexBytes(t, tt.in)
			d := xdr.NewDecoder(in)
			got, err := d.FixedOpaque(tt.n)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				checkUnmoved(t, d, in)
				return
			}
			if want := hexBytes(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("got %x, want %x", got, want)
			}
			if d.Len() != 0 {
				t.Errorf("%d bytes left, want the padding consumed too", d.Len())
			}
			checkPaddingNoted(t, d, in, tt.n)
			if cap(got) != len(got) {
				t.Errorf("cap %d > len %d: an append by the caller would overwrite the input", cap(got), len(got))
			}
		})
	}
}

// Opaque, StringBytes and String share one wire format: a length, the
// bytes, zero padding to a multiple of four.
func TestVariableLength(t *testing.T) {
	tests := []struct {
		name string
		max  int
		in   string
		want string
		err  error
	}{
		{"an empty value is just its length", 8, "00000000", "", nil},
		{"three bytes and one of padding", 8, "00000003 61626300", "616263", nil},
		{"four bytes and no padding", 8, "00000004 61626364", "61626364", nil},
		{"a length equal to the maximum is allowed", 5, "00000005 61626364 65000000", "6162636465", nil},
		{"a zero maximum allows the empty value", 0, "00000000", "", nil},
		{"one byte over the maximum", 4, "00000005 61626364 65000000", "", xdr.ErrTooLong},
		{"a zero maximum refuses one byte", 0, "00000001 61000000", "", xdr.ErrTooLong},
		{"a length of 4 GB over a small maximum", 9000, "ffffffff", "", xdr.ErrTooLong},
		{"a length of 4 GB under no maximum is short", math.MaxInt, "fffffffc 00000000", "", xdr.ErrShort},
		{"a length of 2 GB under no maximum is short", math.MaxInt, "80000000 00000000", "", xdr.ErrShort},
		{"a negative maximum admits nothing", -1, "00000004 61626364", "", xdr.ErrTooLong},
		{"a negative maximum admits not even the empty value", -1, "00000000", "", xdr.ErrTooLong},
		{"padding that is not zero is read past", 8, "00000001 61000100", "61", nil},
		{"padding that is not zero is read past (last byte)", 8, "00000002 61620001", "6162", nil},
		{"data cut short", 8, "00000004 616263", "", xdr.ErrShort},
		{"padding cut short", 8, "00000003 616263", "", xdr.ErrShort},
		{"length cut short", 8, "000000", "", xdr.ErrShort},
	}
	decoders := []struct {
		name   string
		decode func(d *xdr.Decoder, max int) ([]byte, error)
	}{
		{"Opaque", (*xdr.Decoder).Opaque},
		{"StringBytes", (*xdr.Decoder).StringBytes},
		{"String", func(d *xdr.Decoder, max int) ([]byte, error) {
			s, err := d.String(max)
			if err != nil && s != "" {
				return nil, errors.New("String returned a value with an error")
			}
			return []byte(s), err
		}},
	}
	for _, dec := range decoders {
		for _, tt := range tests {
			t.Run(dec.name+"/"+tt.name, func(t *testing.T) {
				in := hexBytes(t, tt.in)
				d := xdr.NewDecoder(in)
				got, err := dec.decode(d, tt.max)
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if err != nil {
					checkUnmoved(t, d, in)
					return
				}
				if want := hexBytes(t, tt.want); !bytes.Equal(got, want) {
					t.Errorf("got %x, want %x", got, want)
				}
				if d.Len() != 0 {
					t.Errorf("%d bytes left, want the padding consumed too", d.Len())
				}
				checkPaddingNoted(t, d, in[4:], len(got))
			})
		}
	}
}

// checkPaddingNoted checks that NonZeroPadding tells whether the padding
// after the n bytes of data at the start of in held anything but zeros.
func checkPaddingNoted(t *testing.T, d *xdr.Decoder, in []byte, n int) {
	t.Helper()
	want := !bytes.Equal(in[n:n+xdr.Pad(n)], make([]byte, xdr.Pad(n)))
	if d.NonZeroPadding() != want {
		t.Errorf("NonZeroPadding() = %v, want %v", d.NonZeroPadding(), want)
	}
	d.Reset(in)
	if d.NonZeroPadding() {
		t.Error("Reset kept the note of non-zero padding")
	}
}

// Results point into the input instead of being copied.
func TestOpaqueAliasesInput(t *testing.T) {
	in := hexBytes(t, "00000003 61626300")
	got, err := xdr.NewDecoder(in).Opaque(8)
	if err != nil {
		t.Fatal(err)
	}
	in[4] = 'z'
	if got[0] != 'z' {
		t.Error("Opaque copied its result; it should alias the input")
	}
	if cap(got) != 3 {
		t.Errorf("cap = %d, want 3 so that appending cannot overwrite the padding", cap(got))
	}
}

// CVE-2017-8779 ("rpcbomb"): a length prefix claiming about 4 GB must cost
// nothing, whatever the maximum the caller passes.
func TestHugeLengthDoesNotAllocate(t *testing.T) {
	claims := []string{"ffffffff", "fffffffc", "80000000", "40000000"}
	for _, c := range claims {
		in := hexBytes(t, c+" 00000000 00000000")
		var d xdr.Decoder
		for _, max := range []int{9000, math.MaxInt32, math.MaxInt} {
			allocs := testing.AllocsPerRun(100, func() {
				d.Reset(in)
				if _, err := d.Opaque(max); err == nil {
					t.Fatal("Opaque accepted a length larger than the input")
				}
				d.Reset(in)
				if _, err := d.String(max); err == nil {
					t.Fatal("String accepted a length larger than the input")
				}
				d.Reset(in)
				if _, err := d.FixedOpaque(int(uint32(0xfffffffc))); err == nil {
					t.Fatal("FixedOpaque accepted a size larger than the input")
				}
			})
			if allocs != 0 {
				t.Errorf("length %s, max %d: %v allocations, want 0", c, max, allocs)
			}
		}
	}
}

func TestDecodingDoesNotAllocate(t *testing.T) {
	in := hexBytes(t, "00000001 00000001 fffffffe 01020304 05060708 00000003 61626300 00000002 61620000 01020300")
	var d xdr.Decoder
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(in)
		_, _ = d.Uint32()
		_, _ = d.Bool()
		_, _ = d.Int32()
		_, _ = d.Uint64()
		_, _ = d.Opaque(8)
		_, _ = d.StringBytes(8)
		if _, err := d.FixedOpaque(3); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

func TestDecoderBookkeeping(t *testing.T) {
	in := hexBytes(t, "00000001 00000002 ff")
	var zero xdr.Decoder
	if _, err := zero.Uint32(); !errors.Is(err, xdr.ErrShort) {
		t.Errorf("the zero Decoder: err = %v, want ErrShort", err)
	}
	d := xdr.NewDecoder(in)
	if d.Len() != 9 || d.Offset() != 0 {
		t.Fatalf("fresh decoder: len %d offset %d", d.Len(), d.Offset())
	}
	_, _ = d.Uint32()
	if d.Len() != 5 || d.Offset() != 4 || !bytes.Equal(d.Rest(), in[4:]) {
		t.Errorf("after one word: len %d offset %d rest %x", d.Len(), d.Offset(), d.Rest())
	}
	if d.Len() != 5 {
		t.Error("Rest consumed bytes")
	}
	d.Reset(in[8:])
	if d.Len() != 1 || d.Offset() != 0 {
		t.Errorf("after Reset: len %d offset %d", d.Len(), d.Offset())
	}
}

func TestPad(t *testing.T) {
	for n, want := range []int{0, 3, 2, 1, 0, 3, 2, 1, 0} {
		if got := xdr.Pad(n); got != want {
			t.Errorf("Pad(%d) = %d, want %d", n, got, want)
		}
	}
	if got := xdr.Pad(math.MaxInt); got != 1 {
		t.Errorf("Pad(MaxInt) = %d, want 1", got)
	}
}

// TestLibtirpcReads: a client reads a boolean and a string as libtirpc
// does: any non-zero boolean is TRUE, a string ends at its first NUL.
func TestLibtirpcReads(t *testing.T) {
	d := xdr.NewDecoder([]byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5, 'a', 'b', 0, 'c', 'd', 0, 0, 0})
	if v, err := d.AnyBool(); !v || err != nil {
		t.Errorf("AnyBool of 2 = %v, %v; want true", v, err)
	}
	if v, err := d.AnyBool(); v || err != nil {
		t.Errorf("AnyBool of 0 = %v, %v; want false", v, err)
	}
	if s, err := d.CString(5); s != "ab" || err != nil {
		t.Errorf("CString = %q, %v; want \"ab\"", s, err)
	}
	if _, err := d.AnyBool(); !errors.Is(err, xdr.ErrShort) {
		t.Errorf("AnyBool past the end: %v", err)
	}
	d.Reset([]byte{0, 0, 0, 6, 'a', 'b', 'c', 'd', 'e', 'f', 0, 0})
	if _, err := d.CString(5); !errors.Is(err, xdr.ErrTooLong) {
		t.Errorf("CString over its maximum: %v", err)
	}
}
