package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
)

// FileName is the state file inside a Store's directory.
const FileName = "portmapd.xdr"

// keepAside is how many refused copies of the state file are kept.
const keepAside = 5

// Store owns one state directory: the snapshot, the journal, their
// temporary siblings and the refused copies moved aside. Its methods are
// safe for concurrent use.
type Store struct {
	dir, path, tmp string
	jpath, jtmp    string
	ctmp           string // the snapshot a background compaction writes
	log            *zap.Logger
	bootID         string
	euid           uint32
	now            func() time.Time

	mu sync.Mutex // serialises writers; guards the fields below
	// seq is the number of the last change in the files: the last journal
	// record, or the snapshot's seq when the journal has none after it.
	seq uint64
	// jf is the journal, open for appending, jsize its good length; nil
	// when the next write must be a whole Save (no journal yet, or one
	// whose end is unknown after a failed write).
	jf    *os.File
	jsize int64
	// resume, when set, is the good length of the journal Load read, to
	// be opened for appending (its torn tail cut off) at the first write.
	resume   int64
	snapSize int64  // bytes in the snapshot: the journal is compacted when it outgrows them
	tail     string // why the journal Load read ended early, or ""
}

// Open prepares dir for use, creating it with mode 0700 if missing. It
// fails when dir is not a real directory owned by this user (or root) and
// closed to writes by others: such a directory would let anyone plant the
// table. The caller may run without warm start then.
func Open(dir string, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	s := &Store{
		dir:    dir,
		path:   filepath.Join(dir, FileName),
		tmp:    filepath.Join(dir, FileName+".tmp"),
		jpath:  filepath.Join(dir, JournalName),
		jtmp:   filepath.Join(dir, JournalName+".tmp"),
		ctmp:   filepath.Join(dir, FileName+".compact"),
		resume: -1,
		log:    log.Named("state"),
		bootID: bootID(),
		euid:   uint32(os.Geteuid()),
		now:    time.Now,
	}
	if err := s.checkDir(); err != nil {
		return nil, err
	}
	// A crash during a save can leave temporary files; they were never
	// renamed, so they hold nothing that was promised.
	for _, tmp := range []string{s.tmp, s.jtmp, s.ctmp} {
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot remove stale temporary state file", zap.String("file", tmp), zap.Error(err))
		}
	}
	return s, nil
}

