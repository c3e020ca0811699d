package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"

	"github.com/portmapd/portmapd/pmap"
	pxdr "github.com/portmapd/portmapd/xdr"
)

// The snapshot file format, version 2, in RFC 4506 XDR language (version
// 1, written before the journal existed, lacks seq and is still read):
//
//	const PMAPD_MAGIC   = "portmapd";   /* 8 bytes, no terminator */
//	const PMAPD_VERSION = 2;
//
//	struct pmapd_entry {
//		unsigned int prog;
//		unsigned int vers;
//		string       netid<MaxString>;
//		string       addr<MaxString>;   /* universal address */
//		string       owner<MaxString>;
//	};
//
//	struct pmapd_state {
//		opaque       magic[8];            /* PMAPD_MAGIC */
//		unsigned int version;             /* PMAPD_VERSION */
//		string       boot_id<64>;         /* kernel boot id, or "" */
//		unsigned hyper seq;               /* last journal record it holds */
//		pmapd_entry  entries<MaxMappings>;
//		unsigned int crc;                 /* CRC-32C of every byte before it */
//	};
//
// Magic and version come first so that a reader can refuse a file it does
// not understand before trusting any length in it. The boot id ties the
// table to the boot that produced it: registrations name ports of processes
// that a reboot killed. The trailing checksum catches what XDR's structure
// cannot: a torn or bit-flipped string still decodes.

// Limits on what Save writes and Load accepts. They are the same on both
// sides so that every file Save wrote loads again; the registry should
// refuse registrations beyond them (Save reports ErrTooLarge).
const (
	// MaxString bounds netid, addr and owner. The longest legitimate value
	// is a local socket path (108 bytes); rpcbind's wire cap is 9000.
	MaxString = 1024
	// MaxMappings bounds the number of rows in a file; it is the
	// registry's own cap (pmap.MaxMappings), so every table can be saved.
	MaxMappings = pmap.MaxMappings
	// MaxFileSize bounds how much of a state file is ever read into memory.
	// It holds MaxMappings rows of the longest netid (64) and address (256)
	// pmap's registry stores: 262144 × 352 bytes is 92 MB.
	MaxFileSize = 96 << 20
)

const (
	magic      = "portmapd"
	version    = 2
	version1   = 1 // no seq; read, never written
	maxBootID  = 64
	crcSize    = 4
	minEntry   = 4 + 4 + 3*4 // prog, vers and three empty strings
	headerSize = 8 + 4       // magic and version: enough to refuse a stranger
)

// castagnoli is made on first use: building it takes a fifth of a
// millisecond, which a daemon without warm start need not spend at start.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// Sentinel errors, so that callers and tests can tell why a file was refused.
// Each wraps into the reason recorded in the moved-aside file's name.
var (
	ErrTruncated  = errors.New("truncated")
	ErrChecksum   = errors.New("checksum mismatch")
	ErrMagic      = errors.New("not a portmapd state file")
	ErrVersion    = errors.New("unsupported format version")
	ErrCorrupt    = errors.New("corrupt")
	ErrTooLarge   = errors.New("too large")
	ErrStale      = errors.New("written during an earlier boot")
	ErrSymlink    = errors.New("is a symbolic link")
	ErrNotRegular = errors.New("not a regular file")
	ErrOwner      = errors.New("owned by an untrusted user")
	ErrMode       = errors.New("writable by group or others")
	ErrClosed     = errors.New("state writer closed")
	ErrUnsafeDir  = errors.New("unsafe state directory")
	ErrRemoved    = errors.New("file removed from the state directory, or the directory replaced, while open")
)

// xdrEntry mirrors pmapd_entry field by field (go-xdr encodes exported
// fields in declaration order); rpcbind's files hold the same structure.
type xdrEntry struct {
	Prog  uint32
	Vers  uint32
	Netid string
	Addr  string
	Owner string
}

