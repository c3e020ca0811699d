// Package xdr is the hot-path XDR codec (RFC 4506) of portmapd.
//
// A Decoder walks a []byte that came from the network. Every
// variable-length read takes a maximum and checks it, and the bytes
// actually present, before slicing, so a length prefix that claims a
// gigabyte costs nothing (CVE-2017-8779, "rpcbomb"). Results point into the
// input instead of being copied. Padding is written as zeros and, as
// libtirpc does, read past whatever it holds; the Decoder notes padding
// that was not zero so that a server can count such calls.
//
// Encoding appends to the caller's buffer (AppendUint32 and friends), so a
// reply can be built in a pooled buffer without allocating.
//
// github.com/davecgh/go-xdr remains the codec for cold paths such as the
// warm-start file; this package exists because that one allocates on every
// call and, in its unlimited form, whatever a length prefix claims.
package xdr
