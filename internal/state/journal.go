package state

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/portmapd/portmapd/pmap"
	pxdr "github.com/portmapd/portmapd/xdr"
)

// The journal file format, version 1, in RFC 4506 XDR language. The
// journal holds the changes made since the snapshot (portmapd.xdr) whose
// seq is its base; a SET or UNSET appends one record per row it changed,
// so that its cost does not grow with the table:
//
//	const PMAPD_JOURNAL_MAGIC = "pmapdjnl";
//
//	struct pmapd_journal_header {
//		opaque         magic[8];     /* PMAPD_JOURNAL_MAGIC */
//		unsigned int   version;      /* 1 */
//		string         boot_id<64>;
//		unsigned hyper base;         /* seq of the snapshot it follows */
//		unsigned int   crc;          /* CRC-32C of the bytes before it */
//	};
//
//	enum pmapd_op { PMAPD_SET = 1, PMAPD_UNSET = 2 };
//
//	struct pmapd_record {
//		unsigned int   length;       /* of seq, op and entry */
//		unsigned hyper seq;          /* the previous record's plus one */
//		pmapd_op       op;
//		pmapd_entry    entry;
//		unsigned int   crc;          /* CRC-32C of length, seq, op, entry */
//	};
//
//	/* the file: a header, then records until the end of the file */
//
// A record is appended whole and fsynced before the change it carries is
// acknowledged. A crash can tear only the last record; a reader stops at
// the first record that is short, fails its checksum or breaks the
// sequence, and the writer cuts the file there before appending again. A
// record carries its row, UNSET included, so that replaying it needs no
// other state than the table it applies to.

const (
	journalMagic   = "pmapdjnl"
	journalVersion = 1
	opSet          = 1
	opUnset        = 2
	// maxRecordBody bounds a record's length field, so that a damaged
	// length never makes the reader skip ahead blindly.
	maxRecordBody = 8 + 4 + 8 + 3*(4+MaxString)
)

// JournalName is the journal inside a Store's directory.
const JournalName = "portmapd.journal"

// encodeJournalHeader renders the header of a journal that follows the
// snapshot of seq base.
func encodeJournalHeader(bootID string, base uint64) []byte {
	b := make([]byte, 0, 8+4+xdrLen(bootID)+8+crcSize)
	b = append(b, journalMagic...)
	b = pxdr.AppendUint32(b, journalVersion)
	b = pxdr.AppendString(b, bootID)
	b = binary.BigEndian.AppendUint64(b, base)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli()))
}

// appendRecord appends the record of change c, numbered seq. A mapping too
// large for the format is the registry's bug (it stores far less than
// MaxString), so it is cut rather than refused: the record must exist.
func appendRecord(b []byte, seq uint64, c pmap.Change) []byte {
	m := c.Mapping
	m.Netid, m.Addr, m.Owner = clip(m.Netid), clip(m.Addr), clip(m.Owner)
	op := uint32(opSet)
	if c.Removed {
		op = opUnset
	}
	start := len(b)
	b = pxdr.AppendUint32(b, 0) // length, filled in below
	b = binary.BigEndian.AppendUint64(b, seq)
	b = pxdr.AppendUint32(b, op)
	b = appendEntry(b, m)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli()))
}

func clip(s string) string {
	if len(s) > MaxString {
		return s[:MaxString]
	}
	return s
}

// journal is what a reader found in a journal file.
type journal struct {
	bootID string
	base   uint64
	recs   []record
	// valid is how many bytes of the file are good: the header and the
	// records up to the first bad one.
	valid int
	// tail says why reading stopped before the end of the file, or "".
	tail string
}

type record struct {
	seq uint64
	op  uint32
	m   pmap.Mapping
}

