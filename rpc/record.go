package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// Record marking (RFC 5531, section 11): on a stream each message is sent
// as fragments, each behind a four-byte header whose top bit marks the last
// fragment and whose other 31 bits give its length.

const (
	lastFragment = 1 << 31
	// readChunk is the first step by which the buffer grows ahead of the
	// bytes that actually arrived; each later step is at most what has
	// arrived so far. A header claiming 2 GB allocates nothing until the
	// data comes, and a large record still takes few reads.
	readChunk = 4096
	// DefaultKeep is the largest buffer a RecordReader keeps between
	// records, so an idle connection does not pin the memory of one large
	// call.
	DefaultKeep = 64 << 10
)

// Errors from reading records.
var (
	ErrRecordTooLarge = errors.New("rpc: record exceeds maximum size")
	ErrTooManyFrags   = errors.New("rpc: record has too many fragments")
)

// RecordReader reassembles records from a stream under a total size cap.
type RecordReader struct {
	r   *bufio.Reader
	max int
	// MaxFragments bounds the fragments of one record, so that a peer
	// cannot keep the reader busy with empty fragments.
	MaxFragments int
	// Started, if set, is called when the first header of a record has
	// arrived and the rest of the record has not (a record read whole
	// from what is buffered cannot stall); servers use it to switch from
	// the idle to the read timeout.
	Started func()
	// Keep is the largest buffer kept for the next record (DefaultKeep):
	// a client that reads large replies in a loop keeps more.
	Keep int
	buf  []byte
	hdr  [4]byte
}

// NewRecordReader reads records of at most max bytes from r.
func NewRecordReader(r io.Reader, max int) *RecordReader {
	return &RecordReader{r: bufio.NewReaderSize(r, readChunk), max: max, MaxFragments: 1024, Keep: DefaultKeep}
}

// Buffered reports whether bytes of a further record are already buffered.
func (rr *RecordReader) Buffered() bool { return rr.r.Buffered() > 0 }

// Ready reports whether a whole single-fragment record is buffered, so
// that the next Next cannot block.
func (rr *RecordReader) Ready() bool {
	n := rr.r.Buffered()
	if n < 4 {
		return false
	}
	h, _ := rr.r.Peek(4)
	v := binary.BigEndian.Uint32(h)
	return v&lastFragment != 0 && int(v&^lastFragment) <= n-4
}

// Next returns the next record. It is valid until the following call. A
// stream that ends cleanly between records returns io.EOF; one that ends
// inside a record returns io.ErrUnexpectedEOF.
func (rr *RecordReader) Next() ([]byte, error) {
	if cap(rr.buf) > rr.Keep {
		rr.buf = nil
	}
	rr.buf = rr.buf[:0]
	for frag := 0; ; frag++ {
		if frag >= rr.MaxFragments {
			return nil, ErrTooManyFrags
		}
		if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
			if frag > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h := binary.BigEndian.Uint32(rr.hdr[:])
		n := int(h &^ lastFragment)
		if frag == 0 && rr.Started != nil && (h&lastFragment == 0 || rr.r.Buffered() < n) {
			rr.Started()
		}
		if n > rr.max-len(rr.buf) {
			return nil, ErrRecordTooLarge
		}
		for n > 0 {
			chunk := min(n, max(readChunk, len(rr.buf)))
			start := len(rr.buf)
			if cap(rr.buf)-start < chunk {
				// Exactly this much: append's growth would round
				// past what the arrivals justify.
				grown := make([]byte, start, start+chunk)
				copy(grown, rr.buf)
				rr.buf = grown
			}
			rr.buf = rr.buf[:start+chunk]
			if _, err := io.ReadFull(rr.r, rr.buf[start:]); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			n -= chunk
		}
		if h&lastFragment != 0 {
			return rr.buf, nil
		}
	}
}

// RecordHeaderLen is the room a stream reply reserves in front of the
// message for its record mark.
const RecordHeaderLen = 4

// MarkRecord fills the record mark reserved at the start of b, making b a
// single-fragment record of the message that follows it.
func MarkRecord(b []byte) []byte {
	binary.BigEndian.PutUint32(b, lastFragment|uint32(len(b)-RecordHeaderLen))
	return b
}

// WriteRecord writes msg as one record.
func WriteRecord(w io.Writer, msg []byte) error {
	b := make([]byte, RecordHeaderLen, RecordHeaderLen+len(msg))
	b = MarkRecord(append(b, msg...))
	_, err := w.Write(b)
	return err
}
