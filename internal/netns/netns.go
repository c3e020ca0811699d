package netns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The namespace's PID 1 is the creating program re-executed with holderEnv
// set; sysctlEnv carries the settings it writes for the namespace.
const (
	holderEnv   = "PORTMAPD_NETNS_HOLDER"
	holderMagic = "pid1"
	sysctlEnv   = "PORTMAPD_NETNS_SYSCTLS"
)

// DefaultTimeout bounds every command Run runs.
const DefaultTimeout = 30 * time.Second

// holderReadyTimeout bounds the holder's setup.
const holderReadyTimeout = 10 * time.Second

// Env is the default environment of commands in a namespace: C locale, so
// that messages are the same on every machine, and a PATH with the sbin
// directories where Debian installs rpcbind and ip.
var Env = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C",
	"HOME=/",
}

// Options shape a namespace.
type Options struct {
	// Env is the whole environment of the commands run inside; nil means
	// Env.
	Env []string
	// Sysctls are written by the holder before it reports ready, keyed by
	// their path under /proc/sys ("net/ipv4/tcp_tw_reuse"). Only the
	// network namespace's own settings belong here: the rest are the
	// machine's.
	Sysctls map[string]string
}

// Namespace is a private network, mount and PID namespace: its own
// loopback interface, a fresh tmpfs on /run and its own process tree.
type Namespace struct {
	holder *exec.Cmd
	stdin  io.Closer
	stderr *capBuffer
	env    []string

	mu     sync.Mutex
	procs  []*Proc
	closed bool
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

// Available reports why namespaces cannot be made here, or nil: it needs
// root, nsenter (util-linux) and ip (iproute2).
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root to create network/mount/PID namespaces")
	}
	for _, tool := range []string{"nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (needs util-linux and iproute2)", tool)
		}
	}
	return nil
}

// New creates a namespace; Close ends it and everything in it. The
// creating program must call Main first thing (see the package comment).
// A kernel that refuses namespaces gives an error wrapping EPERM or
// EINVAL.
func New(opts Options) (*Namespace, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program: %w", err)
	}
	ns := &Namespace{stderr: newCapBuffer(), env: opts.Env}
	if ns.env == nil {
		ns.env = Env
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), holderEnv+"="+holderMagic, sysctlEnv+"="+encodeSysctls(opts.Sysctls))
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
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = ns.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the namespace holder: %w", err)
	}
	ns.holder, ns.stdin = cmd, stdin

	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			ns.Close()
			return nil, fmt.Errorf("namespace holder failed: %q\n%s", line, ns.stderr.String())
		}
	case <-time.After(holderReadyTimeout):
		ns.Close()
		return nil, fmt.Errorf("namespace holder not ready after %v\n%s", holderReadyTimeout, ns.stderr.String())
	}
	return ns, nil
}

// Pid is the namespace's PID 1 as the machine sees it; nsenter -t Pid enters
// the namespace.
func (ns *Namespace) Pid() int { return ns.holder.Process.Pid }

// HostPath names, from outside, the file at path inside the namespace.
func (ns *Namespace) HostPath(path string) string {
	return fmt.Sprintf("/proc/%d/root%s", ns.Pid(), path)
}

// Command returns argv prepared to run inside the namespace with the
// namespace's environment (cmd.Env may be changed before it starts).
// Cancelling ctx kills what nsenter started as well as nsenter.
func (ns *Namespace) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"-t", strconv.Itoa(ns.Pid()), "-n", "-m", "-p", "--wd=/", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = ns.env
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
	cmd := ns.Command(ctx, argv...)
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

// Proc is a command running in the background: inside a namespace,
// started by Namespace.Start through nsenter, or a daemon that a program
// already inside one started with Spawn.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	direct bool // started by Spawn, without nsenter
	stdout *capBuffer
	stderr *capBuffer
	done   chan struct{}
	err    error
}

