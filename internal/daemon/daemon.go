package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/activation"
	"github.com/portmapd/portmapd/internal/liveness"
	"github.com/portmapd/portmapd/internal/lockfile"
	"github.com/portmapd/portmapd/internal/metrics"
	"github.com/portmapd/portmapd/internal/nftset"
	"github.com/portmapd/portmapd/internal/rmtcall"
	"github.com/portmapd/portmapd/internal/state"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
)

// Config is what the serve command configures.
type Config struct {
	// Sockets are served as they are: the ones systemd passed (socket
	// activation), or in tests sockets bound on port 0 or in a temporary
	// directory, whose ports the test reads back from them. --host closes
	// an excluded one (see adopt); the transports none of them serves are
	// bound as Port, Hosts, SocketPath and AbstractSocket say.
	Sockets []activation.Socket
	// Port is the portmapper's port, 111 unless testing. With Sockets and
	// no Port, the first IP socket's port.
	Port int
	// Hosts, if not empty, restricts the IP sockets to these addresses
	// (the loopback addresses are always added, so local services can
	// still register).
	Hosts []string
	// SocketPath is the local stream socket; empty disables it.
	SocketPath string
	// AbstractSocket is the name of the local socket in the abstract
	// namespace ("@/run/rpcbind.sock"; the @ stands for the leading NUL
	// byte and may be left out); empty disables it. The name belongs to
	// the network namespace, not to a filesystem: current clients
	// (libtirpc 1.3.5+, rpcinfo 1.2.7+, Linux 5.19+) try it before
	// SocketPath, so a container with its own network reaches its own
	// portmapper even where it shares the host's /run.
	AbstractSocket string
	// Insecure accepts SET and UNSET from any host.
	Insecure bool
	// LogCalls logs every call (sampled).
	LogCalls bool
	// NoIPv6 skips the IPv6 sockets.
	NoIPv6 bool
	// WarmStart keeps the table in StateDir: loaded at start (or imported
	// from rpcbind's warm-start files) and saved before every change is
	// acknowledged.
	WarmStart bool
	StateDir  string
	// PruneInterval, when positive, probes every registered service with a
	// NULL call at this interval and drops the mappings of those that fail
	// PruneFailures probes in a row.
	PruneInterval time.Duration
	PruneFailures int
	// Limits on streams and datagrams (see rpc.Server); zero values take
	// the defaults.
	MaxConns         int
	MaxConnsPerHost  int
	MaxRecord        int
	MaxAmplification float64
	// UDPRate and UDPBurst bound datagram replies per non-loopback source.
	UDPRate, UDPBurst float64
	Policy
	// RemoteCalls forwards CALLIT, BCAST and INDIRECT to local services,
	// as rpcbind -r does, within RemoteCallLimits (zero fields: defaults).
	RemoteCalls      bool
	RemoteCallLimits rmtcall.Config
	// NFTSet, "FAMILY TABLE SET", is an nftables set kept equal to the
	// registered services (nftset.go).
	NFTSet string
	System
}

// DefaultStateDir holds the warm-start file. It is on tmpfs on purpose:
// registrations name ports of processes that a reboot ends.
const DefaultStateDir = "/run/portmapd"

// DefaultSocketPath is the local socket's path, libtirpc's
// _PATH_RPCBINDSOCK (tried first before libtirpc 1.3.5, second since).
const DefaultSocketPath = "/run/rpcbind.sock"

// DefaultAbstractSocket is libtirpc's _PATH_RPCBINDSOCK_ABSTRACT and the
// kernel's RPCBIND_SOCK_ABSTRACT_NAME: a NUL byte, then the socket path.
const DefaultAbstractSocket = "@" + DefaultSocketPath

// abstractKey stands for the abstract local socket among the netids of
// bind's served map: it serves netid local too, beside the path socket.
const abstractKey = "local@"

// Daemon is a running portmapper.
type Daemon struct {
	Registry *pmap.Registry
	Service  *pmap.Service
	Server   *rpc.Server
	log      *zap.Logger
	udp      []udpSock
	stream   []streamSock
	writer   *state.Writer
	cfg      Config
	sys      systemState
	nft      *nftset.Syncer
}

