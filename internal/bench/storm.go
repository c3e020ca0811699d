package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Storm loads: every call on a connection of its own, opened, asked once
// and closed, as mount.nfs, the kernel's rpcbind client, rpcinfo and
// libtirpc's clnt_create and rpcb_getaddr do. When a cluster boots or an
// automounter fires, this is how port 111 is hit hardest.
const (
	StormGetportTCP  = "storm-getport-tcp"  // PMAP v2 GETPORT
	StormGetaddrTCP  = "storm-getaddr-tcp"  // RPCBIND v4 GETADDR
	StormGetaddrUnix = "storm-getaddr-unix" // v4 GETADDR over the local socket
)

// StormLoads lists the storm loads in the order a storm run drives them.
var StormLoads = []string{StormGetportTCP, StormGetaddrTCP, StormGetaddrUnix}

func init() {
	loadDesc[StormGetportTCP] = "PMAP v2 GETPORT, a new TCP connection per call"
	loadDesc[StormGetaddrTCP] = "RPCBIND v4 GETADDR, a new TCP connection per call"
	loadDesc[StormGetaddrUnix] = "RPCBIND v4 GETADDR, a new local-socket connection per call"
}

// StormConfig says what a storm run measures. A storm run spawns the daemon
// afresh, takes its idle RSS, registers Registrations programs and drives
// every load at every client count.
type StormConfig struct {
	Name    string
	Daemon  []string
	Address string // host:port of UDP (readiness) and TCP
	Socket  string // the local socket; also where registrations go
	// Registrations is the table size (0 for a responder that takes none).
	Registrations int
	Loads         []string
	Clients       []int
	Duration      time.Duration
	Warmup        time.Duration
	Timeout       time.Duration
	MaxRequests   int
	Progress      func(format string, args ...any)
}

// StormResult is one storm load at one client count.
type StormResult struct {
	LoadResult
	// PeakRSSKB is the daemon's largest RSS during the load (VmHWM, reset
	// before it).
	PeakRSSKB int64 `json:"peak_rss_kb,omitempty"`
	// P99ReadUs is p99 of the time to when the client's loop read each
	// reply. The latencies of LoadResult end when the reply reached the
	// client's socket, where the kernel says when that was (TCP); the
	// difference is the load generator's own delay, which falls on the
	// faster daemon (see stormLoop.record).
	P99ReadUs float64 `json:"p99_read_us,omitempty"`
}

// StormRun is what a storm run measured of one daemon.
type StormRun struct {
	Registrations int           `json:"registrations"`
	RSSIdleKB     int64         `json:"rss_idle_kb,omitempty"`
	Results       []StormResult `json:"results"`
}

// maxStormClients bounds the concurrent connections of one storm load.
const maxStormClients = 4096

// RunStorm drives cfg's storms against a fresh daemon.
func RunStorm(ctx context.Context, cfg StormConfig) (*StormRun, error) {
	for _, n := range cfg.Clients {
		if n < 1 || n > maxStormClients {
			return nil, fmt.Errorf("storm clients: %d is not between 1 and %d", n, maxStormClients)
		}
	}
	if cfg.Duration <= 0 || cfg.Timeout <= 0 || cfg.MaxRequests <= 0 {
		return nil, errors.New("storm: duration, timeout and request count must be positive")
	}
	release, err := keepStamping()
	if err != nil {
		return nil, err
	}
	defer release()
	p, started, err := spawn(cfg.Daemon)
	if err != nil {
		return nil, err
	}
	// A daemon that had to be killed has served its storms all the same.
	defer func() { _ = stopDaemon(p) }()
	if _, err := waitReady(ctx, p, started, cfg.Address); err != nil {
		return nil, err
	}
	pid := p.Pid()
	run := &StormRun{Registrations: cfg.Registrations}
	if run.RSSIdleKB, err = idleRSS(ctx, pid); err != nil {
		return run, err
	}
	if cfg.Registrations > 0 {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := changeRange(rctx, "unix", cfg.Socket, pmap.ProcSet, 0, cfg.Registrations, cfg.Timeout)
		cancel()
		if err == nil {
			err = registerStormProg(cfg.Socket, cfg.Timeout)
		}
		if err != nil {
			return run, fmt.Errorf("registering %d: %w", cfg.Registrations, err)
		}
	}
	for _, n := range cfg.Clients {
		for _, load := range cfg.Loads {
			spec, ok := stormSpecs[load]
			if !ok {
				return run, fmt.Errorf("unknown storm load %q (known: %v)", load, StormLoads)
			}
			if cfg.Warmup > 0 {
				if _, err := storm(ctx, &cfg, spec, load, n, cfg.Warmup, 0); err != nil {
					return run, err
				}
			}
			r, err := storm(ctx, &cfg, spec, load, n, cfg.Duration, pid)
			run.Results = append(run.Results, r)
			if err != nil {
				return run, err
			}
			if cfg.Progress != nil {
				line := fmt.Sprintf("%-18s %4d clients: %8.0f calls/s  p99 %8.1f µs  errors %d  cpu %.2f µs/call  peak RSS %d kB",
					load, n, r.PerSecond, r.P99us, r.Errors, r.DaemonCPUus, r.PeakRSSKB)
				if r.FirstError != "" {
					line += "  first error: " + r.FirstError
				}
				cfg.Progress("%s", line)
			}
		}
	}
	return run, nil
}

