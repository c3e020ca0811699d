package cli

import (
	"github.com/spf13/cobra"

	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/internal/rmtcall"
	"github.com/portmapd/portmapd/rpc"
)

func newServeCommand(lo *logOptions) *cobra.Command {
	cfg := daemon.Config{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the portmapper daemon in the foreground",
		Long: `Run the portmapper in the foreground. It listens on port 111 over UDP and TCP
on IPv4 and IPv6 and on the local socket, and serves PMAP v2 and RPCBIND v3/v4.
SET and UNSET are accepted only from the local socket and the loopback
address unless --insecure is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lo.newLogger()
			if err != nil {
				return err
			}
			defer log.Sync()
			d, err := daemon.New(cfg, log)
			if err != nil {
				return err
			}
			return d.Serve(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Port, "port", 111, "port to listen on over UDP and TCP")
	f.StringSliceVarP(&cfg.Hosts, "host", "H", nil, "addresses to bind (repeatable or comma-separated); default all; loopback is always added")
	f.StringVar(&cfg.SocketPath, "socket", daemon.DefaultSocketPath, "path of the local stream socket; empty disables it")
	f.BoolVarP(&cfg.Insecure, "insecure", "i", false, "accept SET and UNSET from any host, not only local callers")
	f.BoolVar(&cfg.LogCalls, "log-calls", false, "log every call (sampled)")
	f.BoolVar(&cfg.NoIPv6, "no-ipv6", false, "do not listen on IPv6")
	f.BoolVarP(&cfg.WarmStart, "warm-start", "w", false, "keep registrations across restarts and crashes in --state-dir (imports rpcbind's warm-start files)")
	f.StringVar(&cfg.StateDir, "state-dir", daemon.DefaultStateDir, "directory of the warm-start file")
	f.DurationVar(&cfg.PruneInterval, "prune-dead", 0, "probe registered services with a NULL call at this interval and drop those that stop answering (e.g. 30s; 0: off)")
	f.IntVar(&cfg.PruneFailures, "prune-failures", 3, "failed probes in a row after which --prune-dead drops a mapping")
	f.IntVar(&cfg.MaxConns, "max-conns", rpc.DefaultMaxConns, "open TCP and local connections at most; at the cap the longest idle one is closed")
	f.IntVar(&cfg.MaxConnsPerHost, "max-conns-per-host", 64, "connections from one remote address at most (0: no limit)")
	f.Float64Var(&cfg.MaxAmplification, "max-amplification", 4, "drop a UDP reply to a non-loopback source more than this many times its request (0: off)")
	f.Float64Var(&cfg.UDPRate, "udp-rate", 200, "UDP replies per second to one non-loopback source (0: no limit)")
	f.Float64Var(&cfg.UDPBurst, "udp-burst", 400, "burst of UDP replies allowed to one non-loopback source")
	f.StringSliceVar(&cfg.Allow, "allow", nil, "addresses or CIDR networks always let in (repeatable); others are judged by --deny")
	f.StringSliceVar(&cfg.Deny, "deny", nil, "addresses or CIDR networks refused everything but NULL (repeatable)")
	f.BoolVar(&cfg.HostsFiles, "hosts-files", true, "also apply the rpcbind and portmap entries of /etc/hosts.allow and /etc/hosts.deny")
	f.BoolVar(&cfg.OpenPrivilegedPorts, "open-privileged-ports", false, "let unprivileged callers map ports below 1024 and 2049, as rpcbind does")
	f.StringVar(&cfg.PortRange, "port-range", "", "LOW-HIGH: ports registrations must use (logged when outside; see --port-range-refuse)")
	f.BoolVar(&cfg.PortRangeRefuse, "port-range-refuse", false, "refuse registrations outside --port-range instead of logging them")
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
