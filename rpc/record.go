package rpc

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"syscall"
)

// Record marking (RFC 5531, section 11): on a stream each message is sent
// as fragments, each behind a four-byte header whose top bit marks the last
// fragment and whose other 31 bits give its length.

const (
	lastFragment = 1 << 31
	// readChunk is the size of one read from the stream. A header claiming
	// 2 GB allocates nothing until the data comes: a record's buffer grows
	// only by the bytes that arrived (append's doubling of them at most).
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
	// ErrRecordEvicted: the bytes held for unfinished records across all
	// connections reached their cap, and this record was the oldest.
	ErrRecordEvicted = errors.New("rpc: unfinished record evicted")
)

// RecordReader reassembles records from a stream under a total size cap.
type RecordReader struct {
	r   io.Reader
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

	// ahead holds bytes read from the stream, ahead[off:end] not consumed
	// yet. On a server's connection it comes from a pool and goes back as
	// soon as it is consumed, so an idle or stalled connection holds no
	// read buffer at all.
	ahead    []byte
	off, end int
	raw      *rawSource
	// buf is the record being reassembled, when it does not lie whole in
	// ahead (several fragments, or more than one read).
	buf []byte
	hdr [4]byte
	// budget, if set, accounts for buf while its record is unfinished;
	// seen is the size last reported to it (this goroutine's own), held
	// and queued are the budget's (under its lock).
	budget *recordBudget
	seen   int
	held   int
	queued bool
	// evict closes the connection when budget evicts this record.
	evict func()
}

// NewRecordReader reads records of at most max bytes from r.
func NewRecordReader(r io.Reader, max int) *RecordReader {
	return &RecordReader{r: r, max: max, MaxFragments: 1024, Keep: DefaultKeep}
}

// Buffered reports whether bytes of a further record are already buffered.
func (rr *RecordReader) Buffered() bool { return rr.end > rr.off }

// Ready reports whether a whole single-fragment record is buffered, so
// that the next Next cannot block.
func (rr *RecordReader) Ready() bool {
	n := rr.end - rr.off
	if n < 4 {
		return false
	}
	v := binary.BigEndian.Uint32(rr.ahead[rr.off:])
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
	rec, err := rr.next()
	rr.finished()
	return rec, err
}

func (rr *RecordReader) next() ([]byte, error) {
	for frag := 0; ; frag++ {
		if frag >= rr.MaxFragments {
			return nil, ErrTooManyFrags
		}
		if err := rr.header(frag); err != nil {
			return nil, err
		}
		h := binary.BigEndian.Uint32(rr.hdr[:])
		n := int(h &^ lastFragment)
		last := h&lastFragment != 0
		if frag == 0 && rr.Started != nil && (!last || rr.end-rr.off < n) {
			rr.Started()
		}
		if n > rr.max-len(rr.buf) {
			return nil, ErrRecordTooLarge
		}
		if frag == 0 && last && rr.end-rr.off >= n {
			// The whole record is in the buffer: no copy.
			rec := rr.ahead[rr.off : rr.off+n : rr.off+n]
			rr.off += n
			return rec, nil
		}
		for n > 0 {
			if rr.off == rr.end {
				if err := rr.fill(); err != nil {
					if errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					return nil, err
				}
			}
			k := min(n, rr.end-rr.off)
			rr.buf = append(rr.buf, rr.ahead[rr.off:rr.off+k]...)
			rr.off += k
			n -= k
			if !rr.account() {
				return nil, ErrRecordEvicted
			}
		}
		if last {
			return rr.buf, nil
		}
	}
}

