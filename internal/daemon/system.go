package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portmapd/portmapd/internal/access"
	"github.com/portmapd/portmapd/internal/activation"
	"github.com/portmapd/portmapd/internal/lockfile"
	"github.com/portmapd/portmapd/internal/metrics"
	"github.com/portmapd/portmapd/internal/netwatch"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
)

// Running as the system daemon: one instance per lock file, sockets passed
// by systemd, readiness and watchdog, SIGHUP and SIGUSR1, metrics, and
// addresses that come and go.

// System is the part of Config about the daemon's place in the system.
type System struct {
	// LockPath, if set, is the lock file that keeps a second instance
	// from starting.
	LockPath string
	// RpcbindLockPath, if set, is rpcbind's lock file (lockfile.
	// RpcbindPath), taken as rpcbind takes it, so that a real rpcbind
	// and portmapd each refuse to start while the other runs.
	RpcbindLockPath string
	// MetricsAddr, if set, serves Prometheus metrics over HTTP there;
	// only loopback unless MetricsAnyAddr.
	MetricsAddr    string
	MetricsAnyAddr bool
	// LogLevel, if set, is changed by a reload.
	LogLevel *zap.AtomicLevel
	// Reload, if set, is called on SIGHUP for the new configuration; its
	// access lists and log level are applied without a restart.
	Reload func() (Policy, zapcore.Level, error)
}

// systemState is the Daemon's share of running as a system service.
type systemState struct {
	lock      *lockfile.Lock
	rpcbLock  *lockfile.Lock
	activated bool
	notifier  *activation.Notifier
	metrics   *metrics.Metrics
	access    atomic.Pointer[access.List]

	mu      sync.Mutex
	errc    chan error
	retired map[io.Closer]bool
	byHost  map[netip.Addr][]io.Closer
	pending map[netip.Addr]bool
}

// acquireLock takes the lock file, naming the holder if another instance
// has it.
func (d *Daemon) acquireLock() error {
	if d.cfg.LockPath != "" {
		l, err := lockfile.Acquire(d.cfg.LockPath)
		if err != nil {
			var le *lockfile.LockedError
			if errors.As(err, &le) {
				return fmt.Errorf("%w; stop it first", err)
			}
			return err
		}
		d.sys.lock = l
	}
	if err := d.acquireRpcbindLock(); err != nil {
		d.releaseLock()
		return err
	}
	return nil
}

// acquireRpcbindLock takes rpcbind's lock as well. rpcbind never removes
// the file; where it is missing and cannot be created (a read-only /run,
// as under ProtectSystem=strict, or no permission), no rpcbind holds it
// either, and the daemon goes on without it: the unit's Conflicts= keeps
// the services apart there.
func (d *Daemon) acquireRpcbindLock() error {
	path := d.cfg.RpcbindLockPath
	if path == "" || path == d.cfg.LockPath {
		return nil
	}
	l, err := lockfile.AcquireShared(path)
	var le *lockfile.LockedError
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("%w; stop it first (systemctl stop rpcbind.socket rpcbind.service)", err)
	case errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.ENOENT):
		d.log.Warn("cannot take rpcbind's lock file; a real rpcbind started by hand would not be kept out",
			zap.String("path", path), zap.Error(err))
		return nil
	case err != nil:
		return err
	}
	d.sys.rpcbLock = l
	return nil
}

