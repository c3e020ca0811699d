package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The namespace's PID 1 is this test binary re-executed with holderEnv set.
const (
	holderEnv   = "PORTMAPD_E2E_HOLDER"
	holderMagic = "pid1"
)

// DefaultTimeout bounds every command run in a namespace.
const DefaultTimeout = 30 * time.Second

// cmdEnv is the whole environment of commands in a namespace: C locale so
// that messages are the same on every machine.
var cmdEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C",
	"HOME=/",
	noOptionsFiles,
}

// noOptionsFiles keeps the machine's options files (/etc/default/rpcbind,
// which Debian's rpcbind installs with -w, and /etc/default/portmapd)
// away from the daemons under test: an empty file named on purpose
// replaces the default list. A test of the files passes --env-file,
// which wins.
const noOptionsFiles = "PORTMAPD_ENV_FILE=/dev/null"

// Namespace is a private network, mount and PID namespace: its own
// loopback interface, a fresh tmpfs on /run and its own process tree.
// Killing its PID 1 (the holder) makes the kernel kill everything in it, so
// nothing started inside can outlive the test, even if the test binary dies:
// the holder exits as soon as its stdin, a pipe from the test, closes.
type Namespace struct {
	t      testing.TB
	holder *exec.Cmd
	stdin  io.Closer
	stderr *capBuffer

	mu    sync.Mutex
	procs []*Proc
}

// Output is what one command printed and how it ended.
type Output struct {
	Stdout string
	Stderr string
	Exit   int    // exit status; -1 if it did not exit normally
	Err    string // why it did not run or finish (start failure, timeout)
	// Took is how long the command ran; reported, never compared.
	Took time.Duration
}

// Status summarises how a command ended, for comparisons and reports.
func (o Output) Status() string {
	if o.Err != "" {
		return fmt.Sprintf("exit %d (%s)", o.Exit, o.Err)
	}
	return fmt.Sprintf("exit %d", o.Exit)
}

// RequireNamespaces skips the test unless it can create namespaces: it needs
// root, nsenter (util-linux) and ip (iproute2).
func RequireNamespaces(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e: needs root to create network/mount/PID namespaces")
	}
	for _, tool := range []string{"nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("e2e: %s not found (needs util-linux and iproute2)", tool)
		}
	}
}

// NewNamespace creates a namespace whose lifetime ends with the test.
func NewNamespace(t testing.TB) *Namespace {
	t.Helper()
	RequireNamespaces(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("e2e: finding the test binary: %v", err)
	}
	ns := &Namespace{t: t, stderr: newCapBuffer()}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), holderEnv+"="+holderMagic)
	// CLONE_NEWPID makes the holder PID 1 of a new PID namespace; the mount
	// and network namespaces are unshared in the child before exec, and Go
	// then remounts / recursively private, so no mount made inside can
	// propagate to the machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	cmd.Stderr = ns.stderr
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("e2e: cannot create namespaces here: %v", err)
		}
		t.Fatalf("e2e: starting namespace holder: %v", err)
	}
	ns.holder, ns.stdin = cmd, stdin
	t.Cleanup(ns.close)

	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("e2e: namespace holder failed: %q\n%s", line, ns.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("e2e: namespace holder not ready after 10s\n%s", ns.stderr.String())
	}
	return ns
}

// Pid is the namespace's PID 1 as the machine sees it; nsenter -t Pid enters
// the namespace.
func (ns *Namespace) Pid() int { return ns.holder.Process.Pid }

// HostPath names, from outside, the file at path inside the namespace.
func (ns *Namespace) HostPath(path string) string {
	return fmt.Sprintf("/proc/%d/root%s", ns.Pid(), path)
}

