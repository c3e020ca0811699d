package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portmapd/portmapd/internal/options"
	"github.com/portmapd/portmapd/internal/probe"
	"github.com/portmapd/portmapd/internal/rpcinfo"
	"github.com/portmapd/portmapd/pmap"
)

// probeOptions are the flags of probe.
type probeOptions struct {
	json      bool
	timeout   time.Duration
	port      int
	protos    []string
	portRange string
	nftSet    string
}

// newProbeCommand walks the path to an RPC service and says where it
// breaks; the exit status is the class of the failure.
func newProbeCommand() *cobra.Command {
	o := &probeOptions{}
	cmd := &cobra.Command{
		Use:   "probe HOST [PROG [VERS]]",
		Short: "Find where the path to an RPC service breaks: name, port 111, registration, port, call",
		Long: `probe walks the path a client takes to an ONC RPC service and says where it
breaks, one line per step with its timing: the host's name; the portmapper on
port 111 over TCP and UDP (answered, refused, or silently dropped: filtered);
the program's registration; the registered port (reachable, refused,
filtered); a NULL call to the service (version mismatch, auth error,
timeout). It ends with a verdict and a remedy. PROG is a number or a name
from /etc/rpc; without VERS the highest registered version is called.

Exit status: 0 ok, 2 usage, 3 unresolved, 4 portmapper refused,
5 portmapper filtered, 6 not registered, 7 service refused (down),
8 service filtered, 9 version mismatch, 10 auth error, 11 service timeout,
12 other RPC error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.config(args)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "portmapd probe: %v\n%s", err, cmd.UsageString())
				return exitCode(2)
			}
			rep := probe.Run(cmd.Context(), cfg)
			out := cmd.OutOrStdout()
			if o.json {
				err = rep.WriteJSON(out)
			} else {
				err = rep.WriteText(out)
			}
			if err != nil {
				return err
			}
			if rep.Verdict.Code != 0 {
				return exitCode(rep.Verdict.Code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.DurationVar(&o.timeout, "timeout", 3*time.Second, "time allowed for each step")
	f.IntVar(&o.port, "port", 111, "the portmapper's port")
	f.StringSliceVar(&o.protos, "proto", []string{"tcp", "udp"}, "transports to walk, in order: tcp, udp")
	f.StringVar(&o.portRange, "port-range", "", "LOW-HIGH: say so when the registration's port is outside the range a firewall opens")
	f.StringVar(&o.nftSet, NFTSetFlag, "", "'FAMILY TABLE SET' the local portmapd keeps; named when a port of this host is filtered (default: serve's, from PORTMAPD_NFT_SET or --env-file)")
	return cmd
}

func (o *probeOptions) config(args []string) (probe.Config, error) {
	cfg := probe.Config{Port: o.port, Timeout: o.timeout, NFTSet: o.nftSet}
	if cfg.NFTSet == "" {
		cfg.NFTSet = serveNFTSet()
	}
	if o.portRange != "" {
		r, err := pmap.ParsePortRange(o.portRange)
		if err != nil {
			return cfg, fmt.Errorf("--port-range %w", err)
		}
		cfg.Ports = &r
	}
	if len(args) < 1 || len(args) > 3 {
		return cfg, fmt.Errorf("want HOST [PROG [VERS]], got %d arguments", len(args))
	}
	if o.port < 1 || o.port > 65535 {
		return cfg, fmt.Errorf("--port %d is not a port", o.port)
	}
	for _, p := range o.protos {
		p = strings.ToLower(p)
		if p != "tcp" && p != "udp" {
			return cfg, fmt.Errorf("--proto %q is neither tcp nor udp", p)
		}
		cfg.Protos = append(cfg.Protos, p)
	}
	cfg.Host = args[0]
	if len(args) > 1 {
		prog, ok := rpcinfo.ProgramNumber(args[1])
		if !ok {
			return cfg, fmt.Errorf("%q is neither a program number nor a name in /etc/rpc", args[1])
		}
		cfg.Prog, cfg.HasProg = prog, true
	}
	if len(args) > 2 {
		v, err := strconv.ParseUint(args[2], 10, 32)
		if err != nil {
			return cfg, fmt.Errorf("%q is not a version number", args[2])
		}
		cfg.Vers, cfg.HasVers = uint32(v), true
	}
	return cfg, nil
}

// serveNFTSet is the --nft-set portmapd serve would start with here,
// from PORTMAPD_NFT_SET or the options file; "" if none or if the
// options do not read.
func serveNFTSet() string {
	root, _, cfg := newRoot()
	cmd, _, err := root.Find([]string{"serve"})
	if err != nil || cmd.Name() != "serve" {
		return ""
	}
	if _, err := options.Load(cmd.Flags(), os.Environ()); err != nil {
		return ""
	}
	return cfg.NFTSet
}
