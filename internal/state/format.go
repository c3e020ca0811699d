package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"sync"

	xdr "github.com/davecgh/go-xdr/xdr2"

	"github.com/portmapd/portmapd/pmap"
	pxdr "github.com/portmapd/portmapd/xdr"
)

// The state file format, version 1, in RFC 4506 XDR language:
//
//	const PMAPD_MAGIC   = "portmapd";   /* 8 bytes, no terminator */
//	const PMAPD_VERSION = 1;
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
	version    = 1
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
)

// xdrEntry and xdrState mirror the XDR definitions above field by field:
// go-xdr encodes exported fields in declaration order.
type xdrEntry struct {
	Prog  uint32
	Vers  uint32
	Netid string
	Addr  string
	Owner string
}

type xdrState struct {
	Magic   [8]byte
	Version uint32
	BootID  string
	Entries []xdrEntry
}

// encodeState renders a table in the current format. It refuses what the
// decoder would refuse, so a saved file never fails to load for its size.
func encodeState(ms []pmap.Mapping, bootID string) ([]byte, error) {
	if len(ms) > MaxMappings {
		return nil, fmt.Errorf("%d mappings, limit %d: %w", len(ms), MaxMappings, ErrTooLarge)
	}
	if len(bootID) > maxBootID {
		return nil, fmt.Errorf("boot id of %d bytes: %w", len(bootID), ErrTooLarge)
	}
	st := xdrState{Version: version, BootID: bootID, Entries: make([]xdrEntry, len(ms))}
	copy(st.Magic[:], magic)
	for i, m := range ms {
		for _, s := range [...]string{m.Netid, m.Addr, m.Owner} {
			if len(s) > MaxString {
				return nil, fmt.Errorf("mapping %d/%d/%.20q: string of %d bytes, limit %d: %w",
					m.Prog, m.Vers, m.Netid, len(s), MaxString, ErrTooLarge)
			}
		}
		st.Entries[i] = xdrEntry(m)
	}
	var buf bytes.Buffer
	buf.Grow(headerSize + 4 + len(bootID) + 4 + len(ms)*64 + crcSize)
	if _, err := xdr.Marshal(&buf, &st); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	if buf.Len()+crcSize > MaxFileSize {
		return nil, fmt.Errorf("state of %d bytes, limit %d: %w", buf.Len()+crcSize, MaxFileSize, ErrTooLarge)
	}
	return binary.BigEndian.AppendUint32(buf.Bytes(), crc32.Checksum(buf.Bytes(), castagnoli())), nil
}

// decodeEntry reads one pmapd_entry field by field. go-xdr's Decode would
// do the same through reflection, at several times the cost, which a warm
// start of 10,000 entries pays before its first answer.
func decodeEntry(d *xdr.Decoder, m *pmap.Mapping) (err error) {
	if m.Prog, _, err = d.DecodeUint(); err != nil {
		return err
	}
	if m.Vers, _, err = d.DecodeUint(); err != nil {
		return err
	}
	for _, s := range [...]*string{&m.Netid, &m.Addr, &m.Owner} {
		if *s, _, err = d.DecodeString(); err != nil {
			return err
		}
	}
	return nil
}

