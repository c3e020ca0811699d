package lockfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultPath is inside the daemon's runtime directory (RuntimeDirectory=
// portmapd in the unit), which stays writable under ProtectSystem=strict
// where /run itself is not. /run is a tmpfs, so a reboot clears it.
const DefaultPath = "/run/portmapd/portmapd.lock"

// RpcbindPath is the lock rpcbind takes at start (Debian's 1.2.6 and
// upstream since 1.2.7; older builds used /var/run/rpcbind.lock, the same
// file where /var/run links to /run). Holding it as well keeps a real
// rpcbind from starting beside portmapd, and the other way round.
const RpcbindPath = "/run/rpcbind.lock"

// ErrLocked is what a LockedError matches with errors.Is.
var ErrLocked = errors.New("lock held by another process")

// LockedError says who holds the lock.
type LockedError struct {
	Path string
	// PID of the holder, 0 if it could not be found out (the holder has
	// not written it yet, or lives in another pid namespace).
	PID int
	// Command is the holder's name from /proc/PID/comm, if readable.
	Command string
}

func (e *LockedError) Error() string {
	what := "another portmapd"
	if e.Command != "" && e.Command != "portmapd" {
		what = "another portmapper"
	}
	who := "another process"
	switch {
	case e.PID > 0 && e.Command != "":
		who = fmt.Sprintf("%s (pid %d)", e.Command, e.PID)
	case e.PID > 0:
		who = fmt.Sprintf("pid %d", e.PID)
	}
	return fmt.Sprintf("%s is already running: %s holds %s", what, who, e.Path)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held lock. Release it at exit; if the process dies instead,
// the kernel releases it.
type Lock struct {
	f    *os.File
	path string
	// shared: a lock file another program defines (AcquireShared); it
	// is neither written nor removed.
	shared bool
}

// maxAttempts bounds Acquire's retries when the file is replaced under
// it, which takes a holder releasing at the same moment; more than a few
// in a row means something keeps deleting the file.
const maxAttempts = 8

// Acquire takes the lock at path, creating the file (and its directory)
// if needed, and writes this process's pid into it. If another process
// holds it the error is a *LockedError.
func Acquire(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return acquire(path, false)
}

// AcquireShared takes a lock file that another program defines, as that
// program takes it: rpcbind opens RpcbindPath read-only (creating it if
// need be), flocks it and never writes or removes it. The file is left as
// it is, so rpcbind's own locking keeps working with it; the holder is
// found through /proc/locks only. The directory must exist.
func AcquireShared(path string) (*Lock, error) {
	return acquire(path, true)
}

func acquire(path string, shared bool) (*Lock, error) {
	mode := os.O_RDWR | os.O_CREATE
	if shared {
		mode = os.O_RDONLY | os.O_CREATE
	}
	for range maxAttempts {
		// os.OpenFile opens with O_CLOEXEC: a program the daemon runs
		// must not inherit, and so keep, the lock.
		f, err := os.OpenFile(path, mode, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := lockOwner(f)
			if !shared && pid <= 0 {
				pid = holder(f)
			}
			f.Close()
			return nil, &LockedError{Path: path, PID: pid, Command: Command(pid)}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// A holder that released between our open and our flock unlinked
		// the file we opened; a lock on it excludes nobody, since the next
		// daemon creates and locks a new file. Start again if so.
		if !samePath(f, path) {
			f.Close()
			continue
		}
		if shared {
			return &Lock{f: f, path: path, shared: true}, nil
		}
		if err := writePID(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return &Lock{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("lock %s: the file was replaced %d times while locking it", path, maxAttempts)
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Release removes the lock file and drops the lock. The file goes first,
// while the lock still excludes everyone, so no other process ever holds
// a lock on a file that is about to disappear (see Acquire). A shared
// lock's file stays: its program does not expect it to vanish.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	var err error
	if !l.shared && samePath(l.f, l.path) {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	if cerr := l.f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	for range 100 { // EINTR is possible; an endless retry is not
		if cerr := rc.Control(func(fd uintptr) { ferr = syscall.Flock(int(fd), how) }); cerr != nil {
			return cerr
		}
		if !errors.Is(ferr, syscall.EINTR) {
			break
		}
	}
	return ferr
}

func samePath(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(fi, pi)
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// holder finds the pid of the process holding f's lock from the pid the
// holder wrote, when /proc/locks (lockOwner, which the kernel keeps and
// translates into our pid namespace) did not name it. A holder that has
// just taken the lock may not have written yet, so the file is read a few
// times.
func holder(f *os.File) int {
	buf := make([]byte, 32)
	for range 10 {
		n, _ := f.ReadAt(buf, 0)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); err == nil && pid > 0 {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0
}

// lockOwner looks f's inode up in /proc/locks, whose lines read
// "1: FLOCK  ADVISORY  WRITE 1234 08:01:131090 0 EOF" (pid, then
// major:minor:inode in hex, hex, decimal). Lines with "->" are waiters.
func lockOwner(f *os.File) int {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	maj, min := devMajor(uint64(st.Dev)), devMinor(uint64(st.Dev))
	want := fmt.Sprintf("%02x:%02x:%d", maj, min, st.Ino)
	pl, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer pl.Close()
	sc := bufio.NewScanner(pl)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// devMajor and devMinor split a Linux dev_t as glibc's gnu_dev_major and
// gnu_dev_minor
// do (including their truncation to 32 bits).
func devMajor(dev uint64) uint64 { return (dev>>8)&0xfff | uint64(uint32(dev>>32))&^0xfff }
func devMinor(dev uint64) uint64 { return dev&0xff | uint64(uint32(dev>>12))&^0xff }

// Command returns the name of process pid from /proc/PID/comm, or "".
func Command(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
