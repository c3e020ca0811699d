package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portmapd/portmapd/internal/bench"
)

// stormOptions are the settings of the storm loads; compare passes them on
// to the storm run in each namespace.
type stormOptions struct {
	clients       []int
	loads         []string
	duration      time.Duration
	warmup        time.Duration
	timeout       time.Duration
	registrations int
}

func defaultStormOptions() stormOptions {
	return stormOptions{
		clients:       []int{64, 512},
		loads:         append([]string(nil), bench.StormLoads...),
		duration:      2 * time.Second,
		warmup:        300 * time.Millisecond,
		timeout:       time.Second,
		registrations: 20,
	}
}

func (o *stormOptions) addFlags(f *pflag.FlagSet) {
	f.IntSliceVar(&o.clients, "storm-clients", o.clients, "concurrent clients of each storm load (empty: no storm)")
	f.StringSliceVar(&o.loads, "storm-loads", o.loads, "storm loads: "+strings.Join(bench.StormLoads, ","))
	f.DurationVar(&o.duration, "storm-duration", o.duration, "time bound of each storm load")
	f.DurationVar(&o.warmup, "storm-warmup", o.warmup, "unmeasured run of each storm load before it")
	f.DurationVar(&o.timeout, "storm-timeout", o.timeout, "time allowed for each storm call (a timeout counts as an error)")
	f.IntVar(&o.registrations, "storm-registrations", o.registrations, "programs registered during the storms")
}

func (o *stormOptions) args() []string {
	cs := make([]string, len(o.clients))
	for i, n := range o.clients {
		cs[i] = strconv.Itoa(n)
	}
	return []string{
		"--storm-clients=" + strings.Join(cs, ","),
		"--storm-loads=" + strings.Join(o.loads, ","),
		"--storm-duration=" + o.duration.String(),
		"--storm-warmup=" + o.warmup.String(),
		"--storm-timeout=" + o.timeout.String(),
		"--storm-registrations=" + strconv.Itoa(o.registrations),
	}
}

// newStormCommand measures one daemon through the storm loads.
func newStormCommand() *cobra.Command {
	o := defaultStormOptions()
	var name, daemon, address, socket string
	var maxRequests int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "storm",
		Short: "Measure one portmapper when every call comes on a new connection",
		Long: `Spawn the daemon, register --storm-registrations programs over the local
socket, then for each client count and storm load open, call once and close
connections as fast as the clients can for --storm-duration: what a cluster
booting or an automounter firing does to port 111. The daemon's CPU time
and its peak RSS come from /proc. "compare" runs this in a private
namespace for each daemon and for a minimal responder.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			cfg := bench.StormConfig{
				Name: name, Daemon: strings.Fields(daemon), Address: address, Socket: socket,
				Registrations: o.registrations, Loads: o.loads, Clients: o.clients,
				Duration: o.duration, Warmup: o.warmup, Timeout: o.timeout, MaxRequests: maxRequests,
				Progress: func(format string, args ...any) {
					fmt.Fprintf(stderr, "%s: "+format+"\n", append([]any{name}, args...)...)
				},
			}
			run, err := bench.RunStorm(cmd.Context(), cfg)
			res := &bench.Result{Name: name, Command: cfg.Daemon, Storm: run}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				if jerr := enc.Encode(res); jerr != nil && err == nil {
					err = jerr
				}
			} else if ferr := bench.FormatStormTable(cmd.OutOrStdout(), res, nil, nil); ferr != nil && err == nil {
				err = ferr
			}
			return err
		},
	}
	f := cmd.Flags()
	o.addFlags(f)
	f.StringVar(&name, "name", "portmapper", "label of the results")
	f.StringVar(&daemon, "daemon", "", `command line of the daemon to spawn, split at spaces ("/usr/sbin/rpcbind -f")`)
	f.StringVar(&address, "address", "127.0.0.1:111", "host:port of the portmapper over UDP and TCP")
	f.StringVar(&socket, "socket", "/run/rpcbind.sock", "the portmapper's local socket")
	f.IntVar(&maxRequests, "max-requests", 2_000_000, "count bound of each storm load")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON instead of a table")
	cmd.MarkFlagRequired("daemon")
	return cmd
}

// newResponderCommand runs the minimal responder the storms are
// measured against; compare spawns it in a namespace of its own.
func newResponderCommand() *cobra.Command {
	var address, socket string
	cmd := &cobra.Command{
		Use:    "responder",
		Short:  "Answer every stream call with a fixed reply: the storm's physical limit",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return bench.Responder(ctx, address, socket)
		},
	}
	cmd.Flags().StringVar(&address, "address", "127.0.0.1:111", "host:port of TCP and UDP")
	cmd.Flags().StringVar(&socket, "socket", "/run/rpcbind.sock", "the local socket")
	return cmd
}

// runStorms measures each daemon, then the minimal responder, through the
// storm loads, each in a namespace of its own, and returns the
// responder's results.
func (o *benchCompareOptions) runStorms(ctx context.Context, self string, all []*contender, stderr io.Writer) *bench.Result {
	if len(o.storm.clients) == 0 || len(o.storm.loads) == 0 {
		return nil
	}
	limit := &contender{name: "responder", daemon: self + " responder"}
	var limitRes *bench.Result
	for _, c := range append(append([]*contender(nil), all...), limit) {
		if c.res == nil && c != limit {
			continue
		}
		regs := o.storm.registrations
		if c == limit {
			regs = 0 // it keeps no table
		}
		so := o.storm
		so.registrations = regs
		argv := append([]string{self, "storm", "--json", "--name=" + c.name, "--daemon=" + c.daemon}, so.args()...)
		res, err := bench.RunInNamespace(ctx, argv, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "%s: storm stopped: %v\n", c.name, err)
		}
		if res == nil {
			continue
		}
		if c == limit {
			limitRes = res
		} else {
			c.res.Storm = res.Storm
		}
	}
	return limitRes
}