// decodeJournal parses a journal file. A bad header refuses the whole file
// (the error wraps a sentinel, as decodeState's do); a bad record ends the
// journal there, without an error: it is the torn tail a crash leaves, and
// everything before it was acknowledged.
func decodeJournal(data []byte) (*journal, error) {
	if len(data) < headerSize {
		return nil, fmt.Errorf("%d bytes, header needs %d: %w", len(data), headerSize, ErrTruncated)
	}
	if string(data[:8]) != journalMagic {
		return nil, fmt.Errorf("magic %q: %w", data[:8], ErrMagic)
	}
	if v := binary.BigEndian.Uint32(data[8:12]); v != journalVersion {
		return nil, fmt.Errorf("version %d, want %d: %w", v, journalVersion, ErrVersion)
	}
	var d pxdr.Decoder
	d.Reset(data[headerSize:])
	id, err := d.Opaque(maxBootID)
	if err != nil {
		return nil, fmt.Errorf("decode boot_id: %w: %w", ErrTruncated, err)
	}
	end := headerSize + d.Offset() + 8 + crcSize
	if len(data) < end {
		return nil, fmt.Errorf("%d bytes, header needs %d: %w", len(data), end, ErrTruncated)
	}
	if got, sum := crc32.Checksum(data[:end-crcSize], castagnoli()), binary.BigEndian.Uint32(data[end-crcSize:]); got != sum {
		return nil, fmt.Errorf("header crc32c %08x, file says %08x: %w", got, sum, ErrChecksum)
	}
	j := &journal{bootID: string(id), base: binary.BigEndian.Uint64(data[end-crcSize-8:]), valid: end}
	var shared sharedStrings
	next := j.base + 1
	for b := data[end:]; len(b) > 0; {
		r, n, why := decodeRecord(b, &shared)
		if why == "" && r.seq != next {
			why = fmt.Sprintf("record %d where %d was due", r.seq, next)
		}
		if why != "" {
			j.tail = fmt.Sprintf("%s at byte %d; %d bytes after it ignored", why, j.valid, len(b))
			break
		}
		j.recs = append(j.recs, r)
		j.valid += n
		b = b[n:]
		next++
	}
	return j, nil
}

// decodeRecord decodes the record at the start of b and its size, or says
// why there is none.
func decodeRecord(b []byte, shared *sharedStrings) (r record, n int, why string) {
	if len(b) < 4 {
		return r, 0, "torn record length"
	}
	body := int(binary.BigEndian.Uint32(b))
	if body < 8+4+minEntry || body > maxRecordBody {
		return r, 0, fmt.Sprintf("record length %d out of range", body)
	}
	n = 4 + body + crcSize
	if len(b) < n {
		return r, 0, fmt.Sprintf("torn record (%d of %d bytes)", len(b), n)
	}
	if got, sum := crc32.Checksum(b[:4+body], castagnoli()), binary.BigEndian.Uint32(b[4+body:]); got != sum {
		return r, 0, fmt.Sprintf("record crc32c %08x, file says %08x", got, sum)
	}
	r.seq = binary.BigEndian.Uint64(b[4:])
	r.op = binary.BigEndian.Uint32(b[12:])
	if r.op != opSet && r.op != opUnset {
		return r, 0, fmt.Sprintf("record op %d", r.op)
	}
	var d pxdr.Decoder
	d.Reset(b[16 : 4+body])
	var err error
	var netid, addr, owner []byte
	r.m.Prog, err = d.Uint32()
	if err == nil {
		r.m.Vers, err = d.Uint32()
	}
	if err == nil {
		netid, err = d.Opaque(MaxString)
	}
	if err == nil {
		addr, err = d.Opaque(MaxString)
	}
	if err == nil {
		owner, err = d.Opaque(MaxString)
	}
	if err != nil || d.Len() != 0 {
		return r, 0, "record entry does not fill its length"
	}
	r.m.Netid, r.m.Addr, r.m.Owner = shared.get(netid), string(addr), shared.get(owner)
	return r, n, ""
}

// replay applies the records after seq from to ms, as the registry applied
// them: a SET adds its row unless the key (prog, vers, netid, netids
// compared without case) is taken, an UNSET removes the key's row. Order
// is kept: rows stay where they were and new ones go last, as in DUMP.
// It returns the table and the seq of the last record applied.
func replay(ms []pmap.Mapping, recs []record, from uint64) ([]pmap.Mapping, uint64) {
	type key struct {
		prog, vers uint32
		netid      string
	}
	keyOf := func(m pmap.Mapping) key { return key{m.Prog, m.Vers, strings.ToLower(m.Netid)} }
	last := from
	start := 0
	for start < len(recs) && recs[start].seq <= from {
		start++
	}
	if start == len(recs) {
		return ms, last
	}
	// Only the keys the records touch are looked up in the table: a
	// warm start then hashes each row once, into a map as small as the
	// journal, instead of indexing the whole table.
	at := make(map[key]int, len(recs)-start)
	for _, r := range recs[start:] {
		at[keyOf(r.m)] = -1
	}
	for i, m := range ms {
		if j, ok := at[keyOf(m)]; ok && j < 0 {
			at[keyOf(m)] = i
		}
	}
	for k, i := range at {
		if i < 0 {
			delete(at, k)
		}
	}
	gone := make(map[int]bool)
	for _, r := range recs[start:] {
		k := keyOf(r.m)
		i, ok := at[k]
		switch {
		case r.op == opSet && !ok:
			at[k] = len(ms)
			ms = append(ms, r.m)
		case r.op == opUnset && ok:
			delete(at, k)
			gone[i] = true
		}
		last = r.seq
	}
	if len(gone) > 0 {
		kept := ms[:0]
		for i, m := range ms {
			if !gone[i] {
				kept = append(kept, m)
			}
		}
		ms = kept
	}
	return ms, last
}
