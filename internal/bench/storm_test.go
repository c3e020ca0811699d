package bench

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/pmap"
)

// A storm against a spawned portmapd: every load at a client count gets
// answers (checked), no errors, the daemon's CPU time and peak RSS, and
// the daemon holds no connection afterwards that the storm opened.
func TestStormAgainstSpawnedDaemon(t *testing.T) {
	port, sock := lendPort(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	run, err := RunStorm(context.Background(), StormConfig{
		Name: "spawned", Daemon: []string{self}, Address: "127.0.0.1:" + strconv.Itoa(port), Socket: sock,
		Registrations: 20, Loads: StormLoads, Clients: []int{8}, Duration: 300 * time.Millisecond,
		Timeout: time.Second, MaxRequests: 1_000_000,
		Progress: func(format string, args ...any) { progress.WriteString(strings.TrimSpace(format) + "\n") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.RSSIdleKB <= 0 {
		t.Errorf("idle RSS %d kB", run.RSSIdleKB)
	}
	if len(run.Results) != len(StormLoads) {
		t.Fatalf("%d results, want %d", len(run.Results), len(StormLoads))
	}
	for _, r := range run.Results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d calls, %d errors (%s)", r.Name, r.Requests, r.Errors, r.FirstError)
		}
		if r.DaemonCPUus <= 0 || r.PeakRSSKB <= 0 || r.P99us <= 0 {
			t.Errorf("%s: CPU %.2f µs/call, peak RSS %d kB, p99 %.1f µs", r.Name, r.DaemonCPUus, r.PeakRSSKB, r.P99us)
		}
	}
	if strings.Count(progress.String(), "\n") != len(StormLoads) {
		t.Errorf("progress lines:\n%s", progress.String())
	}
}

// The minimal responder answers every storm load as a portmapper would,
// so the storm checks its answers exactly as it checks a daemon's.
func TestStormAgainstResponder(t *testing.T) {
	tl, pc := daemontest.PortPair(t, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	sock := socketPath(t)
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	addr := tl.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { respondOn(ctx, tl, ul, pc); close(done) }()
	defer func() {
		cancel()
		<-done
	}()
	if _, err := waitReady(ctx, nil, time.Now(), addr); err != nil {
		t.Fatal(err)
	}
	cfg := &StormConfig{Address: addr, Socket: sock, Timeout: time.Second, MaxRequests: 1_000_000}
	for _, load := range StormLoads {
		r, err := storm(ctx, cfg, stormSpecs[load], load, 16, 200*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d calls, %d errors (%s)", load, r.Requests, r.Errors, r.FirstError)
		}
	}
}

// A wrong answer, a reply to another call or a refusal is an error, never
// a fast call.
func TestStormChecksAnswers(t *testing.T) {
	good := fixedReply(nil, 7, pmap.VersPMAP, pmap.ProcGetport, false)
	if err := checkStormReply(good, 7, stormSpecs[StormGetportTCP]); err != nil {
		t.Errorf("the expected answer: %v", err)
	}
	if err := checkStormReply(good, 8, stormSpecs[StormGetportTCP]); err == nil {
		t.Error("a reply to another XID was taken")
	}
	wrongPort := fixedReply(nil, 7, pmap.VersPMAP, pmap.ProcNull, false)
	if err := checkStormReply(append(wrongPort, 0, 0, 0, 9), 7, stormSpecs[StormGetportTCP]); err == nil {
		t.Error("port 9 was taken for the registered port")
	}
	local := fixedReply(nil, 7, pmap.VersRPCB4, pmap.ProcGetaddr, true)
	if err := checkStormReply(local, 7, stormSpecs[StormGetaddrUnix]); err != nil {
		t.Errorf("the local entry's address: %v", err)
	}
	if err := checkStormReply(local, 7, stormSpecs[StormGetaddrTCP]); err == nil {
		t.Error("a path was taken for a TCP address")
	}
}

// The storm table puts each daemon beside the other and beside the
// responder, and says which is better.
func TestFormatStormTable(t *testing.T) {
	mk := func(name string, calls, cpu float64, peak int64) *Result {
		return &Result{Name: name, Storm: &StormRun{Registrations: 20, RSSIdleKB: 4096, Results: []StormResult{{
			LoadResult: LoadResult{Name: StormGetportTCP, Clients: 64, PerSecond: calls, DaemonCPUus: cpu, RSSAfterKB: 1, P99us: 100},
			PeakRSSKB:  peak, P99ReadUs: calls / 100,
		}}}}
	}
	var b bytes.Buffer
	if err := FormatStormTable(&b, mk("portmapd", 20000, 30, 8192), mk("rpcbind", 10000, 60, 6144), mk("responder", 25000, 20, 8192)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// Compared field by field: the columns' widths follow the longest cell.
	var lines []string
	for line := range strings.SplitSeq(out, "\n") {
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	for _, want := range []string{
		"storm-getport-tcp 64 calls/s 20000 10000 2.00 portmapd 25000 0.80",
		"storm-getport-tcp 64 p99 read µs 200.0 100.0 2.00 rpcbind 250.0 0.80",
		"storm-getport-tcp 64 CPU µs/call 30.00 60.00 0.50 portmapd 20.00 1.50",
		"storm-getport-tcp 64 peak RSS MiB 8.0 6.0 1.33 rpcbind 8.0 1.00",
		"idle 0 RSS MiB 4.0 4.0 1.00 ≈ 4.0 1.00",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// A call whose connection is still being set up when the client would
// write it waits for the handshake (EPOLLOUT) and goes out then. Here the
// listener's queue is full when the storm starts, so the client's first
// SYN is dropped and only its retry, about a second later, gets through.
func TestStormWaitsForASlowHandshake(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil { // room for one connection
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	filler, err := net.Dial("tcp4", l.Addr().String()) // the one, never accepted until the storm runs
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	go func() {
		time.Sleep(200 * time.Millisecond)
		answerAll(l)
	}()
	cfg := &StormConfig{Address: l.Addr().String(), Timeout: 5 * time.Second, MaxRequests: 1_000_000}
	r, err := storm(context.Background(), cfg, stormSpecs[StormGetportTCP], StormGetportTCP, 1, 1500*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 2 || r.Errors != 0 {
		t.Fatalf("%d calls, %d errors (%s)", r.Requests, r.Errors, r.FirstError)
	}
	if r.MaxUs < 500_000 {
		t.Errorf("the slowest call took %.0f µs: none waited for a retried handshake", r.MaxUs)
	}
}

// A call is timed to when its reply reached the client's socket, by the
// kernel's stamp, not to when the client's loop came round to read it:
// that delay is the load generator's. The time to the read is kept
// beside it.
func TestStormTimesTheReplysArrival(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go answerAll(ln)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	release, err := keepStamping()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	port := ln.Addr().(*net.TCPAddr).Port
	const calls = 1000
	l := &stormLoop{spec: stormSpecs[StormGetportTCP], sa: &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}},
		timeout: 5 * time.Second, max: calls, slots: make([]stormSlot, 1), ep: ep,
		lat: make([]time.Duration, 0, calls), readLat: make([]time.Duration, 0, calls), call: stormCall(pmap.VersPMAP)}
	// call makes one call, read late after its reply has come, and says
	// how long the reply had been there when it was (by the test's clock).
	call := func(late time.Duration) (replied time.Duration) {
		t.Helper()
		before := time.Now()
		l.max = len(l.lat) + 1 // no next call
		l.open(0)
		fd := l.slots[0].fd
		if fd < 0 {
			t.Fatalf("no connection: %v", l.firstErr)
		}
		if n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 5000); n != 1 || err != nil {
			t.Fatalf("no reply: poll %d, %v", n, err)
		}
		replied = time.Since(before)
		time.Sleep(late)
		l.event(0, unix.EPOLLIN, time.Now())
		if l.errs != 0 {
			t.Fatalf("%d errors (%v)", l.errs, l.firstErr)
		}
		return replied
	}
	// The kernel starts stamping a moment after it is first asked to,
	// from a work queue, which a busy machine may leave waiting.
	waited := time.Now()
	for len(l.lat) < calls-1 && time.Since(waited) < 10*time.Second {
		if call(0); !l.slots[0].arrived.IsZero() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l.slots[0].arrived.IsZero() {
		t.Fatalf("no reply stamped in %d calls over %v", len(l.lat), time.Since(waited))
	}
	const late = 50 * time.Millisecond // the loop is busy elsewhere
	replied := call(late)
	last := len(l.lat) - 1
	if l.lat[last] > replied {
		t.Errorf("timed at %v, after the reply had arrived (%v)", l.lat[last], replied)
	}
	if wait := l.readLat[last] - l.lat[last]; wait < late {
		t.Errorf("read %v after the arrival, though the loop came to it %v late", wait, late)
	}
}
