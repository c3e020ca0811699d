package state

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
)

// Table is the registry a Writer keeps durable: *pmap.Registry.
type Table interface {
	// Track hands every change to the writer, in order (pmap.Journal).
	Track(pmap.Journal)
	// Snapshot copies the table and its generation under one lock.
	Snapshot() ([]pmap.Mapping, uint64)
	// Settle says the changes up to a generation are durable.
	Settle(gen uint64)
	// Revert takes back the changes after a generation.
	Revert(after uint64) (newest, now uint64)
	// Generation is the table's current generation.
	Generation() uint64
}

// Writer makes a Table's changes durable before they are acknowledged: a
// group commit over the Store's journal. The table hands it each change
// as it happens (Record, under the table's lock, so in order); one
// goroutine appends every change waiting at that moment to the journal
// and fsyncs once, so that the callers arriving during one fsync share
// the next. Nothing is delayed on purpose: a lone change is written at
// once. An append costs the same whatever the table's size; once the
// journal outgrows the snapshot, a new snapshot is written beside the
// appends and the journal restarts after it.
//
// When a write fails (ENOSPC, EIO, EROFS, a vanished directory) every
// change not yet durable is taken back (Table.Revert), so that the table
// is again what the disk holds, and their callers' Waits fail: a change
// is applied and durable, or neither. The next change then saves the
// whole table, which brings durability back once the disk allows it.
type Writer struct {
	st  *Store
	tab Table
	log *zap.Logger

	kick      chan struct{} // capacity 1: "changes are waiting"
	quit      chan struct{}
	done      chan struct{}
	compacted chan compactResult
	stop      sync.Once

	mu       sync.Mutex
	seq      uint64    // the last seq given to a record
	taken    uint64    // the seq of the last record written or dropped
	pend     []byte    // records not yet written, encoded
	pendMeta []pendRec // one per record in pend
	visible  int       // pendMeta[:visible] are whole operations
	durable  uint64    // the table at this generation is what the disk holds
	failed   []failure // recent reverts, newest last
	reverts  uint64
	flushed  chan struct{} // closed, and replaced, after every attempt
	closed   bool
	closeErr error

	// The writer goroutine's own: the compaction in flight, if any, and
	// the records appended since it started.
	comp      *compaction
	running   bool // a compaction goroutine has not reported yet
	since     []byte
	sinceMeta []pendRec
	retryAt   int64 // journal size below which a failed compaction is not retried

	lastLog    time.Time // of the last failure logged
	suppressed int       // failures since, not logged

	saves    atomic.Uint64 // whole saves (snapshot and new journal)
	appends  atomic.Uint64 // journal appends, each one fsync
	failures atomic.Uint64 // writes that failed, each answered with reverts
}

type pendRec struct {
	gen, seq uint64
	end      int // offset just after the record in its buffer
}

type failure struct {
	from, to uint64 // generations (from, to] were taken back
	err      error
}

type compaction struct {
	gen, seq uint64
	reverts  uint64
	done     bool // written; waiting for its records to be durable
	size     int64
}

type compactResult struct {
	comp *compaction
	size int64
	err  error
}

const (
	// keepFailures bounds the reverts remembered for late waiters.
	keepFailures = 256
	// minCompact is the least journal size that is compacted: a small
	// table is not rewritten on every few changes.
	minCompact = 64 << 10
	// failureLogEvery limits failure log lines, so that a full disk under
	// a stream of SETs cannot flood the log.
	failureLogEvery = 10 * time.Second
)

// NewWriter starts tracking tab's changes and the goroutine that writes
// them to s. The table's content at this point is taken to be what s
// holds (as after a warm start that just read it, the daemon's own rows
// aside).
func NewWriter(s *Store, tab Table, log *zap.Logger) *Writer {
	if log == nil {
		log = zap.NewNop()
	}
	w := &Writer{
		st:        s,
		tab:       tab,
		log:       log.Named("state"),
		kick:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		compacted: make(chan compactResult, 1),
		flushed:   make(chan struct{}),
	}
	s.mu.Lock()
	w.seq, w.taken = s.seq, s.seq
	s.mu.Unlock()
	tab.Track(w)
	w.durable = tab.Generation()
	go w.run()
	return w
}

// Record takes one change from the table, under the table's lock: it only
// encodes it into the pending buffer.
func (w *Writer) Record(c pmap.Change, last bool) {
	w.mu.Lock()
	w.seq++
	w.pend = appendRecord(w.pend, w.seq, c)
	w.pendMeta = append(w.pendMeta, pendRec{gen: c.Gen, seq: w.seq, end: len(w.pend)})
	if last {
		w.visible = len(w.pendMeta)
	}
	w.mu.Unlock()
}

