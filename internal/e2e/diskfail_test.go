package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
)

// The state directory inside each disk test's namespace.
const failDir = "/run/pmstate"

// diskRig is a warm-start portmapd in a namespace of its own whose state
// directory is a filesystem the test fills, remounts or breaks. It keeps
// what the daemon acknowledged, to compare with the table after a kill.
type diskRig struct {
	t     *testing.T
	ns    *Namespace
	d     *Daemon
	acked map[pmap.Mapping]bool // true: registered; false: removed
	next  uint32
}

// newDiskRig runs setup (commands that make failDir) in a new namespace,
// then starts the daemon.
func newDiskRig(t *testing.T, setup ...[]string) *diskRig {
	t.Helper()
	RequireNamespaces(t)
	PortmapdPath(t)
	r := &diskRig{t: t, ns: NewNamespace(t), acked: map[pmap.Mapping]bool{}, next: 0x31000000}
	for _, argv := range setup {
		r.run(argv...)
	}
	r.start()
	return r
}

func (r *diskRig) start() {
	r.t.Helper()
	r.d = StartDaemonIn(r.t, r.ns, Portmapd("--warm-start", "--state-dir", failDir, "--log-level", "info"))
}

// run runs a command in the namespace and fails the test if it fails.
func (r *diskRig) run(argv ...string) {
	r.t.Helper()
	if out := r.ns.Run(0, argv...); out.Exit != 0 || out.Err != "" {
		r.t.Fatalf("%s: %s\n%s%s", strings.Join(argv, " "), out.Status(), out.Stdout, out.Stderr)
	}
}

// call runs f with a client on the daemon's local socket.
func (r *diskRig) call(f func(ctx context.Context, c *client.Client) error) error {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", r.ns.HostPath("/run/rpcbind.sock"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	return f(ctx, c)
}

// set registers a new mapping and records it if acknowledged.
func (r *diskRig) set() (pmap.Mapping, error) {
	r.t.Helper()
	r.next++
	m := pmap.Mapping{Prog: r.next, Vers: 1, Netid: "tcp", Addr: fmt.Sprintf("0.0.0.0.%d.%d", 40+r.next%100, r.next%256)}
	err := r.call(func(ctx context.Context, c *client.Client) error {
		ok, err := c.Set(ctx, m)
		if err == nil && !ok {
			r.t.Fatalf("SET %v answered FALSE", m)
		}
		return err
	})
	if err == nil {
		r.acked[m] = true
	}
	return m, err
}

// unset removes m and records it if acknowledged.
func (r *diskRig) unset(m pmap.Mapping) error {
	r.t.Helper()
	err := r.call(func(ctx context.Context, c *client.Client) error {
		_, err := c.Unset(ctx, m.Prog, m.Vers, m.Netid)
		return err
	})
	if err == nil {
		r.acked[m] = false
	}
	return err
}

func (r *diskRig) mustSet(what string) pmap.Mapping {
	r.t.Helper()
	m, err := r.set()
	if err != nil {
		r.t.Fatalf("%s: SET %v: %v\nstderr:\n%s", what, m, err, r.d.Stderr())
	}
	return m
}

// refused checks that err is SYSTEM_ERR.
func (r *diskRig) refused(what string, err error) {
	r.t.Helper()
	var re *rpc.ReplyError
	if !errors.As(err, &re) || re.Denied || re.Accept != rpc.SystemErr {
		r.t.Fatalf("%s: answered %v, want SYSTEM_ERR\nstderr:\n%s", what, err, r.d.Stderr())
	}
}

// table returns the daemon's rows, the portmapper's own left out, owners
// cleared.
func (r *diskRig) table() map[pmap.Mapping]bool {
	r.t.Helper()
	var rows []pmap.Mapping
	if err := r.call(func(ctx context.Context, c *client.Client) (err error) {
		rows, err = c.Dump(ctx)
		return err
	}); err != nil {
		r.t.Fatal(err)
	}
	have := map[pmap.Mapping]bool{}
	for _, m := range rows {
		if m.Prog != pmap.Program {
			m.Owner = ""
			have[m] = true
		}
	}
	return have
}

// agrees checks that the table holds exactly the acknowledged rows: no
// refused change stayed in it, and lookups are answered.
func (r *diskRig) agrees(when string) {
	r.t.Helper()
	have := r.table()
	n := 0
	for m, present := range r.acked {
		if present {
			n++
		}
		if have[m] != present {
			r.t.Errorf("%s: the table has %v: %v; acknowledged: %v", when, m, have[m], present)
		}
	}
	if len(have) != n {
		r.t.Errorf("%s: the table holds %d rows, %d acknowledged: %v", when, len(have), n, have)
	}
}

// killAndRestart kills the daemon with SIGKILL, starts it again on the
// same state directory, and checks that it holds exactly what was
// acknowledged.
func (r *diskRig) killAndRestart(when string) {
	r.t.Helper()
	if err := r.d.Proc.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	if !r.d.Proc.Wait(5 * time.Second) {
		r.t.Fatal("the daemon outlived SIGKILL")
	}
	r.start()
	r.agrees(when + ", after kill -9 and a restart")
}

// failuresLogged counts the daemon's log lines about taking changes back.
func (r *diskRig) failuresLogged() int {
	return strings.Count(r.d.Stderr(), "cannot make registrations durable")
}