// decodeState parses a whole state file. The bytes may be hostile: the
// checksum and the fixed header are checked before any length is believed,
// every count is checked against the bytes present, and strings are read by
// go-xdr's limited decoder so that no length prefix can make it allocate
// more than MaxString.
func decodeState(data []byte) (ms []pmap.Mapping, bootID string, err error) {
	if len(data) > MaxFileSize {
		return nil, "", fmt.Errorf("%d bytes, limit %d: %w", len(data), MaxFileSize, ErrTooLarge)
	}
	if len(data) < headerSize {
		return nil, "", fmt.Errorf("%d bytes, header needs %d: %w", len(data), headerSize, ErrTruncated)
	}
	// Refuse strangers and future versions first: their checksum, if any,
	// is not ours, and "not a state file" is a better log line than
	// "checksum mismatch".
	if string(data[:8]) != magic {
		return nil, "", fmt.Errorf("magic %q: %w", data[:8], ErrMagic)
	}
	if v := binary.BigEndian.Uint32(data[8:12]); v != version {
		return nil, "", fmt.Errorf("version %d, want %d: %w", v, version, ErrVersion)
	}
	if len(data) < headerSize+4+4+crcSize {
		return nil, "", fmt.Errorf("%d bytes: %w", len(data), ErrTruncated)
	}
	body, sum := data[:len(data)-crcSize], binary.BigEndian.Uint32(data[len(data)-crcSize:])
	if got := crc32.Checksum(body, castagnoli()); got != sum {
		return nil, "", fmt.Errorf("crc32c %08x, file says %08x (truncated or damaged): %w", got, sum, ErrChecksum)
	}

	r := bytes.NewReader(body[headerSize:])
	d := xdr.NewDecoderLimited(r, MaxString)
	if bootID, _, err = d.DecodeString(); err != nil {
		return nil, "", fmt.Errorf("decode boot_id: %w: %w", ErrCorrupt, err)
	}
	if len(bootID) > maxBootID {
		return nil, "", fmt.Errorf("boot_id of %d bytes: %w", len(bootID), ErrCorrupt)
	}
	n, _, err := d.DecodeUint()
	if err != nil {
		return nil, "", fmt.Errorf("decode entry count: %w: %w", ErrCorrupt, err)
	}
	if n > MaxMappings {
		return nil, "", fmt.Errorf("entry count %d, limit %d: %w", n, MaxMappings, ErrCorrupt)
	}
	if uint64(n)*minEntry > uint64(r.Len()) {
		return nil, "", fmt.Errorf("entry count %d needs at least %d bytes, %d present: %w",
			n, uint64(n)*minEntry, r.Len(), ErrCorrupt)
	}
	entries := body[len(body)-r.Len():]
	if ms, err = decodeEntries(entries, int(n)); err != nil {
		return nil, "", err
	}
	return ms, bootID, nil
}

// run is a stretch of consecutive entries: the index of its first and
// where that entry starts in the encoded list.
type run struct{ first, off int }

// decodeEntries decodes the list of n entries that fills entries. A long
// list is cut into one run per processor, decoded side by side: a warm
// start decodes its table before it answers anything.
func decodeEntries(entries []byte, n int) ([]pmap.Mapping, error) {
	ms := make([]pmap.Mapping, n)
	runs := splitEntries(entries, n, runtime.GOMAXPROCS(0))
	if len(runs) == 2 {
		return ms, decodeRun(entries, ms, 0)
	}
	errs := make([]error, len(runs)-1)
	var wg sync.WaitGroup
	for k := range len(runs) - 1 {
		from, to := runs[k], runs[k+1]
		wg.Go(func() { errs[k] = decodeRun(entries[from.off:to.off], ms[from.first:to.first], from.first) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// decodeRun decodes ms from b with go-xdr's limited decoder; first is the
// index of ms[0] in the file, for errors.
func decodeRun(b []byte, ms []pmap.Mapping, first int) error {
	r := bytes.NewReader(b)
	d := xdr.NewDecoderLimited(r, MaxString)
	for i := range ms {
		if err := decodeEntry(d, &ms[i]); err != nil {
			return fmt.Errorf("decode entry %d: %w: %w", first+i, ErrCorrupt, err)
		}
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d bytes after entry %d: %w", r.Len(), first+len(ms)-1, ErrCorrupt)
	}
	return nil
}

// minRun is the fewest entries worth a goroutine of their own.
const minRun = 2000

// splitEntries finds where runs of about n/parts entries begin, by
// walking the lengths without decoding anything. It returns the runs'
// starts followed by the end of the list; a list that is short, or whose
// lengths do not add up (decodeRun then says where), is one run.
func splitEntries(entries []byte, n, parts int) []run {
	whole := []run{{0, 0}, {n, len(entries)}}
	parts = min(parts, n/minRun)
	if parts < 2 {
		return whole
	}
	runs := make([]run, 0, parts+1)
	var d pxdr.Decoder
	d.Reset(entries)
	for i := range n {
		if i == len(runs)*n/parts {
			runs = append(runs, run{i, d.Offset()})
		}
		d.Uint32() // prog
		d.Uint32() // vers
		for range 3 {
			if _, err := d.Opaque(MaxString); err != nil {
				return whole
			}
		}
	}
	return append(runs, run{n, len(entries)})
}