type udpSock struct {
	conn  *net.UDPConn
	netid string
}

type streamSock struct {
	l     net.Listener
	netid string
}

// New binds every socket of cfg and prepares the service; nothing is
// served until Serve.
func New(cfg Config, log *zap.Logger) (*Daemon, error) {
	reg := pmap.NewRegistry()
	d := &Daemon{
		Registry: reg,
		log:      log,
		cfg:      cfg,
		Service: &pmap.Service{
			Registry: reg,
			Stats:    pmap.NewStats(),
			Insecure: cfg.Insecure,
			Log:      log.Named("pmap"),
		},
	}
	d.sys.retired = map[io.Closer]bool{}
	d.sys.byHost = map[netip.Addr][]io.Closer{}
	d.sys.pending = map[netip.Addr]bool{}
	if err := d.acquireLock(); err != nil {
		return nil, err
	}
	var saved func() savedTable
	// abort undoes a start that failed; a table still being read is
	// waited for, so that no file is touched once the lock is released.
	abort := func(err error) (*Daemon, error) {
		if saved != nil {
			saved()
		}
		d.closeAll()
		return nil, err
	}
	if cfg.WarmStart {
		saved = readSaved(cmp.Or(cfg.StateDir, DefaultStateDir), d.log)
	}
	served, err := d.adopt(cfg.Sockets)
	if err != nil {
		return abort(err)
	}
	if err := d.bind(d.cfg, served); err != nil { // d.cfg: adopt may have set Port
		return abort(err)
	}
	if err := d.applyPolicy(cfg.Policy); err != nil {
		return abort(err)
	}
	if cfg.WarmStart {
		if err := d.warmStart(saved()); err != nil {
			return abort(err)
		}
	}
	if cfg.User != "" {
		dir := ""
		if cfg.WarmStart {
			dir = cmp.Or(cfg.StateDir, DefaultStateDir)
		}
		if err := d.dropPrivileges(cfg.User, dir); err != nil {
			return abort(err)
		}
	}
	mux := rpc.NewMux()
	d.Service.Register(mux)
	d.Server = &rpc.Server{Handler: mux, Log: log.Named("rpc"), LogCalls: cfg.LogCalls,
		MaxConns: cfg.MaxConns, MaxConnsPerHost: cfg.MaxConnsPerHost, MaxAmplification: cfg.MaxAmplification,
		MaxRecord: cfg.MaxRecord}
	if cfg.UDPRate > 0 {
		d.Server.ReplyLimiter = rpc.NewSourceLimiter(cfg.UDPRate, max(cfg.UDPBurst, 1))
	}
	if cfg.MetricsAddr != "" {
		d.sys.metrics = metrics.New(metrics.Options{Registrations: reg.Len, StateWriteFailures: d.stateWriteFailures})
		d.Server.Observer = d.sys.metrics
		d.Service.Reject = d.sys.metrics.Reject
	}
	if err := d.startRemoteCalls(); err != nil { // remotecalls.go
		return abort(err)
	}
	if err := d.startNFTSet(); err != nil { // nftset.go
		d.stopRemoteCalls()
		return abort(err)
	}
	return d, nil
}