// encodeState renders a table in the current format. It refuses what the
// decoder would refuse, so a saved file never fails to load for its size.
// Every durable SET saves the whole table, so the encoding is appended
// field by field into one buffer sized up front: go-xdr's reflection
// encoder, with which the tests check it, costs ten allocations a row.
func encodeState(ms []pmap.Mapping, bootID string, seq uint64) ([]byte, error) {
	if len(ms) > MaxMappings {
		return nil, fmt.Errorf("%d mappings, limit %d: %w", len(ms), MaxMappings, ErrTooLarge)
	}
	if len(bootID) > maxBootID {
		return nil, fmt.Errorf("boot id of %d bytes: %w", len(bootID), ErrTooLarge)
	}
	size := headerSize + xdrLen(bootID) + 8 + 4 + crcSize
	for _, m := range ms {
		n, err := entryLen(m)
		if err != nil {
			return nil, err
		}
		size += n
	}
	if size > MaxFileSize {
		return nil, fmt.Errorf("state of %d bytes, limit %d: %w", size, MaxFileSize, ErrTooLarge)
	}
	b := make([]byte, 0, size)
	b = append(b, magic...)
	b = pxdr.AppendUint32(b, version)
	b = pxdr.AppendString(b, bootID)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = pxdr.AppendUint32(b, uint32(len(ms)))
	for _, m := range ms {
		b = appendEntry(b, m)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli())), nil
}

// entryLen is the encoded size of m as a pmapd_entry, or ErrTooLarge for
// a string the decoder would refuse.
func entryLen(m pmap.Mapping) (int, error) {
	for _, s := range [...]string{m.Netid, m.Addr, m.Owner} {
		if len(s) > MaxString {
			return 0, fmt.Errorf("mapping %d/%d/%.20q: string of %d bytes, limit %d: %w",
				m.Prog, m.Vers, m.Netid, len(s), MaxString, ErrTooLarge)
		}
	}
	return 8 + xdrLen(m.Netid) + xdrLen(m.Addr) + xdrLen(m.Owner), nil
}

// appendEntry appends m as a pmapd_entry.
func appendEntry(b []byte, m pmap.Mapping) []byte {
	b = pxdr.AppendUint32(b, m.Prog)
	b = pxdr.AppendUint32(b, m.Vers)
	b = pxdr.AppendString(b, m.Netid)
	b = pxdr.AppendString(b, m.Addr)
	return pxdr.AppendString(b, m.Owner)
}

// xdrLen is the size of s encoded as an XDR string.
func xdrLen(s string) int { return 4 + len(s) + pxdr.Pad(len(s)) }

// decodeState parses a whole state file. The bytes may be hostile: the
// checksum and the fixed header are checked before any length is believed,
// every count is checked against the bytes present, and strings are read
// in place by a decoder that checks each length against MaxString and the
// bytes present, so that no length prefix can make it allocate.
func decodeState(data []byte) (ms []pmap.Mapping, bootID string, seq uint64, err error) {
	if len(data) > MaxFileSize {
		return nil, "", 0, fmt.Errorf("%d bytes, limit %d: %w", len(data), MaxFileSize, ErrTooLarge)
	}
	if len(data) < headerSize {
		return nil, "", 0, fmt.Errorf("%d bytes, header needs %d: %w", len(data), headerSize, ErrTruncated)
	}
	// Refuse strangers and future versions first: their checksum, if any,
	// is not ours, and "not a state file" is a better log line than
	// "checksum mismatch".
	if string(data[:8]) != magic {
		return nil, "", 0, fmt.Errorf("magic %q: %w", data[:8], ErrMagic)
	}
	v := binary.BigEndian.Uint32(data[8:12])
	if v != version && v != version1 {
		return nil, "", 0, fmt.Errorf("version %d, want %d: %w", v, version, ErrVersion)
	}
	if len(data) < headerSize+4+4+crcSize {
		return nil, "", 0, fmt.Errorf("%d bytes: %w", len(data), ErrTruncated)
	}
	body, sum := data[:len(data)-crcSize], binary.BigEndian.Uint32(data[len(data)-crcSize:])
	if got := crc32.Checksum(body, castagnoli()); got != sum {
		return nil, "", 0, fmt.Errorf("crc32c %08x, file says %08x (truncated or damaged): %w", got, sum, ErrChecksum)
	}

	var d pxdr.Decoder
	d.Reset(body[headerSize:])
	id, err := d.Opaque(maxBootID)
	if err != nil {
		return nil, "", 0, fmt.Errorf("decode boot_id: %w: %w", ErrCorrupt, err)
	}
	bootID = string(id)
	if v == version {
		hi, err1 := d.Uint32()
		lo, err2 := d.Uint32()
		if err := errors.Join(err1, err2); err != nil {
			return nil, "", 0, fmt.Errorf("decode seq: %w: %w", ErrCorrupt, err)
		}
		seq = uint64(hi)<<32 | uint64(lo)
	}
	n, err := d.Uint32()
	if err != nil {
		return nil, "", 0, fmt.Errorf("decode entry count: %w: %w", ErrCorrupt, err)
	}
	if n > MaxMappings {
		return nil, "", 0, fmt.Errorf("entry count %d, limit %d: %w", n, MaxMappings, ErrCorrupt)
	}
	if uint64(n)*minEntry > uint64(d.Len()) {
		return nil, "", 0, fmt.Errorf("entry count %d needs at least %d bytes, %d present: %w",
			n, uint64(n)*minEntry, d.Len(), ErrCorrupt)
	}
	entries := d.Rest()
	if ms, err = decodeEntries(entries, int(n)); err != nil {
		return nil, "", 0, err
	}
	return ms, bootID, seq, nil
}

