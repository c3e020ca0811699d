package state

import (
	"errors"
	"fmt"
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

// Store owns one state directory: the state file, its temporary sibling and
// the refused copies moved aside. Its methods are safe for concurrent use.
type Store struct {
	dir, path, tmp string
	log            *zap.Logger
	bootID         string
	euid           uint32
	now            func() time.Time

	mu sync.Mutex // serialises writers of the one temporary file
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
		log:    log.Named("state"),
		bootID: bootID(),
		euid:   uint32(os.Geteuid()),
		now:    time.Now,
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is a %s, not a directory: %w", dir, fi.Mode().Type(), ErrUnsafeDir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !s.trust(st.Uid) {
		return nil, fmt.Errorf("%s owned by uid %d: %w", dir, st.Uid, ErrUnsafeDir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: %w", dir, fi.Mode().Perm(), ErrUnsafeDir)
	}
	// A crash during Save can leave the temporary file; it was never
	// renamed, so it holds nothing that was promised.
	if err := os.Remove(s.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot remove stale temporary state file", zap.String("file", s.tmp), zap.Error(err))
	}
	return s, nil
}

// Path is the state file's name, for log lines and tools.
func (s *Store) Path() string { return s.path }

// trust accepts files written by this process's user or by root.
func (s *Store) trust(uid uint32) bool { return uid == s.euid || uid == 0 }

// Load returns the saved table, or an empty one. It never fails: a missing
// file means a cold start; a file that is damaged, hostile, from another
// format version or from an earlier boot is moved aside with one log line,
// so that it is never read again yet stays for inspection. Rows of the
// portmapper itself (program 100000) are dropped: the daemon registers its
// own rows for the transports it serves now.
func (s *Store) Load() []pmap.Mapping {
	ms, err := s.load()
	switch {
	case err == nil:
		s.log.Info("warm start: loaded saved registrations",
			zap.String("file", s.path), zap.Int("mappings", len(ms)))
		return ms
	case errors.Is(err, fs.ErrNotExist):
		s.log.Info("no saved registrations; cold start", zap.String("file", s.path))
		return nil
	}
	if moveAside(s.log, s.path, err, s.now()) != "" {
		pruneAside(s.log, s.path, keepAside)
	}
	return nil
}

func (s *Store) load() ([]pmap.Mapping, error) {
	data, _, err := readTrusted(s.path, s.trust)
	if err != nil {
		return nil, err
	}
	ms, fileBoot, err := decodeState(data)
	if err != nil {
		return nil, err
	}
	if fileBoot != "" && s.bootID != "" && fileBoot != s.bootID {
		return nil, fmt.Errorf("boot %s, running boot %s: %w", fileBoot, s.bootID, ErrStale)
	}
	return dropOwnRows(s.log, s.path, ms), nil
}

// Save replaces the state file with ms atomically and durably: when it
// returns nil the table survives a crash or power loss; when it fails the
// previous file is intact. It fails with ErrTooLarge, before touching the
// disk, for tables beyond MaxMappings, MaxString or MaxFileSize.
func (s *Store) Save(ms []pmap.Mapping) error {
	data, err := encodeState(ms, s.bootID)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeAtomic(s.dir, s.path, s.tmp, data); err != nil {
		return fmt.Errorf("save state: %w", err)
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