// bind opens the sockets systemd did not pass, then records the daemon's
// own rows in the order rpcbind lists them: tcp6, udp6, tcp, udp, local.
// With --host, an address not on any interface yet is bound when it
// appears.
func (d *Daemon) bind(cfg Config, served map[string]string) error {
	if served == nil {
		served = map[string]string{}
	}
	port := cfg.Port
	hosts4, hosts6, err := splitHosts(cfg.Hosts)
	if err != nil {
		return err
	}
	type plan struct {
		netid, network string
		hosts          []netip.Addr
	}
	plans := []plan{}
	if !cfg.NoIPv6 {
		plans = append(plans, plan{rpc.NetidTCP6, "tcp6", hosts6}, plan{rpc.NetidUDP6, "udp6", hosts6})
	}
	plans = append(plans, plan{rpc.NetidTCP, "tcp4", hosts4}, plan{rpc.NetidUDP, "udp4", hosts4})
	for _, p := range plans {
		if _, ok := served[p.netid]; ok {
			continue
		}
		bound := false
		for _, h := range p.hosts {
			ap := netip.AddrPortFrom(h, uint16(port))
			c, err := d.listenIP(p.network, p.netid, ap)
			if err != nil {
				if p.netid == rpc.NetidTCP6 || p.netid == rpc.NetidUDP6 {
					if errors.Is(err, syscall.EAFNOSUPPORT) || (len(cfg.Hosts) == 0 && errors.Is(err, syscall.EADDRNOTAVAIL)) {
						d.log.Warn("IPv6 unavailable; serving IPv4 only", zap.String("netid", p.netid), zap.Error(err))
						break
					}
				}
				if len(cfg.Hosts) > 0 && !h.IsLoopback() && errors.Is(err, syscall.EADDRNOTAVAIL) {
					d.log.Warn("address not on any interface yet; it will be bound when it appears",
						zap.String("netid", p.netid), zap.Stringer("addr", h))
					d.sys.pending[h] = true
					continue
				}
				return err
			}
			if len(cfg.Hosts) > 0 {
				d.sys.byHost[h] = append(d.sys.byHost[h], c)
			}
			bound = true
		}
		if bound {
			uaddr := pmap.FormatUaddr(netip.AddrPortFrom(p.hosts[0], uint16(port)))
			if len(cfg.Hosts) == 0 {
				uaddr = pmap.FormatUaddr(netip.AddrPortFrom(unspecified(p.netid), uint16(port)))
			}
			served[p.netid] = uaddr
		}
	}
	if _, ok := served[rpc.NetidLocal]; !ok && cfg.SocketPath != "" {
		if err := d.listenLocal(cfg.SocketPath); err != nil {
			return err
		}
		served[rpc.NetidLocal] = cfg.SocketPath
	}
	if _, ok := served[abstractKey]; !ok && cfg.AbstractSocket != "" {
		name, err := d.listenAbstract(cfg.AbstractSocket)
		if err != nil {
			return err
		}
		served[abstractKey] = name
	}
	// One row for netid local, as rpcbind has: the path when there is
	// one, which is what clients of the path (and rpcbind's own rows)
	// show.
	if _, ok := served[rpc.NetidLocal]; !ok && served[abstractKey] != "" {
		served[rpc.NetidLocal] = served[abstractKey]
	}
	for _, netid := range []string{rpc.NetidTCP6, rpc.NetidUDP6, rpc.NetidTCP, rpc.NetidUDP, rpc.NetidLocal} {
		if uaddr, ok := served[netid]; ok {
			d.Service.AddTransport(netid, uaddr)
		}
	}
	return nil
}

// savedTable is what a warm start read from the state directory.
type savedTable struct {
	store *state.Store
	rows  []pmap.Mapping
	err   error
}

// readSaved reads the saved table on a goroutine of its own, so that
// decoding the file and binding the sockets share the start-up between
// them. The lock is held already: no other instance writes the file.
func readSaved(dir string, log *zap.Logger) func() savedTable {
	ch := make(chan savedTable, 1)
	go func() {
		st, err := state.Open(dir, log)
		if err != nil {
			ch <- savedTable{err: fmt.Errorf("warm start: %w", err)}
			return
		}
		ch <- savedTable{store: st, rows: st.WarmStart(state.RpcbindDirs)}
	}()
	return sync.OnceValue(func() savedTable { return <-ch })
}

