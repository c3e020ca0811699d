package lockfile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary a helper process: "lock PATH" takes the
// lock, "listen" binds TCP and UDP on loopback, "ports PORT" prints
// Describe(PortUsers(PORT)). It prints "ready ..." and, for lock and
// listen, holds on until its stdin closes.
const childEnv = "PORTMAPD_LOCKFILE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(strings.Fields(mode)))
	}
	os.Exit(m.Run())
}

func childMain(args []string) int {
	switch args[0] {
	case "lock":
		l, err := Acquire(args[1])
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		defer l.Release()
		fmt.Println("ready")
	case "listen":
		// TCP at port 0, then UDP on the same number; a number whose UDP
		// side another socket holds is given up for a new one (bounded).
		// daemontest.PortPair does this for other tests; this package is
		// below it (daemontest imports the daemon, which imports lockfile).
		for try := 0; ; try++ {
			tl, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			defer tl.Close()
			port := tl.Addr().(*net.TCPAddr).Port
			uc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
			if errors.Is(err, syscall.EADDRINUSE) && try < 20 {
				tl.Close()
				continue
			}
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			defer uc.Close()
			fmt.Println("ready", port)
			break
		}
	case "ports":
		port, _ := strconv.Atoi(args[1])
		users, err := PortUsers(uint16(port))
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready", Describe(users))
		return 0
	}
	io.Copy(io.Discard, os.Stdin) // hold until the parent lets go
	return 0
}

// helper is a running child; close its stdin to end it.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready string // what followed "ready"
}

func startHelper(t *testing.T, mode string) *helper {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
		cancel()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %q: %v", mode, err)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ready")
	if !ok {
		t.Fatalf("helper %q: %s", mode, line)
	}
	h.ready = strings.TrimSpace(rest)
	return h
}

func TestAcquireWritesThePidAndReleaseRemovesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "portmapd.lock")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("lock file holds %q (%v), want our pid", b, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file still there after Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

func TestSecondInstanceIsRefusedWithTheHoldersPid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portmapd.lock")
	tests := []struct {
		name   string
		holder func(t *testing.T) (pid int, command string)
	}{
		{"held by this process (another open file)", func(t *testing.T) (int, string) {
			l, err := Acquire(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Release() })
			return os.Getpid(), Command(os.Getpid())
		}},
		{"held by another process", func(t *testing.T) (int, string) {
			h := startHelper(t, "lock "+path)
			return h.cmd.Process.Pid, Command(h.cmd.Process.Pid)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, command := tt.holder(t)
			_, err := Acquire(path)
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
				t.Fatalf("second Acquire: %v, want a LockedError", err)
			}
			if le.PID != pid || le.Command != command || le.Path != path {
				t.Errorf("got %+v, want pid %d command %q", le, pid, command)
			}
			if want := fmt.Sprintf("%s (pid %d) holds %s", command, pid, path); !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not say %q", err, want)
			}
		})
	}
}

func TestLockIsFreedWhenItsHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portmapd.lock")
	h := startHelper(t, "lock "+path)
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()
	// The file (with the dead pid in it) is still there: only the lock
	// is gone, which is all that matters.
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a killed holder cannot have removed the file: %v", err)
	}
	l, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after the holder died: %v", err)
	}
	defer l.Release()
	b, _ := os.ReadFile(path)
	if string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q, want our pid", b)
	}
}

func TestLockIsNotInheritedByPrograms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portmapd.lock")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	// A child that outlived us would otherwise keep the lock, and block
	// the restart.
	out, err := exec.Command("sh", "-c", "ls -l /proc/$$/fd").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), path) {
		t.Errorf("a program run by the holder has the lock file open:\n%s", out)
	}
	l.Release()
}

func TestLockedErrorWithoutAPid(t *testing.T) {
	e := &LockedError{Path: "/run/x.lock"}
	if got, want := e.Error(), "another portmapd is already running: another process holds /run/x.lock"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDevNumbersSplitLikeGlibc(t *testing.T) {
	tests := []struct {
		dev        uint64
		maj, minor uint64
	}{
		{0x0801, 8, 1},                     // sda1
		{0xfd00, 0xfd, 0},                  // dm-0
		{0x0000_1000_0000_0000, 0x1000, 0}, // a large major
		{0x0010_0000, 0, 0x100},            // a large minor
		{0x0000_1000_0010_0801, 0x1008, 0x101},
	}
	for _, tt := range tests {
		if devMajor(tt.dev) != tt.maj || devMinor(tt.dev) != tt.minor {
			t.Errorf("dev %#x: got %d:%d, want %d:%d", tt.dev, devMajor(tt.dev), devMinor(tt.dev), tt.maj, tt.minor)
		}
	}
}

// TestSharedLockIsTakenAsRpcbindTakesIt: rpcbind opens its lock file
// read-only (creating it 0444), flocks it and never writes or removes it.
func TestSharedLockIsTakenAsRpcbindTakesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpcbind.lock")
	// rpcbind created it: read-only, empty.
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	l, err := AcquireShared(path)
	if err != nil {
		t.Fatalf("AcquireShared of a read-only file: %v", err)
	}
	if _, err := Acquire(path); !errors.Is(err, ErrLocked) {
		t.Errorf("Acquire while the shared lock is held: %v, want ErrLocked", err)
	}
	if _, err := AcquireShared(path); !errors.Is(err, ErrLocked) {
		t.Errorf("a second AcquireShared: %v, want ErrLocked", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Release removed rpcbind's lock file: %v", err)
	}
	if fi.Size() != 0 || fi.Mode().Perm() != 0o444 {
		t.Errorf("the file changed: size %d, mode %v", fi.Size(), fi.Mode().Perm())
	}
	l, err = AcquireShared(path)
	if err != nil {
		t.Fatalf("AcquireShared after Release: %v", err)
	}
	l.Release()
}

func TestSharedLockCreatesAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpcbind.lock")
	l, err := AcquireShared(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if b, err := os.ReadFile(path); err != nil || len(b) != 0 {
		t.Errorf("file %q, %v; want it created empty", b, err)
	}
}

// TestSharedLockNamesAnotherProgram: flock(1) stands in for rpcbind, a
// program that is not portmapd and writes no pid.
func TestSharedLockNamesAnotherProgram(t *testing.T) {
	tool, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock not installed (util-linux)")
	}
	path := filepath.Join(t.TempDir(), "rpcbind.lock")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "--no-fork", path, "sh", "-c", "echo ready; read x")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("flock: %q", line)
	}
	_, err = AcquireShared(path)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("AcquireShared: %v, want a LockedError", err)
	}
	// With --no-fork flock execs the command, which then holds the lock.
	want := fmt.Sprintf("another portmapper is already running: sh (pid %d) holds %s", cmd.Process.Pid, path)
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
}