// adopt takes the sockets passed in Config.Sockets: systemd's in
// production, a test's in tests. A socket bound to an address
// that --host excludes is closed and the configured addresses are bound
// instead, which rpcbind does not do; a wildcard socket is kept, since
// systemd's copy of it leaves no address of its port free to bind. A
// dual-stack IPv6 socket also serves its IPv4 netid. It
// returns the netids now served.
func (d *Daemon) adopt(socks []activation.Socket) (map[string]string, error) {
	if len(socks) == 0 {
		return nil, nil
	}
	// Addresses are not watched then: the daemon did not bind these
	// sockets and cannot bind their addresses again.
	d.sys.activated = true
	hosts4, hosts6, err := splitHosts(d.cfg.Hosts)
	if err != nil {
		return nil, err
	}
	allowed := map[netip.Addr]bool{}
	for _, h := range append(hosts4, hosts6...) {
		allowed[h] = true
	}
	served := map[string]string{}
	for _, s := range socks {
		if s.Netid != rpc.NetidLocal && len(d.cfg.Hosts) > 0 && !allowed[s.AddrPort().Addr().Unmap()] {
			// A wildcard socket cannot be narrowed: systemd keeps its own
			// copy bound, so binding a --host address on the same port
			// would fail (EADDRINUSE) and the service would crash-loop.
			// The socket unit chooses the addresses then, as for rpcbind.
			if s.AddrPort().Addr().IsUnspecified() {
				d.log.Warn("--host does not narrow a wildcard socket passed by systemd; serving it as it is "+
					"(choose the addresses in the socket unit)", zap.String("netid", s.Netid), zap.Stringer("addr", s.Addr))
			} else {
				d.log.Warn("closing a passed socket that --host excludes", zap.String("netid", s.Netid), zap.Stringer("addr", s.Addr))
				s.Close()
				continue
			}
		}
		uaddr := s.Addr.String()
		if s.Netid != rpc.NetidLocal {
			ap := s.AddrPort()
			if len(d.cfg.Hosts) == 0 {
				ap = netip.AddrPortFrom(unspecified(s.Netid), ap.Port())
			}
			uaddr = pmap.FormatUaddr(ap)
		}
		ids := s.Netids()
		if s.Abstract {
			ids = []string{abstractKey}
		}
		for _, id := range ids {
			if _, ok := served[id]; !ok {
				served[id] = uaddr
			}
		}
		if s.UDP != nil {
			d.udp = append(d.udp, udpSock{s.UDP, s.Netid})
		} else {
			d.stream = append(d.stream, streamSock{s.Listener, s.Netid})
		}
		if d.cfg.Port == 0 && s.Netid != rpc.NetidLocal {
			d.cfg.Port = int(s.AddrPort().Port())
		}
		d.log.Info("using a passed socket", zap.String("netid", s.Netid), zap.Stringer("addr", s.Addr),
			zap.Bool("dual_stack", s.DualStack), zap.Bool("abstract", s.Abstract))
	}
	return served, nil
}

// startSystem starts what runs beside serving: metrics, the watchdog,
// signals and the address watcher. It returns a function that reports
// the shutdown to systemd.
//
// signals has been subscribed to SIGHUP and SIGUSR1 before the first call
// was served: a signal that came earlier would otherwise have had Go's
// default action, which for both is to end the process.
func (d *Daemon) startSystem(ctx context.Context, signals chan os.Signal) (stopping func(), err error) {
	if d.cfg.MetricsAddr != "" {
		l, err := metrics.Listen(d.cfg.MetricsAddr, d.cfg.MetricsAnyAddr)
		if err != nil {
			return nil, fmt.Errorf("--metrics: %w", err)
		}
		go func() {
			if err := d.sys.metrics.Serve(ctx, l); err != nil {
				d.log.Warn("metrics endpoint stopped", zap.Error(err))
			}
		}()
		d.log.Info("serving metrics", zap.Stringer("addr", l.Addr()))
	}
	n, err := activation.NewNotifier(true)
	if err != nil {
		d.log.Warn("cannot talk to systemd", zap.Error(err))
	}
	d.sys.notifier = n
	if iv, err := activation.WatchdogInterval(true); err == nil && iv > 0 && n != nil {
		go n.RunWatchdog(ctx, iv, d.healthy)
	}
	go func() {
		defer signal.Stop(signals)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-signals:
				if sig == syscall.SIGHUP {
					d.reload()
				} else {
					d.logTable()
				}
			}
		}
	}()
	if len(d.cfg.Hosts) > 0 && !d.sys.activated {
		d.watchAddresses(ctx)
	}
	n.Ready()
	n.Status(fmt.Sprintf("serving %d registrations", d.Registry.Len()))
	return func() { n.Stopping() }, nil
}

// healthy is the watchdog's check: the table answers a lookup.
func (d *Daemon) healthy() error {
	done := make(chan struct{})
	go func() { d.Registry.Lookup(pmap.Program, pmap.VersPMAP, rpc.NetidUDP); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("the registration table does not answer")
	}
}

// reload applies a new configuration's access lists and log level; the
// registrations stay as they are.
func (d *Daemon) reload() {
	if d.cfg.Reload == nil {
		d.log.Info("SIGHUP: nothing to reload")
		return
	}
	d.sys.notifier.Reloading()
	defer d.sys.notifier.Ready()
	policy, level, err := d.cfg.Reload()
	if err != nil {
		d.log.Error("SIGHUP: configuration not reloaded", zap.Error(err))
		return
	}
	list, err := d.accessList(policy)
	if err != nil {
		d.log.Error("SIGHUP: configuration not reloaded", zap.Error(err))
		return
	}
	d.sys.access.Store(list)
	if d.cfg.LogLevel != nil {
		d.cfg.LogLevel.SetLevel(level)
	}
	d.log.Info("SIGHUP: reloaded access lists and log level", zap.Int("registrations", d.Registry.Len()))
}

// logTable writes every registration to the log (SIGUSR1).
func (d *Daemon) logTable() {
	ms := d.Registry.Mappings()
	d.log.Info("SIGUSR1: registration table", zap.Int("registrations", len(ms)))
	for _, m := range ms {
		d.log.Info("registration", zap.Uint32("prog", m.Prog), zap.Uint32("vers", m.Vers),
			zap.String("netid", m.Netid), zap.String("addr", m.Addr), zap.String("owner", m.Owner))
	}
}