// warmStart adds the saved table after the daemon's own rows and makes
// every later change durable before it is acknowledged.
func (d *Daemon) warmStart(saved savedTable) error {
	if saved.err != nil {
		return saved.err
	}
	// The rows come without the portmapper's own (state drops them): the
	// daemon made its rows afresh for the transports it serves now.
	st, rows := saved.store, saved.rows
	before := d.Registry.Len()
	d.Registry.SetAll(rows)
	loaded := d.Registry.Len() - before
	if loaded < len(rows) {
		d.log.Warn("saved rows not restored: repeats of an earlier row's program, version and netid, or beyond the table's limit",
			zap.String("file", st.Path()), zap.Int("rows", len(rows)-loaded))
	}
	d.log.Info("warm start", zap.String("file", st.Path()), zap.Int("registrations", loaded))
	// The table is what the files hold (an import from rpcbind was saved
	// by WarmStart); from here on every change is journaled, and one that
	// cannot be written is taken back before its caller hears SYSTEM_ERR.
	d.writer = state.NewWriter(st, d.Registry, d.log)
	d.Service.Durable = func(gen uint64) error {
		// No timeout: a caller told SYSTEM_ERR while its change might
		// still reach the disk would disagree with the table. A disk that
		// hangs holds the replies instead.
		return d.writer.Wait(context.Background(), gen)
	}
	return nil
}

// stateWriteFailures counts the warm-start writes that failed, each
// answered by taking its changes back; 0 without warm start.
func (d *Daemon) stateWriteFailures() uint64 {
	if d.writer == nil {
		return 0
	}
	return d.writer.Failures()
}

func unspecified(netid string) netip.Addr {
	if netid == rpc.NetidTCP6 || netid == rpc.NetidUDP6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// splitHosts sorts the configured addresses by family, adding loopback;
// with none configured each family gets its wildcard.
func splitHosts(hosts []string) (v4, v6 []netip.Addr, err error) {
	if len(hosts) == 0 {
		return []netip.Addr{netip.IPv4Unspecified()}, []netip.Addr{netip.IPv6Unspecified()}, nil
	}
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if seen[a] {
			return
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	for _, h := range hosts {
		a, perr := netip.ParseAddr(h)
		if perr != nil {
			ips, lerr := net.LookupIP(h)
			if lerr != nil || len(ips) == 0 {
				return nil, nil, fmt.Errorf("host %q: not an address and does not resolve", h)
			}
			for _, ip := range ips {
				a, _ := netip.AddrFromSlice(ip)
				add(a.Unmap())
			}
			continue
		}
		add(a.Unmap())
	}
	add(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	add(netip.IPv6Loopback())
	return v4, v6, nil
}

func (d *Daemon) listenIP(network, netid string, ap netip.AddrPort) (io.Closer, error) {
	addr := ap.String()
	switch network {
	case "udp4", "udp6":
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, bindError(netid, ap, err)
		}
		d.udp = append(d.udp, udpSock{pc.(*net.UDPConn), netid})
		return pc, nil
	default:
		l, err := rpc.ListenStream(network, addr)
		if err != nil {
			return nil, bindError(netid, ap, err)
		}
		d.stream = append(d.stream, streamSock{l, netid})
		return l, nil
	}
}

// bindError explains the usual reason port 111 is taken.
func bindError(netid string, ap netip.AddrPort, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		who := "most likely by rpcbind or portmap (stop them: systemctl stop rpcbind.socket rpcbind.service), or by another portmapd"
		if users, _ := lockfile.PortUsers(ap.Port(), strings.TrimSuffix(netid, "6"), netid); len(users) > 0 {
			who = "by " + lockfile.Describe(users) + " (rpcbind or portmap: systemctl stop rpcbind.socket rpcbind.service)"
		}
		return fmt.Errorf("cannot bind %s port %d on %s: the port is already in use, %s: %w",
			netid, ap.Port(), ap.Addr(), who, err)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot bind %s port %d on %s: binding a port below 1024 needs root "+
			"(or CAP_NET_BIND_SERVICE): %w", netid, ap.Port(), ap.Addr(), err)
	}
	return fmt.Errorf("cannot bind %s port %d on %s: %w", netid, ap.Port(), ap.Addr(), err)
}

// listenLocal binds the local socket. A file left by a daemon that died is
// replaced; one a live daemon still answers on is not.
func (d *Daemon) listenLocal(path string) error {
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("local socket %s is in use by a running portmapper (rpcbind or portmapd)", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("removing stale local socket %s: %w", path, err)
		}
		d.log.Info("replaced stale local socket", zap.String("path", path))
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("cannot bind local socket %s: %w", path, err)
	}
	// Every local user may register through it; ownership of entries
	// comes from SO_PEERCRED, not from the file's mode.
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	d.stream = append(d.stream, streamSock{l, rpc.NetidLocal})
	return nil
}