// checkDir refuses a state directory that is not a real directory owned
// by this user (or root) and closed to writes by others.
func (s *Store) checkDir() error {
	fi, err := os.Lstat(s.dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is a %s, not a directory: %w", s.dir, fi.Mode().Type(), ErrUnsafeDir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !s.trust(st.Uid) {
		return fmt.Errorf("%s owned by uid %d: %w", s.dir, st.Uid, ErrUnsafeDir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s has mode %04o: %w", s.dir, fi.Mode().Perm(), ErrUnsafeDir)
	}
	return nil
}

// Path is the state file's name, for log lines and tools.
func (s *Store) Path() string { return s.path }

// trust accepts files written by this process's user or by root; the user
// is also the one the daemon dropped to after Open (--user), which owns
// the directory from then on.
func (s *Store) trust(uid uint32) bool {
	return uid == s.euid || uid == 0 || uid == uint32(os.Geteuid())
}

// Load returns the saved table, the snapshot with the journal replayed
// over it, or an empty one. It never fails: missing files mean a cold
// start; a file that is damaged, hostile, from another format version or
// from an earlier boot is moved aside with one log line, so that it is
// never read again yet stays for inspection. A journal's torn or corrupt
// tail ends it: the records before it are kept, and the tail is cut off
// before the next record is appended. Rows of the portmapper itself
// (program 100000) are dropped: the daemon registers its own rows for the
// transports it serves now.
func (s *Store) Load() []pmap.Mapping {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq, s.resume, s.snapSize = 0, -1, 0
	ms, snapErr := s.loadSnapshot()
	switch {
	case snapErr == nil:
	case errors.Is(snapErr, fs.ErrNotExist): // a cold start
	default:
		s.refuse(s.path, snapErr)
		// The journal's records follow a table that is gone: partial
		// rows are no better than none.
		if _, err := os.Lstat(s.jpath); err == nil {
			s.refuse(s.jpath, fmt.Errorf("follows a refused snapshot: %w", snapErr))
		}
		return nil
	}
	ms, jerr := s.loadJournal(ms)
	switch {
	case jerr == nil:
	case errors.Is(jerr, fs.ErrNotExist):
		if len(ms) == 0 && s.snapSize == 0 {
			s.log.Info("no saved registrations; cold start", zap.String("file", s.path))
			return nil
		}
	default:
		s.refuse(s.jpath, jerr)
	}
	s.log.Info("warm start: loaded saved registrations",
		zap.String("file", s.path), zap.Int("mappings", len(ms)), zap.Uint64("seq", s.seq))
	return dropOwnRows(s.log, s.path, ms)
}

// Inspect reads the state files in dir as a warm start would, without
// moving, cutting or creating anything, and returns the table they hold
// and why the journal ended early ("" when it did not); err says why a
// warm start would refuse a file. For tests and tools.
func Inspect(dir string) (ms []pmap.Mapping, tail string, err error) {
	s := &Store{dir: dir, path: filepath.Join(dir, FileName), jpath: filepath.Join(dir, JournalName),
		log: zap.NewNop(), bootID: bootID(), euid: uint32(os.Geteuid()), resume: -1}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, err = s.loadSnapshot()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%s: %w", s.path, err)
	}
	ms, err = s.loadJournal(ms)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%s: %w", s.jpath, err)
	}
	return ms, s.tail, nil
}

// refuse moves a refused file aside; the caller holds s.mu.
func (s *Store) refuse(path string, err error) {
	if moveAside(s.log, path, err, s.now()) != "" {
		pruneAside(s.log, path, keepAside)
	}
}

// loadSnapshot reads the snapshot; the caller holds s.mu.
func (s *Store) loadSnapshot() ([]pmap.Mapping, error) {
	data, _, err := readTrusted(s.path, s.trust)
	if err != nil {
		return nil, err
	}
	ms, fileBoot, seq, err := decodeState(data)
	if err != nil {
		return nil, err
	}
	if fileBoot != "" && s.bootID != "" && fileBoot != s.bootID {
		return nil, fmt.Errorf("boot %s, running boot %s: %w", fileBoot, s.bootID, ErrStale)
	}
	s.seq, s.snapSize = seq, int64(len(data))
	return ms, nil
}

// loadJournal replays the journal over the snapshot's rows ms; the caller
// holds s.mu. It returns ms unchanged with the reason when the journal is
// missing or refused.
func (s *Store) loadJournal(ms []pmap.Mapping) ([]pmap.Mapping, error) {
	data, _, err := readTrusted(s.jpath, s.trust)
	if err != nil {
		return ms, err
	}
	j, err := decodeJournal(data)
	if err != nil {
		return ms, err
	}
	if j.bootID != "" && s.bootID != "" && j.bootID != s.bootID {
		return ms, fmt.Errorf("boot %s, running boot %s: %w", j.bootID, s.bootID, ErrStale)
	}
	if j.base > s.seq {
		return ms, fmt.Errorf("follows the snapshot of seq %d, the snapshot has %d: %w", j.base, s.seq, ErrCorrupt)
	}
	s.tail = j.tail
	if j.tail != "" {
		s.log.Warn("journal ends in a torn or damaged record; the records before it are kept",
			zap.String("file", s.jpath), zap.Int("records", len(j.recs)), zap.String("tail", j.tail))
	}
	last := j.base
	if n := len(j.recs); n > 0 {
		last = j.recs[n-1].seq
	}
	ms, s.seq = replay(ms, j.recs, s.seq)
	// Appending is safe only where the journal ends at the table's last
	// change; a journal older than the snapshot (a crash during a
	// compaction) is replaced by the next save instead.
	if last == s.seq {
		s.resume = int64(j.valid)
	}
	return ms, nil
}