// stormSpec is how a storm load connects and what it asks.
type stormSpec struct {
	unix bool   // the local socket, else TCP
	vers uint32 // pmap.VersPMAP (GETPORT) or pmap.VersRPCB4 (GETADDR)
}

var stormSpecs = map[string]stormSpec{
	StormGetportTCP:  {vers: pmap.VersPMAP},
	StormGetaddrTCP:  {vers: pmap.VersRPCB4},
	StormGetaddrUnix: {unix: true, vers: pmap.VersRPCB4},
}

// stormProg is what every storm call asks about: the first registration,
// as a mount storm asks about mountd, over and over. Its port is
// portOf(0). GETADDR looks a program up on the transport the call came
// in on, so it is registered on "tcp" and "local" as well, the latter at
// stormLocalAddr.
const (
	stormProg      = progRegistered
	stormLocalAddr = "/run/storm-service.sock"
)

// registerStormProg adds stormProg's "tcp" and "local" entries.
func registerStormProg(socket string, timeout time.Duration) error {
	c := caller{t: newStreamTransport("unix", socket, timeout)}
	defer c.t.close()
	for _, e := range [][2]string{{rpc.NetidTCP, uaddrOf(portOf(0))}, {rpc.NetidLocal, stormLocalAddr}} {
		b := c.begin(pmap.VersRPCB3, pmap.ProcSet)
		d, err := c.finish(appendRpcb(b, stormProg, benchVers, e[0], e[1]))
		if err != nil {
			return err
		}
		if ok, err := d.Bool(); err != nil || !ok {
			return fmt.Errorf("SET of %s on %s: %w", uaddrOf(portOf(0)), e[0], errRefused)
		}
	}
	return nil
}