// Wait returns nil once the change that brought the table to generation
// gen is durable. Call it after the change and before answering the
// client. It returns an error when the change could not be written and
// was taken back, ctx's error when ctx ends first, and ErrClosed after
// Close when gen never became durable.
func (w *Writer) Wait(ctx context.Context, gen uint64) error {
	kicked := false
	for {
		w.mu.Lock()
		if err := w.failedLocked(gen); err != nil {
			w.mu.Unlock()
			return err
		}
		if gen <= w.durable {
			w.mu.Unlock()
			return nil
		}
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		flushed := w.flushed
		w.mu.Unlock()
		if !kicked {
			kicked = true
			select {
			case w.kick <- struct{}{}:
			default: // a kick is pending; its flush comes after this change
			}
		}
		select {
		case <-flushed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *Writer) failedLocked(gen uint64) error {
	for i := len(w.failed) - 1; i >= 0; i-- {
		if f := w.failed[i]; gen > f.from && gen <= f.to {
			return f.err
		}
	}
	return nil
}

// Close writes the changes nobody waited for yet, then stops the writer.
// It returns that last write's error. Later Waits for newer generations
// fail with ErrClosed. Close is idempotent.
func (w *Writer) Close() error {
	w.stop.Do(func() { close(w.quit) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closeErr
}

// Failures counts the writes that failed, each followed by a revert: the
// daemon's metric.
func (w *Writer) Failures() uint64 { return w.failures.Load() }

func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
			w.flush()
		case r := <-w.compacted:
			w.compactionWritten(r)
		case <-w.quit:
			if w.running {
				<-w.compacted // the goroutine must not outlive the writer
				w.running = false
			}
			w.comp = nil
			w.st.dropCompaction()
			err := w.flush()
			w.st.Close()
			w.mu.Lock()
			w.closed = true
			w.closeErr = err
			w.broadcastLocked()
			w.mu.Unlock()
			return
		}
	}
}

// broadcastLocked wakes every waiter to look at the outcome of an attempt.
func (w *Writer) broadcastLocked() {
	close(w.flushed)
	w.flushed = make(chan struct{})
}

// flush writes every whole operation waiting: appended to the journal in
// one write and one fsync, or, when the journal cannot take appends, as a
// whole save. A failure takes them back.
func (w *Writer) flush() error {
	w.mu.Lock()
	n := w.visible
	if n == 0 {
		w.broadcastLocked()
		w.mu.Unlock()
		return nil
	}
	last := w.pendMeta[n-1]
	// Record only ever appends to pend: this prefix stays as it is.
	recs := w.pend[:last.end:last.end]
	w.mu.Unlock()

	var err error
	// A journal that compactions failed to keep small is replaced by a
	// whole save long before a reader would refuse it as too large.
	if jsize, _ := w.st.sizes(); jsize+int64(len(recs)) > MaxFileSize/2 {
		err = w.saveWhole()
	} else if w.st.appendable() {
		if err = w.st.appendRecords(recs, last.seq); err == nil {
			w.appends.Add(1)
			if w.comp != nil {
				w.keepSince(recs, n)
			}
			w.settle(n, last.gen)
		} else if errors.Is(err, ErrRemoved) {
			// The journal was removed or mounted over, not refused by
			// the disk: the directory may well take a whole save.
			w.log.Warn("the journal is no longer in the state directory; saving the whole table", zap.Error(err))
			err = w.saveWhole()
		}
	} else {
		err = w.saveWhole()
	}
	if err != nil {
		w.revert(err)
		return err
	}
	if w.comp != nil && w.comp.done {
		w.install()
	}
	w.compact()
	return nil
}

// keepSince keeps a copy of the first n pending records, just appended,
// for the journal that will follow the compaction in flight.
func (w *Writer) keepSince(recs []byte, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	base := len(w.since)
	w.since = append(w.since, recs...)
	for _, r := range w.pendMeta[:n] {
		w.sinceMeta = append(w.sinceMeta, pendRec{gen: r.gen, seq: r.seq, end: base + r.end})
	}
}

// settle drops the first n pending records, now durable up to generation
// gen, and tells the waiters and the table.
func (w *Writer) settle(n int, gen uint64) {
	w.mu.Lock()
	w.dropLocked(n)
	w.durable = max(w.durable, gen)
	w.broadcastLocked()
	w.mu.Unlock()
	w.tab.Settle(gen) // outside w.mu: the table calls Record under its lock
}

// dropLocked removes the first n pending records, written or not.
func (w *Writer) dropLocked(n int) {
	if n == 0 {
		return
	}
	cut := w.pendMeta[n-1].end
	w.taken = max(w.taken, w.pendMeta[n-1].seq)
	w.pend = append(w.pend[:0], w.pend[cut:]...)
	k := copy(w.pendMeta, w.pendMeta[n:])
	w.pendMeta = w.pendMeta[:k]
	for i := range w.pendMeta {
		w.pendMeta[i].end -= cut
	}
	w.visible -= n
}

// saveWhole writes the whole table as a new snapshot with an empty
// journal: the first write, and the first after a failure.
func (w *Writer) saveWhole() error {
	w.dropCompaction()
	ms, gen := w.tab.Snapshot()
	w.mu.Lock()
	n, seq := w.upToLocked(gen)
	w.mu.Unlock()
	if err := w.st.save(ms, seq); err != nil {
		return err
	}
	w.saves.Add(1)
	w.settle(n, gen)
	return nil
}

// upToLocked counts the pending records a snapshot of generation gen holds,
// and the seq that snapshot is at.
func (w *Writer) upToLocked(gen uint64) (n int, seq uint64) {
	seq = w.taken
	for n < len(w.pendMeta) && w.pendMeta[n].gen <= gen {
		seq = w.pendMeta[n].seq
		n++
	}
	return n, seq
}

// revert takes back every change not yet durable, after a failed write.
func (w *Writer) revert(err error) {
	w.dropCompaction()
	w.mu.Lock()
	durable := w.durable
	w.mu.Unlock()
	newest, now := w.tab.Revert(durable)
	w.mu.Lock()
	// Every record Recorded before the Revert is taken back; later ones
	// have later generations.
	n := 0
	for n < len(w.pendMeta) && w.pendMeta[n].gen <= now {
		n++
	}
	w.visible = max(w.visible, n)
	w.dropLocked(n)
	if newest > durable {
		w.failed = append(w.failed, failure{from: durable, to: newest, err: err})
		if len(w.failed) > keepFailures {
			w.failed = append(w.failed[:0], w.failed[len(w.failed)-keepFailures:]...)
		}
	}
	w.durable = max(w.durable, now) // the table at now is the disk's again
	w.reverts++
	w.failures.Add(1)
	w.broadcastLocked()
	w.mu.Unlock()
	w.logFailure(err, newest-durable)
}

// logFailure logs a failed write, at most once every failureLogEvery,
// counting the ones it did not log.
func (w *Writer) logFailure(err error, changes uint64) {
	now := time.Now()
	if now.Sub(w.lastLog) < failureLogEvery {
		w.suppressed++
		return
	}
	w.log.Error("cannot make registrations durable; the changes were taken back and their callers answered SYSTEM_ERR",
		zap.String("dir", w.st.dir), zap.Uint64("changes", changes), zap.Error(err),
		zap.Int("failures_not_logged", w.suppressed))
	w.lastLog, w.suppressed = now, 0
}

// compact starts writing a new snapshot beside the appends once the
// journal has outgrown the last one. The table is copied under its lock;
// encoding and writing happen on a goroutine of their own.
func (w *Writer) compact() {
	if w.comp != nil || w.running {
		return
	}
	jsize, ssize := w.st.sizes()
	if jsize < max(ssize, minCompact, w.retryAt) {
		return
	}
	ms, gen := w.tab.Snapshot()
	w.mu.Lock()
	_, seq := w.upToLocked(gen)
	c := &compaction{gen: gen, seq: seq, reverts: w.reverts}
	w.comp, w.running = c, true
	w.since, w.sinceMeta = w.since[:0], w.sinceMeta[:0]
	w.mu.Unlock()
	go func() {
		size, err := w.st.writeCompaction(ms, seq)
		w.compacted <- compactResult{c, size, err}
	}()
}

// compactionWritten takes a compaction goroutine's report.
func (w *Writer) compactionWritten(r compactResult) {
	w.running = false
	if r.comp != w.comp { // dropped while it was being written
		w.st.dropCompaction()
		return
	}
	if r.err != nil {
		jsize, _ := w.st.sizes()
		w.retryAt = 2 * jsize
		w.comp = nil
		w.st.dropCompaction()
		w.log.Warn("cannot compact the journal; will retry when it has doubled", zap.Error(r.err))
		return
	}
	w.comp.done, w.comp.size = true, r.size
	w.install()
}

// install makes a written compaction the snapshot once every change it
// holds is in the journal too (until then the next flush calls again),
// and starts the journal after it with the records appended since.
func (w *Writer) install() {
	c := w.comp
	w.mu.Lock()
	if w.reverts != c.reverts {
		w.mu.Unlock()
		w.dropCompaction() // it may hold changes taken back
		return
	}
	if w.taken < c.seq {
		w.mu.Unlock()
		return
	}
	i := 0
	for i < len(w.sinceMeta) && w.sinceMeta[i].seq <= c.seq {
		i++
	}
	start := 0
	if i > 0 {
		start = w.sinceMeta[i-1].end
	}
	tail := append([]byte(nil), w.since[start:]...)
	w.since, w.sinceMeta = w.since[:0], w.sinceMeta[:0]
	w.mu.Unlock()
	w.comp = nil
	if err := w.st.installCompaction(c.seq, c.size, tail); err != nil {
		w.log.Warn("cannot install the compacted journal; the next change saves the whole table", zap.Error(err))
		return
	}
	w.saves.Add(1)
	w.retryAt = 0
}

// dropCompaction abandons the compaction in flight: a revert may have
// taken back changes its snapshot holds, or a whole save superseded it.
// A goroutine still writing it reports later and is ignored.
func (w *Writer) dropCompaction() {
	if w.comp == nil {
		return
	}
	if w.comp.done {
		w.st.dropCompaction()
	}
	w.comp = nil
}