// Save replaces the snapshot with ms and starts an empty journal after it,
// atomically and durably: when it returns nil the table survives a crash
// or power loss; when it fails the previous files still load. It fails
// with ErrTooLarge, before touching the disk, for tables beyond
// MaxMappings, MaxString or MaxFileSize.
func (s *Store) Save(ms []pmap.Mapping) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(ms, s.seq)
}

// save is Save at seq, for the Writer.
func (s *Store) save(ms []pmap.Mapping, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(ms, seq)
}

// saveLocked writes the snapshot ms as seq and an empty journal after it.
// A directory that vanished is made again, so that durability comes back
// by itself once the disk does.
func (s *Store) saveLocked(ms []pmap.Mapping, seq uint64) error {
	data, err := encodeState(ms, s.bootID, seq)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	s.closeJournal()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := s.checkDir(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := writeAtomic(s.dir, s.path, s.tmp, data); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	s.seq, s.snapSize = seq, int64(len(data))
	if err := s.startJournal(seq, nil); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// startJournal replaces the journal with one that follows the snapshot of
// seq base and holds the records tail, and opens it for appending. The
// caller holds s.mu.
func (s *Store) startJournal(base uint64, tail []byte) error {
	s.closeJournal()
	data := append(encodeJournalHeader(s.bootID, base), tail...)
	if err := writeAtomic(s.dir, s.jpath, s.jtmp, data); err != nil {
		return err
	}
	f, err := os.OpenFile(s.jpath, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.jpath, err)
	}
	s.jf, s.jsize = f, int64(len(data))
	return nil
}

// closeJournal forgets the open journal: the next write is a whole Save.
func (s *Store) closeJournal() {
	if s.jf != nil {
		s.jf.Close()
		s.jf = nil
	}
}

// Close closes the journal.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeJournal()
	s.resume = -1
}