// stormCall encodes the call a storm client sends, record mark included.
// The XID is at offset rpc.RecordHeaderLen and is rewritten per call.
func stormCall(vers uint32) []byte {
	b := make([]byte, rpc.RecordHeaderLen, 128)
	if vers == pmap.VersPMAP {
		b = rpc.AppendCall(b, 0, pmap.Program, vers, pmap.ProcGetport, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
		b = pmap.AppendPortMapping(b, &pmap.PortMapping{Prog: stormProg, Vers: benchVers, Prot: pmap.ProtoUDP})
	} else {
		b = rpc.AppendCall(b, 0, pmap.Program, vers, pmap.ProcGetaddr, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
		b = appendRpcb(b, stormProg, benchVers, rpc.NetidUDP, "")
	}
	return rpc.MarkRecord(b)
}

// checkStormReply checks a reply record (without its mark) to a storm call.
func checkStormReply(msg []byte, xid uint32, spec stormSpec) error {
	var d xdr.Decoder
	d.Reset(msg)
	if got, err := d.Uint32(); err != nil || got != xid {
		return fmt.Errorf("%w: reply to another call", errWrongAnswer)
	}
	d.Reset(msg)
	if _, err := rpc.ParseReply(&d); err != nil {
		return err
	}
	var port uint32
	if spec.vers == pmap.VersPMAP {
		p, err := d.Uint32()
		if err != nil {
			return err
		}
		port = p
	} else {
		ua, err := d.StringBytes(pmap.MaxWireString)
		if err != nil {
			return err
		}
		if spec.unix {
			if string(ua) != stormLocalAddr {
				return fmt.Errorf("%w: program %#x: address %q, want %q", errWrongAnswer, stormProg, ua, stormLocalAddr)
			}
			return nil
		}
		p, ok := uaddrPort(ua)
		if !ok {
			return fmt.Errorf("%w: malformed address %q", errWrongAnswer, ua)
		}
		port = p
	}
	if port != portOf(0) {
		return fmt.Errorf("%w: program %#x: port %d, want %d", errWrongAnswer, stormProg, port, portOf(0))
	}
	return nil
}

// storm drives one storm load with clients concurrent connections for d
// (or cfg.MaxRequests calls), and measures it; pid > 0 names the daemon
// whose CPU time and peak RSS are read around it.
//
// The clients are not goroutines with net.Conns: on two cores shared with
// the daemon, 512 of those would measure the Go runtime's dialling more
// than the daemon. Instead one event loop per CPU, each on its own thread
// and epoll instance, drives its share of the connections through
// non-blocking system calls: socket, connect, write the call, read the
// reply, close. TCP sockets close with SO_LINGER 0 (a reset), so no
// TIME_WAIT piles up and the storm never runs out of ports.
func storm(ctx context.Context, cfg *StormConfig, spec stormSpec, load string, clients int, d time.Duration, pid int) (StormResult, error) {
	res := StormResult{LoadResult: LoadResult{Name: load, Registrations: cfg.Registrations, Clients: clients}}
	// Each loop gets its own: a unix.Sockaddr keeps its encoded form in
	// itself, written on every connect.
	newSockaddr := func() unix.Sockaddr { return &unix.SockaddrUnix{Name: cfg.Socket} }
	if !spec.unix {
		ta, err := net.ResolveTCPAddr("tcp4", cfg.Address)
		if err != nil {
			return res, err
		}
		newSockaddr = func() unix.Sockaddr {
			a := &unix.SockaddrInet4{Port: ta.Port}
			copy(a.Addr[:], ta.IP.To4())
			return a
		}
	}
	loops := min(runtime.NumCPU(), clients)
	ls := make([]*stormLoop, loops)
	perLoop := max(1, min(cfg.MaxRequests, 4_000_000)/loops)
	for i := range ls {
		n := clients / loops
		if i < clients%loops {
			n++
		}
		ls[i] = &stormLoop{spec: spec, sa: newSockaddr(), timeout: cfg.Timeout, max: perLoop,
			slots: make([]stormSlot, n), lat: make([]time.Duration, 0, perLoop),
			readLat: make([]time.Duration, 0, perLoop),
			call:    stormCall(spec.vers), xid: uint32(i) << 28}
	}
	var cpu0 time.Duration
	if pid > 0 {
		// Writing 5 to clear_refs resets VmHWM, so that the peak read
		// afterwards is this load's.
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) // best effort: the peak is then the process's
		cpu0, _ = procCPU(pid)
	}
	self0 := selfCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { l.run(ctx, deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	self1 := selfCPU()
	if pid > 0 {
		cpu1, _ := procCPU(pid)
		res.DaemonCPUus = us(cpu1-cpu0) / float64(max(1, countCalls(ls)))
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			res.PeakRSSKB, _ = parseStatusKB(b, "VmHWM:")
		}
		res.RSSAfterKB, _ = procRSS(pid)
	}
	lat := make([][]time.Duration, len(ls))
	for i, l := range ls {
		lat[i] = l.lat
		res.Requests += int64(len(l.lat))
		res.Errors += l.errs
		if res.FirstError == "" && l.firstErr != nil {
			res.FirstError = l.firstErr.Error()
		}
		if l.setupErr != nil {
			return res, l.setupErr
		}
	}
	s := summarize(lat)
	for i, l := range ls {
		lat[i] = l.readLat
	}
	res.P99ReadUs = us(summarize(lat).P99)
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(res.Requests) / res.Seconds
	res.P50us, res.P99us, res.P999us, res.MaxUs = us(s.P50), us(s.P99), us(s.P999), us(s.Max)
	if res.Requests > 0 {
		res.ClientCPUus = us(self1-self0) / float64(res.Requests)
	} else {
		res.DaemonCPUus = 0
	}
	return res, ctx.Err()
}

func countCalls(ls []*stormLoop) int {
	n := 0
	for _, l := range ls {
		n += len(l.lat)
	}
	return n
}

// stormLoop is one event loop of storm clients.
type stormLoop struct {
	spec    stormSpec
	sa      unix.Sockaddr
	timeout time.Duration
	max     int // calls to make at most
	call    []byte
	xid     uint32
	slots   []stormSlot
	ep      int

	lat      []time.Duration // every call, failed ones too, to its reply's arrival
	readLat  []time.Duration // the same calls, to when the loop read the reply
	oob      [64]byte        // a recvmsg's ancillary data: the reply's time stamp
	errs     int64
	firstErr error
	setupErr error
}

// stormSlot is one client: the connection of its current call.
type stormSlot struct {
	fd    int // -1 between calls
	xid   uint32
	start time.Time
	sent  bool
	got   int // reply bytes read into rbuf
	// arrived is when the kernel received the reply (TCP; zero until it
	// has, and over the local socket, which stamps nothing).
	arrived time.Time
	rbuf    [128]byte
}

func (l *stormLoop) run(ctx context.Context, deadline time.Time) {
	// The loop's system calls are its whole work: a thread of its own
	// keeps the scheduler out of them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		l.setupErr = fmt.Errorf("epoll: %w", err)
		return
	}
	l.ep = ep
	defer unix.Close(ep)
	for i := range l.slots {
		l.slots[i].fd = -1
	}
	defer func() {
		for i := range l.slots {
			if s := &l.slots[i]; s.fd >= 0 {
				unix.Close(s.fd)
			}
		}
	}()
	for i := range l.slots {
		l.open(i)
	}
	events := make([]unix.EpollEvent, 256)
	lastSweep := time.Now()
	for len(l.lat) < l.max && ctx.Err() == nil {
		n, err := unix.EpollWait(ep, events, 10)
		if err != nil && err != unix.EINTR {
			l.setupErr = fmt.Errorf("epoll_wait: %w", err)
			return
		}
		now := time.Now()
		if !now.Before(deadline) {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			l.event(int(ev.Fd), ev.Events, now)
		}
		if now.Sub(lastSweep) >= 10*time.Millisecond {
			lastSweep = now
			for i := range l.slots {
				if s := &l.slots[i]; s.fd >= 0 && now.Sub(s.start) > l.timeout {
					l.fail(i, now, os.ErrDeadlineExceeded)
				} else if s.fd < 0 {
					l.open(i) // a socket that could not be made earlier
				}
			}
		}
	}
}

// open starts slot i's next call: a non-blocking socket, connected, and
// the call written at once, as a client blocked in connect writes it the
// moment connect returns; on loopback the handshake is over by then.
// Waiting for the loop to come round with EPOLLOUT first would add the
// loop's own backlog (the other slots' work) to every call: the load
// generator's time, not the daemon's. The socket is then watched
// edge-triggered for the reply and, if the call could not be written yet,
// for the end of the handshake: one registration serves the whole call.
func (l *stormLoop) open(i int) {
	s := &l.slots[i]
	s.start, s.sent, s.got, s.arrived = time.Now(), false, 0, time.Time{}
	l.xid++
	s.xid = l.xid
	domain := unix.AF_INET
	if l.spec.unix {
		domain = unix.AF_UNIX
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.record(s.start, time.Time{}, time.Now(), fmt.Errorf("socket: %w", err))
		return
	}
	if !l.spec.unix {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		// Without the stamp the call is timed to its read, as over the
		// local socket.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}
	s.fd = fd
	if err := unix.Connect(fd, l.sa); err != nil && err != unix.EINPROGRESS {
		l.end(i, time.Now(), fmt.Errorf("connect: %w", err))
		return
	}
	watch := uint32(unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET)
	switch err := l.send(i); {
	case errors.Is(err, unix.EAGAIN):
		watch |= unix.EPOLLOUT // still connecting: EPOLLOUT says when it is done
	case err != nil:
		l.end(i, time.Now(), err)
		return
	}
	ev := unix.EpollEvent{Events: watch, Fd: int32(i)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.end(i, time.Now(), fmt.Errorf("epoll_ctl: %w", err))
	}
}

// send writes slot i's call. EAGAIN, returned bare, means the connection
// is not established yet.
func (l *stormLoop) send(i int) error {
	s := &l.slots[i]
	binary.BigEndian.PutUint32(l.call[rpc.RecordHeaderLen:], s.xid)
	n, err := unix.Write(s.fd, l.call)
	switch {
	case err == unix.EAGAIN:
		return err
	case err != nil:
		return fmt.Errorf("write: %w", err)
	case n != len(l.call):
		return errors.New("write: short")
	}
	s.sent = true
	return nil
}

func (l *stormLoop) event(i int, events uint32, now time.Time) {
	if i < 0 || i >= len(l.slots) {
		return
	}
	s := &l.slots[i]
	if s.fd < 0 {
		return
	}
	if !s.sent {
		if events&unix.EPOLLERR != 0 {
			serr, _ := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			l.fail(i, now, fmt.Errorf("connect: %w", unix.Errno(serr)))
			return
		}
		if events&unix.EPOLLOUT == 0 {
			return
		}
		if err := l.send(i); errors.Is(err, unix.EAGAIN) {
			return
		} else if err != nil {
			l.fail(i, now, err)
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	for {
		n, err := l.read(s)
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil {
			l.fail(i, now, fmt.Errorf("read: %w", err))
			return
		}
		if n == 0 {
			l.fail(i, now, errors.New("connection closed before the reply"))
			return
		}
		s.got += n
		if s.got < rpc.RecordHeaderLen {
			continue
		}
		mark := binary.BigEndian.Uint32(s.rbuf[:])
		size := int(mark &^ (1 << 31))
		if mark>>31 == 0 || rpc.RecordHeaderLen+size > len(s.rbuf) {
			l.fail(i, now, fmt.Errorf("%w: reply record of %d bytes", errWrongAnswer, size))
			return
		}
		if s.got < rpc.RecordHeaderLen+size {
			continue
		}
		err = checkStormReply(s.rbuf[rpc.RecordHeaderLen:rpc.RecordHeaderLen+size], s.xid, l.spec)
		l.finish(i, now, err)
		return
	}
}

// read reads what has come of s's reply into s.rbuf and notes when the
// kernel received it, if it says.
func (l *stormLoop) read(s *stormSlot) (int, error) {
	if l.spec.unix {
		return unix.Read(s.fd, s.rbuf[s.got:])
	}
	n, oobn, _, _, err := unix.Recvmsg(s.fd, s.rbuf[s.got:], l.oob[:], 0)
	if n > 0 {
		if t, ok := receivedAt(l.oob[:oobn]); ok {
			s.arrived = t
		}
	}
	return n, err
}

// receivedAt returns the time stamp (SCM_TIMESTAMPNS) in a recvmsg's
// ancillary data oob.
func receivedAt(oob []byte) (time.Time, bool) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return time.Time{}, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(data))
			nsec := int64(binary.NativeEndian.Uint64(data[8:]))
			return time.Unix(sec, nsec), true
		}
		oob = rest
	}
	return time.Time{}, false
}