// header reads a fragment header, which may arrive split over reads.
func (rr *RecordReader) header(frag int) error {
	for got := 0; got < len(rr.hdr); {
		if rr.off == rr.end {
			if err := rr.fill(); err != nil {
				if errors.Is(err, io.EOF) && (frag > 0 || got > 0) {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := copy(rr.hdr[got:], rr.ahead[rr.off:rr.end])
		rr.off += k
		got += k
	}
	return nil
}

// fill reads more of the stream once ahead is consumed.
func (rr *RecordReader) fill() error {
	if rr.raw != nil {
		rr.releaseAhead()
		b, n, err := rr.raw.read()
		if err != nil {
			return err
		}
		rr.ahead, rr.off, rr.end = b, 0, n
		return nil
	}
	if rr.ahead == nil {
		rr.ahead = make([]byte, readChunk)
	}
	for {
		n, err := rr.r.Read(rr.ahead)
		if n > 0 {
			rr.off, rr.end = 0, n
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// releaseAhead gives a consumed pooled buffer back.
func (rr *RecordReader) releaseAhead() {
	if rr.raw != nil && rr.ahead != nil && rr.off == rr.end {
		aheadPool.Put((*[readChunk]byte)(rr.ahead[:readChunk]))
		rr.ahead, rr.off, rr.end = nil, 0, 0
	}
}

// account counts the growth of an unfinished record against the budget,
// reporting false when the record was evicted to make room.
func (rr *RecordReader) account() bool {
	if rr.budget == nil || cap(rr.buf) == rr.seen {
		return true
	}
	rr.seen = cap(rr.buf)
	return rr.budget.grow(rr, rr.seen)
}

// finished ends the record's accounting. (A consumed read buffer goes
// back to the pool before the next wait for bytes: the record returned
// may lie in it.)
func (rr *RecordReader) finished() {
	if rr.budget != nil && rr.seen > 0 {
		rr.seen = 0
		rr.budget.done(rr)
	}
}

// Close releases what the reader holds; it must not be used afterwards.
func (rr *RecordReader) Close() {
	rr.finished()
	if rr.raw != nil && rr.ahead != nil {
		rr.off = rr.end
		rr.releaseAhead()
	}
	rr.buf = nil
}

// aheadPool holds the read buffers of server connections, each used only
// while bytes that arrived wait in it.
var aheadPool = sync.Pool{New: func() any { return new([readChunk]byte) }}

// rawSource reads a connection through its RawConn, so that a wait for
// bytes needs no buffer: one is taken from the pool only once the kernel
// has bytes to give. Its function is made once, so a read allocates
// nothing.
type rawSource struct {
	rc     syscall.RawConn
	buf    *[readChunk]byte
	n      int
	err    error
	readFn func(fd uintptr) bool
}

func newRawSource(rc syscall.RawConn) *rawSource {
	s := &rawSource{rc: rc}
	s.readFn = func(fd uintptr) bool {
		b := aheadPool.Get().(*[readChunk]byte)
		for {
			s.n, s.err = syscall.Read(int(fd), b[:])
			if !errors.Is(s.err, syscall.EINTR) {
				break
			}
		}
		if errors.Is(s.err, syscall.EAGAIN) {
			aheadPool.Put(b)
			return false
		}
		s.buf = b
		return true
	}
	return s
}

// read waits for bytes and returns a pooled buffer holding n of them.
func (s *rawSource) read() ([]byte, int, error) {
	if err := s.rc.Read(s.readFn); err != nil {
		return nil, 0, err
	}
	b, n, err := s.buf, s.n, s.err
	s.buf = nil
	if err == nil && n == 0 {
		err = io.EOF
	}
	if err != nil {
		aheadPool.Put(b)
		return nil, 0, err
	}
	return b[:], n, nil
}

// recordBudget caps the bytes held for unfinished records across all the
// connections of a server. When a record's growth would pass the cap, the
// record that started longest ago is evicted (its connection closed) until
// the rest fit: a crowd of slow or hostile senders cannot hold more than
// the cap, and a sender that finishes its records promptly is never the
// oldest for long.
type recordBudget struct {
	max int

	mu      sync.Mutex
	used    int
	order   []*RecordReader // unfinished records, oldest first
	evicted uint64
	onEvict func()
}

// grow sets the bytes of rr's unfinished record to size, evicting the
// oldest records while the total is over the cap. It reports false when
// rr itself was evicted.
func (b *recordBudget) grow(rr *RecordReader, size int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !rr.queued {
		rr.queued = true
		b.order = append(b.order, rr)
	}
	b.used += size - rr.held
	rr.held = size
	self := true
	for b.used > b.max && len(b.order) > 0 {
		victim := b.order[0]
		b.order[0] = nil
		b.order = b.order[1:]
		b.used -= victim.held
		victim.held, victim.queued = 0, false
		b.evicted++
		if b.onEvict != nil {
			b.onEvict()
		}
		if victim == rr {
			self = false
			continue
		}
		if victim.evict != nil {
			victim.evict()
		}
	}
	if len(b.order) == 0 {
		b.order = nil // let the array go
	}
	return self
}

// done ends rr's unfinished record, if it was counted.
func (b *recordBudget) done(rr *RecordReader) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !rr.queued {
		rr.held = 0
		return
	}
	for i, o := range b.order {
		if o == rr {
			b.order = append(b.order[:i], b.order[i+1:]...)
			break
		}
	}
	b.used -= rr.held
	rr.held, rr.queued = 0, false
}

// RecordHeaderLen is the room a stream reply reserves in front of the
// message for its record mark.
const RecordHeaderLen = 4

// MarkRecord fills the record mark reserved at the start of b, making b a
// single-fragment record of the message that follows it.
func MarkRecord(b []byte) []byte { return markRecord(b, nil) }

// markRecord fills the record mark of b, whose first bytes are reserved
// for it, for one record of one fragment: the rest of b, then tail, which
// is written after it without being copied.
func markRecord(b, tail []byte) []byte {
	binary.BigEndian.PutUint32(b, lastFragment|uint32(len(b)-RecordHeaderLen+len(tail)))
	return b
}

// WriteRecord writes msg as one record.
func WriteRecord(w io.Writer, msg []byte) error {
	b := make([]byte, RecordHeaderLen, RecordHeaderLen+len(msg))
	b = MarkRecord(append(b, msg...))
	_, err := w.Write(b)
	return err
}