// appendable reports whether records can be appended to the journal,
// opening the one Load read (its torn tail cut off) on first use.
func (s *Store) appendable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jf != nil {
		return true
	}
	if s.resume < 0 {
		return false
	}
	good := s.resume
	s.resume = -1
	f, err := os.OpenFile(s.jpath, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if err == nil {
		err = f.Truncate(good)
		if err == nil {
			_, err = f.Seek(good, io.SeekStart)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		s.log.Warn("cannot reopen the journal; the next change saves the whole table",
			zap.String("file", s.jpath), zap.Error(err))
		return false
	}
	s.jf, s.jsize = f, good
	return true
}

// appendRecords appends records (seq through last) to the journal and
// makes them durable. On failure the journal is cut back to what it held,
// where the disk still allows it, and closed: the next write is a whole
// Save, since what the file holds after the failed write is unknown.
func (s *Store) appendRecords(recs []byte, last uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jf == nil {
		return fmt.Errorf("append to %s: journal not open", s.jpath)
	}
	err := writeSync(s.jf, s.jpath, recs)
	if err != nil {
		// Records the caller is about to take back must not come back
		// after a crash: cut them off, in the page cache at least.
		if terr := s.jf.Truncate(s.jsize); terr != nil {
			s.log.Debug("cannot cut the failed records off the journal", zap.Error(terr))
		}
		s.closeJournal()
		return fmt.Errorf("append to %s: %w", s.jpath, err)
	}
	s.jsize += int64(len(recs))
	s.seq = last
	return nil
}

// writeSync writes b at the end of f and fsyncs it, then checks that f is
// still the file at path: a state directory removed, replaced or mounted
// over under the daemon takes writes into a file nobody will read.
func writeSync(f *os.File, path string, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if pi, err := os.Lstat(path); err != nil || !os.SameFile(fi, pi) {
		return fmt.Errorf("%s: %w", path, ErrRemoved)
	}
	return nil
}

// sizes reports the journal's and the snapshot's size in bytes.
func (s *Store) sizes() (journal, snapshot int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jsize, s.snapSize
}

// writeCompaction writes the snapshot ms as seq to a temporary file, to be
// installed by installCompaction. It runs beside appends: it touches only
// its own file.
func (s *Store) writeCompaction(ms []pmap.Mapping, seq uint64) (int64, error) {
	data, err := encodeState(ms, s.bootID, seq)
	if err != nil {
		return 0, err
	}
	os.Remove(s.ctmp)
	f, err := os.OpenFile(s.ctmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return 0, err
	}
	if err := writeSync(f, s.ctmp, data); err != nil {
		f.Close()
		os.Remove(s.ctmp)
		return 0, err
	}
	if err := f.Close(); err != nil {
		os.Remove(s.ctmp)
		return 0, err
	}
	return int64(len(data)), nil
}

// dropCompaction removes a compaction that is not to be installed.
func (s *Store) dropCompaction() { os.Remove(s.ctmp) }

// installCompaction makes the snapshot writeCompaction wrote (seq, size
// bytes) the snapshot, then replaces the journal with one after it that
// holds tail, the records appended since. A crash between the two leaves
// the new snapshot with the old journal, whose records up to seq it
// skips. A failure leaves the journal closed: the next write is a Save.
func (s *Store) installCompaction(seq uint64, size int64, tail []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(s.ctmp, s.path); err != nil {
		os.Remove(s.ctmp)
		return err
	}
	s.snapSize = size
	if err := s.startJournal(seq, tail); err != nil {
		s.closeJournal()
		return err
	}
	return nil
}

// WarmStart returns the table a starting daemon should begin with: the
// newer of portmapd's own file and rpcbind's warm-start files (the first of
// rpcbindDirs that holds any; see LoadRpcbind). rpcbind's files are taken
// when portmapd has none or an older one, i.e. when the machine switched
// from rpcbind since portmapd last ran. They are copied into the Store
// first and only then renamed with the suffix ".imported", so that a crash
// in between loses nothing and a later start does not import stale rows
// again. Like Load, it never fails and leaves out the portmapper's own
// rows (program 100000).
func (s *Store) WarmStart(rpcbindDirs []string) []pmap.Mapping {
	own, ownErr := os.Lstat(s.path)
	if j, err := os.Lstat(s.jpath); err == nil && (ownErr != nil || j.ModTime().After(own.ModTime())) {
		own, ownErr = j, nil
	}
	rs := findRpcbind(s.log, rpcbindDirs)
	if rs == nil || (ownErr == nil && !rs.newest.After(own.ModTime())) {
		if rs != nil {
			s.log.Info("ignoring rpcbind warm-start files older than portmapd's own",
				zap.String("dir", rs.dir), zap.String("file", s.path))
		}
		return s.Load()
	}
	ms, read := rs.load(s.log, s.now())
	if len(read) == 0 {
		return s.Load()
	}
	if err := s.Save(ms); err != nil {
		// Serve what rpcbind left anyway; its files stay for the next try.
		s.log.Error("cannot save imported rpcbind registrations", zap.Error(err))
		return ms
	}
	for _, p := range read {
		if err := os.Rename(p, p+".imported"); err != nil {
			s.log.Warn("cannot rename imported rpcbind file; it may be imported again",
				zap.String("file", p), zap.Error(err))
		}
	}
	return ms
}

// dropOwnRows drops the portmapper's own rows (program 100000): the daemon
// registers its own rows for the transports it serves now. Duplicates of
// a (prog, vers, netid) are left to the registry, whose SET never
// overwrites, so the first one wins, as in the daemon that wrote the file.
func dropOwnRows(log *zap.Logger, file string, ms []pmap.Mapping) []pmap.Mapping {
	n := len(ms)
	ms = slices.DeleteFunc(ms, func(m pmap.Mapping) bool { return m.Prog == pmap.Program })
	if own := n - len(ms); own > 0 {
		log.Debug("dropped the portmapper's own rows", zap.String("file", file), zap.Int("rows", own))
	}
	if len(ms) == 0 {
		return nil
	}
	return ms
}