// listenAbstract binds the local socket in the abstract namespace and
// returns its name with the leading @. Such a name disappears with the
// last socket bound to it, so none is ever stale: one in use means a
// portmapper in this network namespace has it.
func (d *Daemon) listenAbstract(name string) (string, error) {
	name = "@" + strings.TrimPrefix(name, "@")
	if name == "@" {
		return "", errors.New("abstract socket: the name is empty")
	}
	l, err := net.Listen("unix", name)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("abstract socket %s is in use by a running portmapper in this network namespace "+
				"(rpcbind 1.2.7 or later, or portmapd): %w", name, err)
		}
		return "", fmt.Errorf("cannot bind abstract socket %s: %w", name, err)
	}
	d.stream = append(d.stream, streamSock{l, rpc.NetidLocal})
	return name, nil
}

// Serve answers calls until ctx ends, then shuts down within a few
// seconds.
func (d *Daemon) Serve(ctx context.Context) error {
	defer d.stopRemoteCalls() // after the server's shutdown: no call is forwarded then
	defer d.releaseLock()
	d.sys.errc = make(chan error, 1)
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGUSR1)
	// Start-up's pages go once it is over, off the path to the first
	// answers: trimming before them delayed them by several milliseconds
	// (reading smaps, then faulting the serving code back in).
	trimLater := time.AfterFunc(time.Second, trimFootprint)
	defer trimLater.Stop()
	d.sys.mu.Lock()
	for _, u := range d.udp {
		d.serveUDP(u)
	}
	for _, s := range d.stream {
		d.serveStream(s)
	}
	d.sys.mu.Unlock()
	stopping, err := d.startSystem(ctx, signals)
	if err != nil {
		signal.Stop(signals)
		_ = d.Server.Shutdown(context.Background()) // err is the one to report
		_ = d.stopNFTSet()
		return err
	}
	if d.cfg.PruneInterval > 0 {
		c := &liveness.Checker{Registry: d.Registry, Log: d.log.Named("liveness"),
			Interval: d.cfg.PruneInterval, Failures: d.cfg.PruneFailures}
		if d.Service.Durable != nil {
			c.OnRemove = func() {
				if err := d.Service.Durable(d.Registry.Generation()); err != nil {
					d.log.Error("cannot persist a removal", zap.Error(err))
				}
			}
		}
		go c.Run(ctx)
	}
	d.log.Info("serving", zap.Strings("transports", d.transports()), zap.Int("registrations", d.Registry.Len()))
	select {
	case <-ctx.Done():
	case err = <-d.sys.errc:
		err = fmt.Errorf("serving stopped: %w", err)
	}
	stopping()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := d.Server.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if d.writer != nil {
		if werr := d.writer.Close(); werr != nil && err == nil {
			err = fmt.Errorf("saving registrations: %w", werr)
		}
	}
	if nerr := d.stopNFTSet(); nerr != nil && err == nil {
		err = fmt.Errorf("nftables set at stop: %w", nerr)
	}
	d.log.Info("stopped")
	return err
}

func (d *Daemon) transports() []string {
	var out []string
	for _, s := range d.stream {
		out = append(out, s.netid+" "+s.l.Addr().String())
	}
	for _, u := range d.udp {
		out = append(out, u.netid+" "+u.conn.LocalAddr().String())
	}
	return out
}

func (d *Daemon) closeAll() {
	for _, u := range d.udp {
		u.conn.Close()
	}
	for _, s := range d.stream {
		s.l.Close()
	}
	d.releaseLock()
}

func (d *Daemon) releaseLock() {
	if d.sys.rpcbLock != nil {
		_ = d.sys.rpcbLock.Release() // at exit; the kernel drops the lock anyway
		d.sys.rpcbLock = nil
	}
	if d.sys.lock != nil {
		_ = d.sys.lock.Release()
		d.sys.lock = nil
	}
}