// decodeEntries decodes the n entries that fill b. A warm start decodes
// its whole table before its first answer, so a row costs no allocation
// of its own: the decoder reads in place, netids and owners (a handful of
// distinct values in any table) are shared, and the addresses are copied
// into one string that each row's address is a slice of. Like the rows'
// memory in the registry, that string stays allocated while any of them
// is registered.
func decodeEntries(b []byte, n int) ([]pmap.Mapping, error) {
	ms := make([]pmap.Mapping, n)
	// Where each address is in b, until they are copied.
	type span struct{ off, len uint32 }
	addrs := make([]span, n)
	size := 0 // of all the addresses
	var shared sharedStrings
	var d pxdr.Decoder
	d.Reset(b)
	for i := range ms {
		m := &ms[i]
		var err error
		var netid, addr, owner []byte
		m.Prog, err = d.Uint32()
		if err == nil {
			m.Vers, err = d.Uint32()
		}
		if err == nil {
			netid, err = d.Opaque(MaxString)
		}
		at := d.Offset() + 4
		if err == nil {
			addr, err = d.Opaque(MaxString)
		}
		if err == nil {
			owner, err = d.Opaque(MaxString)
		}
		if err != nil {
			return nil, fmt.Errorf("decode entry %d: %w: %w", i, ErrCorrupt, err)
		}
		m.Netid, m.Owner = shared.get(netid), shared.get(owner)
		addrs[i] = span{uint32(at), uint32(len(addr))} // b is at most MaxFileSize
		size += len(addr)
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after entry %d: %w", d.Len(), n-1, ErrCorrupt)
	}
	var all strings.Builder
	all.Grow(size)
	for _, a := range addrs {
		all.Write(b[a.off : a.off+a.len])
	}
	joined, at := all.String(), 0
	for i, a := range addrs {
		ms[i].Addr = joined[at : at+int(a.len)]
		at += int(a.len)
	}
	return ms, nil
}

// sharedStrings hands out one string for each distinct value it has seen,
// up to a bound, so that a column of few values costs few allocations.
type sharedStrings map[string]string

// maxShared bounds a sharedStrings: a table of many distinct owners
// allocates a string a row beyond it rather than a map a row.
const maxShared = 64

func (s *sharedStrings) get(b []byte) string {
	if v, ok := (*s)[string(b)]; ok { // no allocation for the lookup
		return v
	}
	v := string(b)
	if *s == nil {
		*s = make(sharedStrings)
	}
	if len(*s) < maxShared {
		(*s)[v] = v
	}
	return v
}
