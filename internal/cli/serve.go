package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portmapd/portmapd/internal/activation"
	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/internal/lockfile"
	"github.com/portmapd/portmapd/internal/options"
	"github.com/portmapd/portmapd/internal/rmtcall"
	"github.com/portmapd/portmapd/rpc"
)

// newServeCommand builds "portmapd serve", filling cfg from its flags.
// Options not given on the command line come from PORTMAPD_* variables
// and the options files' OPTIONS (rpcbind's options translated).
func newServeCommand(lo *logOptions, cfg *daemon.Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the portmapper daemon in the foreground",
		Long: `Run the portmapper in the foreground. It listens on port 111 over UDP and TCP
on IPv4 and IPv6 and on the local socket, /run/rpcbind.sock and its
abstract twin @/run/rpcbind.sock (which current clients try first, and
which belongs to the network namespace), and serves PMAP v2 and RPCBIND
v3/v4. SET and UNSET are accepted only from the local socket and the
loopback address unless --insecure is given.

Options not given here are taken from PORTMAPD_* environment variables
(PORTMAPD_WARM_START=1 for --warm-start) and then from the options files
(--env-file): /etc/rpcbind.conf, /etc/default/rpcbind,
/etc/sysconfig/rpcbind and /etc/default/portmapd, each winning over those
before it, flag by flag. In their OPTIONS (or RPCBIND_OPTIONS, or
RPCBIND_ARGS) rpcbind's options (-w -h -i -l -r -s -d) keep their
meaning. Under systemd the sockets may be passed in (socket activation).
Besides its own lock file the daemon takes rpcbind's, /run/rpcbind.lock,
so that it and rpcbind refuse to start while the other runs; with a
--socket other than /run/rpcbind.sock it takes neither that nor the
abstract name unless told to. SIGHUP reloads the access lists and the log
level; SIGUSR1 writes the registration table to the log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := options.Load(cmd.Flags(), os.Environ())
			if err != nil {
				return err
			}
			privateInstance(cmd.Flags(), cfg)
			log, level, err := lo.newLogger()
			if err != nil {
				return err
			}
			defer log.Sync()
			for _, n := range res.Notes {
				log.Info("options", zap.String("note", n))
			}
			if len(res.Files) > 0 {
				log.Info("read options", zap.Strings("files", res.Files), zap.Int("settings", len(res.Settings)))
			}
			cfg.LogLevel = &level
			cfg.Reload = func() (daemon.Policy, zapcore.Level, error) { return reloadServe(os.Args[1:]) }
			// systemd's sockets, if it passed any; the daemon binds the
			// transports they lack.
			if cfg.Sockets, err = activation.Sockets(true); err != nil {
				return fmt.Errorf("socket activation: %w", err)
			}
			d, err := daemon.New(*cfg, log)
			if err != nil {
				return err
			}
			return d.Serve(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSlice(options.EnvFileFlag, options.DefaultEnvFiles, "options files whose OPTIONS (RPCBIND_OPTIONS, RPCBIND_ARGS) and PORTMAPD_* variables supply options not given here, each winning over those before it; empty: none")
	f.StringVar(&cfg.LockPath, "lock-file", lockfile.DefaultPath, "lock file that keeps a second instance from starting; empty disables it")
	f.StringVar(&cfg.RpcbindLockPath, "rpcbind-lock-file", lockfile.RpcbindPath, "rpcbind's lock file, taken too so that rpcbind and portmapd refuse to run beside each other; by default only while --socket is /run/rpcbind.sock; empty disables it")
	f.StringVar(&cfg.MetricsAddr, "metrics", "", "serve Prometheus metrics over HTTP at this address (loopback only, e.g. 127.0.0.1:9111)")
	f.BoolVar(&cfg.MetricsAnyAddr, "metrics-any-addr", false, "allow --metrics on an address that is not loopback")
	f.IntVar(&cfg.Port, "port", 111, "port to listen on over UDP and TCP")
	f.StringSliceVarP(&cfg.Hosts, "host", "H", nil, "addresses to bind (repeatable or comma-separated); default all; loopback is always added")
	f.StringVar(&cfg.SocketPath, "socket", daemon.DefaultSocketPath, "path of the local stream socket; empty disables it")
	f.StringVar(&cfg.AbstractSocket, "abstract-socket", daemon.DefaultAbstractSocket, "the local socket's name in the abstract namespace, which belongs to the network namespace and which current clients try before --socket; by default only while --socket is /run/rpcbind.sock; empty disables it")
	f.BoolVarP(&cfg.Insecure, "insecure", "i", false, "accept SET and UNSET from any host, not only local callers")
	f.BoolVar(&cfg.LogCalls, "log-calls", false, "log every call (sampled)")
	f.BoolVar(&cfg.NoIPv6, "no-ipv6", false, "do not listen on IPv6")
	f.BoolVarP(&cfg.WarmStart, "warm-start", "w", false, "keep registrations across restarts and crashes in --state-dir (imports rpcbind's warm-start files)")
	f.StringVar(&cfg.StateDir, "state-dir", daemon.DefaultStateDir, "directory of the warm-start file")
	f.DurationVar(&cfg.PruneInterval, "prune-dead", 0, "probe registered services with a NULL call at this interval and drop those that stop answering (e.g. 30s; 0: off)")
	f.IntVar(&cfg.PruneFailures, "prune-failures", 3, "failed probes in a row after which --prune-dead drops a mapping")
	f.IntVar(&cfg.MaxConns, "max-conns", rpc.DefaultMaxConns, "open TCP and local connections at most; at the cap the longest idle one is closed")
	f.IntVar(&cfg.MaxConnsPerHost, "max-conns-per-host", 64, "connections from one remote address at most (0: no limit)")
	f.IntVar(&cfg.MaxRecord, "max-record", rpc.DefaultMaxRecord, "bytes of one call on a stream at most, as rpcbind's 9000; a connection that sends more is closed")
	f.Float64Var(&cfg.MaxAmplification, "max-amplification", 4, "drop a UDP reply to a non-loopback source more than this many times its request (0: off)")
	f.Float64Var(&cfg.UDPRate, "udp-rate", 200, "UDP replies per second to one non-loopback source, an IPv4 address or IPv6 /64 (0: no limit)")
	f.Float64Var(&cfg.UDPBurst, "udp-burst", 400, "burst of UDP replies allowed to one non-loopback source")
	f.StringSliceVar(&cfg.Allow, "allow", nil, "addresses or CIDR networks always let in (repeatable); others are judged by --deny")
	f.StringSliceVar(&cfg.Deny, "deny", nil, "addresses or CIDR networks refused everything but NULL (repeatable)")
	f.BoolVar(&cfg.HostsFiles, "hosts-files", true, "also apply the rpcbind and portmap entries of /etc/hosts.allow and /etc/hosts.deny")
	f.BoolVar(&cfg.OpenPrivilegedPorts, "open-privileged-ports", false, "let unprivileged callers map ports below 1024 and 2049, as rpcbind does")
	f.StringVar(&cfg.PortRange, "port-range", "", "LOW-HIGH: ports registrations must use (logged when outside; see --port-range-refuse)")
	f.BoolVar(&cfg.PortRangeRefuse, "port-range-refuse", false, "refuse registrations outside --port-range instead of logging them")
	f.StringVar(&cfg.NFTSet, NFTSetFlag, "", "'FAMILY TABLE SET': keep this nftables set (type inet_proto . inet_service) equal to the registered services' proto . port")
	f.StringVarP(&cfg.User, "user", "s", "", "run as this user once the sockets are bound (rpcbind's -s uses _rpc)")
	// Remote calls (rpcbind -r).
	rl := &cfg.RemoteCallLimits
	f.BoolVarP(&cfg.RemoteCalls, "remote-calls", "r", false, "forward CALLIT, BCAST and INDIRECT to local services, as rpcbind -r (rpcinfo -b, NIS and NFS broadcast discovery need it)")
	f.IntVar(&rl.MaxInFlight, "remote-call-max", rmtcall.DefaultMaxInFlight, "remote calls waiting for their service at once; beyond, the oldest is dropped")
	f.DurationVar(&rl.Timeout, "remote-call-timeout", rmtcall.DefaultTimeout, "how long a forwarded call waits for its service's reply")
	f.Float64Var(&rl.Rate, "remote-call-rate", rmtcall.DefaultRate, "remote calls forwarded per second for one non-loopback source")
	f.IntVar(&rl.Burst, "remote-call-burst", rmtcall.DefaultBurst, "remote calls one non-loopback source may make at once")
	f.Float64Var(&rl.MaxReplyRatio, "remote-call-max-reply", rmtcall.DefaultMaxReplyRatio, "drop a forwarded reply to a non-loopback source larger than this many times its request")
	return cmd
}

// NFTSetFlag is serve's --nft-set, which probe reads too.
const NFTSetFlag = "nft-set"

// reloadServe parses the serve command line again, with the environment
// and the environment file as they are now, for SIGHUP.
func reloadServe(argv []string) (daemon.Policy, zapcore.Level, error) {
	root, lo, cfg := newRoot()
	cmd, rest, err := root.Find(argv)
	if err != nil || cmd.Name() != "serve" {
		return daemon.Policy{}, 0, fmt.Errorf("reload: %v is not a serve command line", argv)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return daemon.Policy{}, 0, err
	}
	if _, err := options.Load(cmd.Flags(), os.Environ()); err != nil {
		return daemon.Policy{}, 0, err
	}
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(lo.level)); err != nil {
		return daemon.Policy{}, 0, fmt.Errorf("--log-level: %w", err)
	}
	return cfg.Policy, level, nil
}
