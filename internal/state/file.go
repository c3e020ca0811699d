package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// trustFunc says whether a file owned by uid may be believed.
type trustFunc func(uid uint32) bool

// readTrusted reads a whole state file that somebody else may have planted
// or damaged. It never follows a symbolic link (the link itself is what
// gets moved aside), never opens anything but a regular file (a FIFO would
// block start-up, a device could have side effects), believes only files
// whose owner passes trust and that nobody else can write, and reads at most
// MaxFileSize bytes. The returned error wraps fs.ErrNotExist when there is
// no file, and one of the package's sentinel errors when there is a bad one.
func readTrusted(path string, trust trustFunc) ([]byte, os.FileInfo, error) {
	li, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkInfo(li, trust); err != nil {
		return nil, li, err
	}
	// O_NOFOLLOW and the identity check below close the window between
	// Lstat and open in which the file could be swapped for a link.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, li, fmt.Errorf("%s: %w", path, ErrSymlink)
		}
		return nil, li, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, li, err
	}
	if !os.SameFile(li, fi) {
		return nil, fi, fmt.Errorf("%s changed while being opened: %w", path, ErrNotRegular)
	}
	if err := checkInfo(fi, trust); err != nil {
		return nil, fi, err
	}
	// The size from fstat may lie (the file can grow); the limit on the
	// reader is what bounds memory.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fi, err
	}
	if len(data) > MaxFileSize {
		return nil, fi, fmt.Errorf("more than %d bytes: %w", MaxFileSize, ErrTooLarge)
	}
	return data, fi, nil
}

func checkInfo(fi os.FileInfo, trust trustFunc) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return ErrSymlink
	case !fi.Mode().IsRegular():
		return fmt.Errorf("file type %s: %w", fi.Mode().Type(), ErrNotRegular)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !trust(st.Uid) {
		return fmt.Errorf("uid %d: %w", st.Uid, ErrOwner)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("mode %04o: %w", fi.Mode().Perm(), ErrMode)
	}
	if fi.Size() > MaxFileSize {
		return fmt.Errorf("%d bytes, limit %d: %w", fi.Size(), MaxFileSize, ErrTooLarge)
	}
	return nil
}

// reason names why a file was refused, for the moved-aside file's name and
// the log, so that an operator can tell a hostile file from a torn one.
func reason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrStale, "stale"},
		{ErrSymlink, "symlink"},
		{ErrNotRegular, "notregular"},
		{ErrOwner, "owner"},
		{ErrMode, "mode"},
		{ErrTooLarge, "toolarge"},
		{ErrTruncated, "truncated"},
		{ErrChecksum, "checksum"},
		{ErrMagic, "magic"},
		{ErrVersion, "version"},
		{ErrCorrupt, "corrupt"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "unreadable"
}

// asideLayout is the time stamp in a moved-aside file's name; it sorts
// lexically in time order, which pruning relies on.
const asideLayout = "20060102T150405.000000000Z"

// moveAside renames a refused file to "<path>.<reason>-<UTC time>" so that
// it is never read again but stays for an operator to inspect, and logs
// one line saying what happened. Renaming a symbolic link moves the link,
// never its target. It returns the new path, or "" if the rename failed.
func moveAside(log *zap.Logger, path string, err error, now time.Time) string {
	why := reason(err)
	aside := path + "." + why + "-" + now.UTC().Format(asideLayout)
	level := zap.WarnLevel
	if errors.Is(err, ErrStale) {
		level = zap.InfoLevel // expected after every reboot with a disk-backed directory
	}
	if rerr := os.Rename(path, aside); rerr != nil {
		log.Error("cannot move refused state file aside; starting without it",
			zap.String("file", path), zap.String("reason", why), zap.Error(err),
			zap.NamedError("rename_error", rerr))
		return ""
	}
	if ce := log.Check(level, "refused state file moved aside; starting without it"); ce != nil {
		ce.Write(zap.String("file", path), zap.String("reason", why),
			zap.String("moved_to", aside), zap.Error(err))
	}
	return aside
}

// pruneAside keeps the newest keep moved-aside copies of path, so that a
// restart loop over a bad file cannot fill the disk.
func pruneAside(log *zap.Logger, path string, keep int) {
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return
	}
	type aside struct{ name, stamp string }
	var found []aside
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '-')
		if i < 0 {
			continue
		}
		if _, err := time.Parse(asideLayout, rest[i+1:]); err != nil {
			continue
		}
		found = append(found, aside{e.Name(), rest[i+1:]})
	}
	if len(found) <= keep {
		return
	}
	slices.SortFunc(found, func(a, b aside) int { return strings.Compare(b.stamp, a.stamp) })
	for _, a := range found[keep:] {
		if err := os.Remove(filepath.Join(dir, a.name)); err != nil {
			log.Warn("cannot remove old refused state file", zap.String("file", a.name), zap.Error(err))
		}
	}
}

// bootID identifies the running boot; "" when unknown (no /proc), which
// turns the staleness check off rather than refusing every file.
var bootID = func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// bootTime is when the running boot started, from /proc/stat's btime; ok is
// false when unknown. rpcbind's files carry no boot id, so their age is
// judged by modification time.
var bootTime = func() (t time.Time, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.Lines(string(b)) {
		if v, found := strings.CutPrefix(line, "btime "); found {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(sec, 0), true
		}
	}
	return time.Time{}, false
}

// writeAtomic replaces path with data so that a crash at any moment leaves
// either the old file or the new one, complete: write a temporary file in
// the same directory, fsync it, rename it over path, fsync the directory so
// the rename itself is on disk.
func writeAtomic(dir, path, tmp string, data []byte) (err error) {
	// The temporary name is fixed (Store serialises writers) so that a crash
	// leaves at most one stray file; remove it rather than reuse it, so that
	// its mode and owner are the ones we create.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
