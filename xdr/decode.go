package xdr

import (
	"encoding/binary"
	"errors"
)

// Errors a Decoder returns. Callers branch on them with errors.Is.
var (
	// ErrShort means the input ended before the value did.
	ErrShort = errors.New("xdr: input too short")
	// ErrTooLong means a length prefix exceeds the field's maximum.
	ErrTooLong = errors.New("xdr: length exceeds maximum")
	// ErrBool means a boolean was neither 0 nor 1.
	ErrBool = errors.New("xdr: boolean not 0 or 1")
)

// Decoder reads XDR values from a byte slice. The zero value decodes an
// empty input; Reset points it at another one. Slices it returns alias the
// input. A read that fails consumes nothing, so Offset then tells where the
// bad field starts.
//
// Padding that is not zero is read past, as libtirpc reads it (RFC 4506
// asks senders to zero it, and older or embedded clients do not), and
// noted: NonZeroPadding reports it, so that servers can count such calls.
type Decoder struct {
	buf []byte
	off int
	pad bool
}

// NewDecoder returns a Decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Reset makes d decode b from its start.
func (d *Decoder) Reset(b []byte) { d.buf, d.off, d.pad = b, 0, false }

// NonZeroPadding reports whether a value read since the last Reset was
// padded with bytes that were not zero.
func (d *Decoder) NonZeroPadding() bool { return d.pad }

// Len reports how many bytes are left.
func (d *Decoder) Len() int { return len(d.buf) - d.off }

// Offset reports how many bytes have been consumed.
func (d *Decoder) Offset() int { return d.off }

// Rest returns the bytes not consumed yet without consuming them.
func (d *Decoder) Rest() []byte { return d.buf[d.off:] }

// Uint32 reads an unsigned int.
func (d *Decoder) Uint32() (uint32, error) {
	if d.Len() < 4 {
		return 0, ErrShort
	}
	v := binary.BigEndian.Uint32(d.buf[d.off:])
	d.off += 4
	return v, nil
}

// Int32 reads a signed int.
func (d *Decoder) Int32() (int32, error) {
	v, err := d.Uint32()
	return int32(v), err
}

// Uint64 reads an unsigned hyper.
func (d *Decoder) Uint64() (uint64, error) {
	if d.Len() < 8 {
		return 0, ErrShort
	}
	v := binary.BigEndian.Uint64(d.buf[d.off:])
	d.off += 8
	return v, nil
}

// Bool reads a boolean, which XDR allows to be only 0 or 1.
func (d *Decoder) Bool() (bool, error) {
	v, err := d.Uint32()
	if err != nil {
		return false, err
	}
	switch v {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	d.off -= 4
	return false, ErrBool
}

// FixedOpaque reads n bytes and their padding, whatever the padding holds.
func (d *Decoder) FixedOpaque(n int) ([]byte, error) {
	if n < 0 {
		return nil, ErrTooLong
	}
	// Compare before adding the padding: n+Pad(n) overflows for n near
	// MaxInt, and a negative sum would pass the check and panic below.
	if n > d.Len() || Pad(n) > d.Len()-n {
		return nil, ErrShort
	}
	padded := n + Pad(n)
	b := d.buf[d.off : d.off+n : d.off+n]
	for _, c := range d.buf[d.off+n : d.off+padded] {
		d.pad = d.pad || c != 0
	}
	d.off += padded
	return b, nil
}

// Opaque reads variable-length opaque data of at most max bytes. The
// length is checked against max and against the input before any slicing.
// A negative max admits nothing.
func (d *Decoder) Opaque(max int) ([]byte, error) {
	n, err := d.Uint32()
	if err != nil {
		return nil, err
	}
	// A negative max converted to uint64 would admit every length.
	if max < 0 || uint64(n) > uint64(max) {
		d.off -= 4
		return nil, ErrTooLong
	}
	b, err := d.FixedOpaque(int(n))
	if err != nil {
		d.off -= 4
	}
	return b, err
}

// StringBytes reads a string of at most max bytes without copying it; use it
// where the string is only looked at (a map lookup with m[string(b)] does
// not allocate).
func (d *Decoder) StringBytes(max int) ([]byte, error) { return d.Opaque(max) }

// String reads a string of at most max bytes into a new Go string.
func (d *Decoder) String(max int) (string, error) {
	b, err := d.Opaque(max)
	return string(b), err
}

// Pad returns how many zero bytes follow n bytes of data in XDR.
func Pad(n int) int { return (4 - n&3) & 3 }