// A full state filesystem: a change that cannot be written is refused
// with SYSTEM_ERR and taken back, lookups go on, a flood of refusals is
// logged once, and changes are durable again as soon as there is room.
func TestDiskFullRefusesAndRecovers(t *testing.T) {
	r := newDiskRig(t,
		[]string{"mkdir", "-p", failDir},
		[]string{"mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", failDir})
	kept := r.mustSet("before the disk fills")
	r.mustSet("before the disk fills")

	// Fill the filesystem from outside the daemon.
	filler := r.ns.HostPath(failDir + "/filler")
	f, err := os.OpenFile(filler, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	for range 1000 {
		if _, err := f.Write(block); err != nil {
			break
		}
	}
	f.Close()
	// The journal's last page may still have room for a few records:
	// SETs succeed until it is full, then every one is refused.
	refusals := 0
	for range 200 {
		m, err := r.set()
		if err == nil {
			continue
		}
		r.refused(fmt.Sprintf("SET %v on a full disk", m), err)
		refusals++
		if refusals == 20 {
			break
		}
	}
	if refusals < 20 {
		t.Fatalf("only %d of 200 SETs refused on a full disk", refusals)
	}
	r.refused("UNSET on a full disk", r.unset(kept))
	r.acked[kept] = true // refused: still registered
	r.agrees("with the disk full")
	if n := r.failuresLogged(); n != 1 {
		t.Errorf("%d log lines for %d refusals, want 1 (rate-limited)", n, refusals)
	}
	r.killAndRestart("with the disk full")

	// Room again: the next change saves the whole table by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r.mustSet("once there is room")
	if err := r.unset(kept); err != nil {
		t.Fatalf("UNSET once there is room: %v", err)
	}
	r.killAndRestart("after the disk emptied")
}

// A read-only state filesystem: a remount read-only before the first
// write, and a read-only filesystem mounted over the directory while the
// journal is open (what the daemon sees when the directory it writes into
// is replaced). Both refuse, both recover once writable again.
func TestReadOnlyStateRefusesAndRecovers(t *testing.T) {
	r := newDiskRig(t,
		[]string{"mkdir", "-p", failDir},
		[]string{"mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", failDir})
	r.run("mount", "-o", "remount,ro", failDir)
	m, err := r.set()
	r.refused(fmt.Sprintf("SET %v on a read-only filesystem", m), err)
	r.agrees("read-only")
	r.run("mount", "-o", "remount,rw", failDir)
	r.mustSet("writable again")
	r.killAndRestart("after a read-only remount")

	r.mustSet("journal open")
	r.run("mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0700", "tmpfs", failDir)
	for i := range 3 {
		m, err := r.set()
		r.refused(fmt.Sprintf("SET %d (%v) with a read-only filesystem over the directory", i, m), err)
	}
	r.agrees("read-only filesystem over the directory")
	r.run("umount", failDir)
	r.mustSet("the directory back")
	r.killAndRestart("after a read-only filesystem over the directory")
}

// An I/O error: the state directory is an ext2 filesystem on a loop
// device whose backing file the test shrinks to nothing (every write then
// fails with EIO, as on a dying disk) and then gives back.
func TestIOErrorRefusesAndRecovers(t *testing.T) {
	for _, tool := range []string{"losetup", "mkfs.ext2"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices here")
	}
	const img, saved = "/run/pmimg/fs.img", "/run/pmimg/saved.img"
	r := newDiskRig(t,
		[]string{"mkdir", "-p", "/run/pmimg", failDir},
		[]string{"mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", "/run/pmimg"},
		[]string{"truncate", "-s", "8M", img},
		[]string{"mkfs.ext2", "-q", "-F", img},
		// mount -o loop detaches the device when the namespace goes.
		[]string{"mount", "-o", "loop,errors=continue", img, failDir},
		[]string{"chmod", "0700", failDir})
	out := r.ns.Run(0, "findmnt", "-n", "-o", "SOURCE", failDir)
	dev := strings.TrimSpace(out.Stdout)
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("state directory on %q, want a loop device", dev)
	}
	r.mustSet("before the error")
	kept := r.mustSet("before the error")

	// The device fails: its backing file is saved, then emptied, and the
	// loop device told its new size.
	r.run("sync", "-f", failDir+"/.")
	r.run("cp", "--sparse=always", img, saved)
	r.run("truncate", "-s", "0", img)
	r.run("losetup", "-c", dev)
	for i := range 3 {
		m, err := r.set()
		r.refused(fmt.Sprintf("SET %d (%v) on a failing device", i, m), err)
	}
	r.refused("UNSET on a failing device", r.unset(kept))
	r.acked[kept] = true
	r.agrees("with the device failing")
	if !strings.Contains(r.d.Stderr(), "input/output error") {
		t.Errorf("the daemon's log does not name the I/O error:\n%s", r.d.Stderr())
	}

	// The device comes back.
	r.run("cp", "--sparse=always", saved, img)
	r.run("losetup", "-c", dev)
	r.mustSet("the device back")
	if err := r.unset(kept); err != nil {
		t.Fatalf("UNSET with the device back: %v", err)
	}
	r.killAndRestart("after the device came back")
}