// keepStamping holds a socket that asks for receive time stamps until
// release is called. The kernel stamps packets only while some socket
// wants stamps, and turns stamping on a moment after the first one asks
// (net_enable_timestamp defers it to a work queue), so a storm whose own
// sockets come and go would find it off at times and time those calls to
// the read. A socket held from before the daemon starts keeps it on.
func keepStamping() (release func(), err error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("time stamps: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("time stamps: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

// fail ends slot i's call as an error and starts its next one.
func (l *stormLoop) fail(i int, now time.Time, err error) { l.finish(i, now, err) }

// finish ends slot i's call and starts its next one.
func (l *stormLoop) finish(i int, now time.Time, err error) {
	l.end(i, now, err)
	if len(l.lat) < l.max {
		l.open(i)
	}
}

// end closes slot i's connection and records its call. A call that fails
// while it is being opened ends here without starting the next one, which
// the loop's next sweep does: a refused storm then retries every few
// milliseconds instead of recursing.
func (l *stormLoop) end(i int, now time.Time, err error) {
	s := &l.slots[i]
	if s.fd >= 0 {
		unix.Close(s.fd) // also takes it out of the epoll set
		s.fd = -1
	}
	l.record(s.start, s.arrived, now, err)
}

// record counts a call that began at start, whose reply reached the
// client's socket at arrived (zero if unknown) and which the loop read or
// gave up on at now. Its latency ends at arrived where known: the time
// from there to now is the loop's, busy with its other connections or
// waiting for a CPU. On two CPUs shared with the daemon that delay grows
// with the daemon's speed, as a faster daemon leaves the clients more
// calls to make; timing to now would charge it to the faster daemon.
func (l *stormLoop) record(start, arrived, now time.Time, err error) {
	if len(l.lat) < cap(l.lat) {
		end := now
		if arrived.After(start) && arrived.Before(now) {
			end = arrived
		}
		l.lat = append(l.lat, end.Sub(start))
		l.readLat = append(l.readLat, now.Sub(start))
	}
	if err != nil {
		if l.errs == 0 {
			l.firstErr = err
		}
		l.errs++
	}
}