func newProc(name string, cmd *exec.Cmd) *Proc {
	p := &Proc{Name: name, cmd: cmd, stdout: newCapBuffer(), stderr: newCapBuffer(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	return p
}

func (p *Proc) start() error {
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// Start runs argv in the background inside the namespace. It is stopped at
// the latest when the namespace is closed.
func (ns *Namespace) Start(name string, argv ...string) (*Proc, error) {
	p := newProc(name, ns.Command(context.Background(), argv...))
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return nil, fmt.Errorf("starting %s: the namespace is closed", name)
	}
	if err := p.start(); err != nil {
		return nil, err
	}
	ns.procs = append(ns.procs, p)
	return p, nil
}

// Spawn starts argv in the background in this program's own namespaces:
// how a program that runs inside a namespace (the load generator) starts
// the daemon it measures. The process dies with this program rather than
// hold port 111 of the namespace, or of whatever it was started in.
func Spawn(name string, argv ...string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("starting %s: empty command", name)
	}
	p := newProc(name, exec.Command(argv[0], argv[1:]...))
	p.direct = true
	// Its own process group keeps it out of this program's terminal
	// signals; Stop kills what it started as well.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// A child of the daemon that outlives it would hold its output pipes
	// open, and Wait with them.
	p.cmd.WaitDelay = time.Second
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

// Pid is the process started, as this program sees it: nsenter for a
// process started by Namespace.Start (see Inside), the command itself for
// one started by Spawn.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

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

// Inside lists, as the machine sees them, the processes nsenter started
// inside the namespace (the command itself, once it runs); for a process
// started by Spawn, that process.
func (p *Proc) Inside() []int {
	if p.direct {
		return []int{p.Pid()}
	}
	return directChildren(p.Pid())
}

// Signal sends sig to the command nsenter started inside the namespace
// (not to nsenter, which would not pass it on), or to the one Spawn
// started.
func (p *Proc) Signal(sig syscall.Signal) error {
	kids := p.Inside()
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

// Stop kills the process and what it started, and waits (briefly) for it.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = killTree(p.Pid()) // what is left is waited for below
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// Stderr returns what the holder logged: why a namespace failed.
func (ns *Namespace) Stderr() string { return ns.stderr.String() }

// Close stops every process Start started, then ends the namespace and
// whatever else is left in it. Calling it again does nothing.
func (ns *Namespace) Close() {
	ns.mu.Lock()
	procs, closed := ns.procs, ns.closed
	ns.procs, ns.closed = nil, true
	ns.mu.Unlock()
	if closed {
		return
	}
	for _, p := range procs {
		p.Stop()
	}
	// Closing stdin makes the holder exit; the kernel then kills whatever
	// is left in the PID namespace.
	ns.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = ns.holder.Wait() // killed: its status says nothing
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = ns.holder.Process.Kill() // gone meanwhile: done is closed
		<-done
	}
}

// Veth joins two namespaces by a veth pair, nameA in a and nameB in b,
// both down and without addresses. The pair is made in a's network
// namespace with its peer moved to b's; both ends go away with their
// namespaces.
func Veth(a, b *Namespace, nameA, nameB string) error {
	// Only a's network namespace is entered, so that b's PID means the
	// same as in this process.
	link := exec.Command("nsenter", "-t", strconv.Itoa(a.Pid()), "-n", "--",
		"ip", "link", "add", nameA, "type", "veth", "peer", "name", nameB, "netns", strconv.Itoa(b.Pid()))
	link.Env = a.env
	if out, err := link.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(link.Args, " "), err, out)
	}
	return nil
}

// killTree kills pid's descendants, deepest first, then pid itself. It reads
// /proc/PID/task/*/children, which sees through PID namespaces.
func killTree(pid int) error {
	for _, child := range children(pid, 0) {
		_ = syscall.Kill(child, syscall.SIGKILL) // a child gone already is fine
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

// Main must be called first thing by a program that creates namespaces
// (from main, or from TestMain in a test binary). In a namespace's PID 1,
// the program re-executed by New, it never returns: it sets the namespace
// up, says so, and reaps orphans until its creator closes its stdin (or
// exits). Anywhere else it returns at once.
func Main() {
	if os.Getenv(holderEnv) != holderMagic {
		return
	}
	if err := setup(os.Getenv(sysctlEnv)); err != nil {
		fmt.Fprintf(os.Stderr, "netns holder: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent goes
		os.Exit(0)
	}()
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(-1, &ws, 0, nil); errors.Is(err, syscall.ECHILD) {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// setup finishes, as the namespace's PID 1, what must happen inside: its
// own /proc and /run, /run/rpcbind for rpcbind, loopback up and the
// sysctls. It refuses anywhere but PID 1 of a fresh PID namespace, where
// its mounts and settings would be the machine's.
func setup(sysctls string) error {
	if os.Getpid() != 1 {
		return errors.New("refusing to set up a namespace: not PID 1 of a private PID namespace (netns.New makes one)")
	}
	// Go already made / private when it unshared the mount namespace;
	// repeat it so that a mount below can never reach the machine.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	// A proc for this PID namespace, and a /run of our own for
	// /run/rpcbind.sock, /run/rpcbind.lock and the warm-start files.
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting /run: %w", err)
	}
	// As Debian's tmpfiles.d/rpcbind.conf makes it: rpcbind drops to _rpc
	// and writes its warm-start files there when it exits.
	if err := os.Mkdir("/run/rpcbind", 0o755); err != nil {
		return fmt.Errorf("creating /run/rpcbind: %w", err)
	}
	if u, err := user.Lookup("_rpc"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown("/run/rpcbind", uid, 0); err != nil {
			return fmt.Errorf("chown /run/rpcbind: %w", err)
		}
	}
	ip := exec.Command("ip", "link", "set", "lo", "up")
	ip.Env = Env
	if out, err := ip.CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %w: %s", err, out)
	}
	settings, err := decodeSysctls(sysctls)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		if err := os.WriteFile(filepath.Join("/proc/sys", name), []byte(settings[name]), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", name, err)
		}
	}
	return nil
}

// encodeSysctls renders settings for the holder's environment, one
// "name=value" a line.
func encodeSysctls(settings map[string]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "%s=%s\n", name, settings[name])
	}
	return b.String()
}

// decodeSysctls reads encodeSysctls's lines; a name that would leave
// /proc/sys is refused.
func decodeSysctls(s string) (map[string]string, error) {
	settings := map[string]string{}
	for line := range strings.Lines(s) {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok || !filepath.IsLocal(name) {
			return nil, fmt.Errorf("bad sysctl %q", line)
		}
		settings[name] = value
	}
	return settings, nil
}

// capBuffer is a goroutine-safe buffer that keeps at most 1 MiB, so that a
// runaway process cannot exhaust the caller's memory.
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