// watchAddresses binds configured addresses as they appear on an
// interface and releases them as they go, without a restart.
func (d *Daemon) watchAddresses(ctx context.Context) {
	w, err := netwatch.Watch(ctx)
	if err != nil {
		d.log.Warn("cannot watch interface addresses; --host addresses that appear later need a restart", zap.Error(err))
		return
	}
	go func() {
		for e := range w.Events() {
			switch {
			case e.Lost:
				d.rescanAddresses()
			case e.Added && !e.Tentative:
				d.addressAdded(e.Addr)
			case !e.Added:
				d.addressRemoved(e.Addr)
			}
		}
	}()
	// An address may have appeared between binding and watching.
	d.rescanAddresses()
}

func (d *Daemon) rescanAddresses() {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				d.addressAdded(ip.Unmap())
			}
		}
	}
}

func (d *Daemon) addressAdded(a netip.Addr) {
	d.sys.mu.Lock()
	defer d.sys.mu.Unlock()
	if !d.sys.pending[a] {
		return
	}
	socks, err := d.bindHost(a)
	if err != nil {
		d.log.Warn("cannot bind an address that appeared", zap.Stringer("addr", a), zap.Error(err))
		return
	}
	delete(d.sys.pending, a)
	d.sys.byHost[a] = socks
	d.log.Info("bound an address that appeared", zap.Stringer("addr", a))
}

func (d *Daemon) addressRemoved(a netip.Addr) {
	d.sys.mu.Lock()
	defer d.sys.mu.Unlock()
	socks, ok := d.sys.byHost[a]
	if !ok || a.IsLoopback() {
		return
	}
	for _, s := range socks {
		d.sys.retired[s] = true
		s.Close()
	}
	delete(d.sys.byHost, a)
	d.sys.pending[a] = true
	d.log.Info("released an address that went away", zap.Stringer("addr", a))
}

// bindHost binds UDP and TCP on a and starts serving them; the caller
// holds sys.mu.
func (d *Daemon) bindHost(a netip.Addr) ([]io.Closer, error) {
	ap := netip.AddrPortFrom(a, uint16(d.cfg.Port))
	udpNet, tcpNet, udpID, tcpID := "udp4", "tcp4", rpc.NetidUDP, rpc.NetidTCP
	if a.Is6() {
		udpNet, tcpNet, udpID, tcpID = "udp6", "tcp6", rpc.NetidUDP6, rpc.NetidTCP6
	}
	pc, err := net.ListenPacket(udpNet, ap.String())
	if err != nil {
		return nil, err
	}
	l, err := rpc.ListenStream(tcpNet, ap.String())
	if err != nil {
		pc.Close()
		return nil, err
	}
	u := udpSock{pc.(*net.UDPConn), udpID}
	s := streamSock{l, tcpID}
	d.serveUDP(u)
	d.serveStream(s)
	return []io.Closer{u.conn, s.l}, nil
}

// serveUDP and serveStream serve one socket; its end is an error only if
// the socket was not retired on purpose.
func (d *Daemon) serveUDP(u udpSock) {
	go func() { d.socketDone(u.conn, d.Server.ServeUDP(u.conn, u.netid)) }()
}

func (d *Daemon) serveStream(s streamSock) {
	go func() { d.socketDone(s.l, d.Server.ServeStream(s.l, s.netid)) }()
}

func (d *Daemon) socketDone(c io.Closer, err error) {
	d.sys.mu.Lock()
	retired := d.sys.retired[c]
	delete(d.sys.retired, c)
	d.sys.mu.Unlock()
	if !retired {
		select {
		case d.sys.errc <- err:
		default:
		}
	}
}

// accessList builds the host access lists of a policy.
func (d *Daemon) accessList(p Policy) (*access.List, error) {
	l := &access.List{}
	for _, a := range p.Allow {
		if err := l.AddAllow(a); err != nil {
			return nil, fmt.Errorf("--allow: %w", err)
		}
	}
	for _, a := range p.Deny {
		if err := l.AddDeny(a); err != nil {
			return nil, fmt.Errorf("--deny: %w", err)
		}
	}
	if p.HostsFiles {
		if err := l.LoadHostsFiles(HostsAllow, HostsDeny); err != nil {
			return nil, fmt.Errorf("reading tcp_wrappers files: %w", err)
		}
		if len(l.Skipped) > 0 {
			d.log.Warn("hosts.allow/hosts.deny patterns not supported (names, netgroups); they never match",
				zap.Strings("patterns", l.Skipped))
		}
	}
	return l, nil
}