func (ns *Namespace) command(ctx context.Context, argv []string) *exec.Cmd {
	args := append([]string{"-t", strconv.Itoa(ns.Pid()), "-n", "-m", "-p", "--wd=/", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = cmdEnv
	cmd.Dir = "/"
	// Killing nsenter alone would leave its child running inside the
	// namespace, holding our pipes; kill the child first.
	cmd.Cancel = func() error { return killTree(cmd.Process.Pid) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs argv inside the namespace and waits at most timeout (0 means
// DefaultTimeout) for it to finish.
func (ns *Namespace) Run(timeout time.Duration, argv ...string) Output {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := ns.command(ctx, argv)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	out := Output{Stdout: stdout.String(), Stderr: stderr.String(), Exit: -1, Took: time.Since(start)}
	if cmd.ProcessState != nil {
		out.Exit = cmd.ProcessState.ExitCode()
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		out.Err = fmt.Sprintf("killed after %v", timeout)
	case err != nil && !errors.As(err, &exitErr):
		out.Err = err.Error()
	}
	return out
}

// Proc is a command running in the background inside a namespace.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	stdout *capBuffer
	stderr *capBuffer
	done   chan struct{}
	err    error
}

// Start runs argv in the background inside the namespace. It is stopped at
// the latest when the namespace goes away.
func (ns *Namespace) Start(name string, argv ...string) *Proc {
	ns.t.Helper()
	p := &Proc{Name: name, stdout: newCapBuffer(), stderr: newCapBuffer(), done: make(chan struct{})}
	p.cmd = ns.command(context.Background(), argv)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		ns.t.Fatalf("e2e: starting %s: %v", name, err)
	}
	ns.mu.Lock()
	ns.procs = append(ns.procs, p)
	ns.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stdout and Stderr return what the process printed so far.
func (p *Proc) Stdout() string { return p.stdout.String() }
func (p *Proc) Stderr() string { return p.stderr.String() }

// ExitStatus describes how the process ended, or "running".
func (p *Proc) ExitStatus() string {
	if !p.Exited() {
		return "running"
	}
	if p.err != nil {
		return p.err.Error()
	}
	return "exit status 0"
}

// Signal sends sig to the command nsenter started inside the namespace
// (not to nsenter, which would not pass it on).
func (p *Proc) Signal(sig syscall.Signal) error {
	kids := directChildren(p.cmd.Process.Pid)
	if len(kids) == 0 {
		return fmt.Errorf("%s: no process inside the namespace", p.Name)
	}
	for _, k := range kids {
		if err := syscall.Kill(k, sig); err != nil {
			return err
		}
	}
	return nil
}

// Wait waits up to timeout for the process to end and reports whether it
// did.
func (p *Proc) Wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Stop kills the process (and what nsenter started) and waits for it.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = killTree(p.cmd.Process.Pid) // already exited: p.done says so
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

func (ns *Namespace) close() {
	ns.mu.Lock()
	procs := ns.procs
	ns.procs = nil
	ns.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	// Closing stdin makes the holder exit; the kernel then kills whatever
	// is left in the PID namespace.
	ns.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = ns.holder.Wait() // killed by design
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = ns.holder.Process.Kill()
		<-done
	}
}

// killTree kills pid's descendants, deepest first, then pid itself. It reads
// /proc/PID/task/*/children, which sees through PID namespaces.
func killTree(pid int) error {
	for _, child := range children(pid, 0) {
		_ = syscall.Kill(child, syscall.SIGKILL) // it may have exited already
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

func children(pid, depth int) []int {
	if depth > 16 {
		return nil
	}
	var out []int
	for _, c := range directChildren(pid) {
		out = append(out, children(c, depth+1)...)
		out = append(out, c)
	}
	return out
}

func directChildren(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// holderMain is PID 1 of a namespace: it finishes the setup that must
// happen inside, says "ready", then reaps orphans until stdin closes.
func holderMain() {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "e2e holder: %s: %v\n", what, err)
		os.Exit(1)
	}
	// Go already made / private when it unshared the mount namespace;
	// repeat it so that a mount below can never reach the machine.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		fail("making / private", err)
	}
	// A proc for this PID namespace, and a /run of our own for
	// /run/rpcbind.sock, /run/rpcbind.lock and the warm-start files.
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		fail("mounting /proc", err)
	}
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		fail("mounting /run", err)
	}
	// As Debian's tmpfiles.d/rpcbind.conf makes it: rpcbind drops to _rpc
	// and writes its warm-start files there when it exits.
	if err := os.Mkdir("/run/rpcbind", 0o755); err != nil {
		fail("creating /run/rpcbind", err)
	}
	if u, err := user.Lookup("_rpc"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown("/run/rpcbind", uid, 0); err != nil {
			fail("chown /run/rpcbind", err)
		}
	}
	ip := exec.Command("ip", "link", "set", "lo", "up")
	ip.Env = cmdEnv
	if out, err := ip.CombinedOutput(); err != nil {
		fail("ip link set lo up: "+string(out), err)
	}
	os.Stdout.WriteString("ready\n")
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // returns when the test closes stdin
		os.Exit(0)
	}()
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(-1, &ws, 0, nil); errors.Is(err, syscall.ECHILD) {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// capBuffer is a goroutine-safe buffer that keeps at most 1 MiB, so that a
// runaway daemon cannot exhaust the test's memory.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const capBufferMax = 1 << 20

func newCapBuffer() *capBuffer { return &capBuffer{} }

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := capBufferMax - b.buf.Len(); room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
