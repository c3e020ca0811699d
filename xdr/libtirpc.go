package xdr

import "bytes"

// Clients read a server's replies as libtirpc's xdrmem does, since that is
// what decides what rpcinfo and every C client make of an odd reply. Two
// primitives differ from the strict ones above.

// AnyBool reads a boolean as xdr_bool does: any value but 0 is TRUE.
func (d *Decoder) AnyBool() (bool, error) {
	v, err := d.Uint32()
	return v != 0, err
}

// CString reads a string of at most max bytes as xdr_string hands it to
// C: it ends at its first NUL, which is all that printf ever shows of it.
func (d *Decoder) CString(max int) (string, error) {
	b, err := d.Opaque(max)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), err
}
