package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portmapd/portmapd/internal/bench"
)

// benchLoadOptions are the settings of the loads themselves; compare
// passes them on to the run in each namespace.
type benchLoadOptions struct {
	cfg bench.Config
}

func (o *benchLoadOptions) addFlags(f *pflag.FlagSet) {
	c := &o.cfg
	f.IntSliceVar(&c.Registrations, "registrations", c.Registrations, "table sizes to measure at, in order")
	f.StringSliceVar(&c.Loads, "loads", c.Loads, "loads to drive at each size: "+strings.Join(bench.Loads, ","))
	f.IntVar(&c.Clients, "clients", c.Clients, "closed-loop clients per load, each with its own socket")
	f.DurationVar(&c.Duration, "duration", c.Duration, "time bound of each load")
	f.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured run of each load before it")
	f.IntVar(&c.MaxRequests, "max-requests", c.MaxRequests, "count bound of each load, all clients together")
	f.DurationVar(&c.Timeout, "timeout", c.Timeout, "time allowed for each request (a timeout counts as an error)")
	f.IntVar(&c.UnregisteredPercent, "unregistered-percent", c.UnregisteredPercent, "share of lookups that ask about unregistered programs")
	f.IntVar(&c.FreshLookups, "fresh-lookups", c.FreshLookups, "count bound of the stream of lookups of ever-new programs (0 skips it)")
	f.DurationVar(&c.FreshDuration, "fresh-duration", c.FreshDuration, "time bound of that stream")
	f.IntVar(&c.WarmRegistrations, "warm-registrations", c.WarmRegistrations, "registrations to restore in the warm-start measurement")
	f.IntVar(&c.WarmRestarts, "warm-restarts", c.WarmRestarts, "restarts timed in the warm-start measurement")
	f.DurationVar(&c.RegisterTimeout, "register-timeout", c.RegisterTimeout, "time bound for registering one table size")
}

// args renders the options as flags for a run in a namespace, at the
// table sizes regs.
func (o *benchLoadOptions) args(regs ...int) []string {
	c := &o.cfg
	sizes := make([]string, len(regs))
	for i, n := range regs {
		sizes[i] = strconv.Itoa(n)
	}
	return []string{
		"--registrations=" + strings.Join(sizes, ","),
		"--loads=" + strings.Join(c.Loads, ","),
		"--clients=" + strconv.Itoa(c.Clients),
		"--duration=" + c.Duration.String(),
		"--warmup=" + c.Warmup.String(),
		"--max-requests=" + strconv.Itoa(c.MaxRequests),
		"--timeout=" + c.Timeout.String(),
		"--unregistered-percent=" + strconv.Itoa(c.UnregisteredPercent),
		"--fresh-lookups=" + strconv.Itoa(c.FreshLookups),
		"--fresh-duration=" + c.FreshDuration.String(),
		"--warm-registrations=" + strconv.Itoa(c.WarmRegistrations),
		"--warm-restarts=" + strconv.Itoa(c.WarmRestarts),
		"--register-timeout=" + c.RegisterTimeout.String(),
	}
}

type benchRunOptions struct {
	benchLoadOptions
	daemon, warmDaemon string
	durableDaemon      string
	asJSON             bool
}

func newRunCommand() *cobra.Command {
	o := &benchRunOptions{benchLoadOptions: benchLoadOptions{cfg: bench.DefaultConfig()}}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Measure one portmapper",
		Long: `Measure one portmapper. With --daemon the command is spawned afresh for each
table size (its start-up to the first answer is timed, and its CPU time and
RSS read from /proc); it must serve --address and --socket. Without it a
portmapper already running there is measured, and --pid names it for the CPU
and RSS figures. Registrations and SET/UNSET go through the local socket, so
run as root or as the daemon's user. "compare" runs this command in a
private namespace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := o.cfg
			cfg.Daemon = strings.Fields(o.daemon)
			cfg.WarmDaemon = strings.Fields(o.warmDaemon)
			cfg.DurableDaemon = strings.Fields(o.durableDaemon)
			if len(cfg.Registrations) == 0 {
				return errors.New("--registrations: give at least one table size")
			}
			cfg.Progress = cmd.ErrOrStderr()
			res, err := bench.Run(cmd.Context(), cfg)
			if res != nil {
				if o.asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if jerr := enc.Encode(res); jerr != nil && err == nil {
						err = jerr
					}
				} else if ferr := bench.FormatTable(cmd.OutOrStdout(), res, nil); ferr != nil && err == nil {
					err = ferr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	o.addFlags(f)
	f.StringVar(&o.cfg.Name, "name", "portmapper", "label of the results")
	f.StringVar(&o.daemon, "daemon", "", `command line of the daemon to spawn, split at spaces ("/usr/sbin/rpcbind -f")`)
	f.StringVar(&o.warmDaemon, "warm-daemon", "", "command line of a daemon that keeps its table across a clean restart, to time that restart (empty skips it)")
	f.IntSliceVar(&o.cfg.DurableRegistrations, "durable-registrations", nil, "table sizes of the durable-SET loads (none: skip them)")
	f.StringVar(&o.durableDaemon, "durable-daemon", "", "command line of a daemon that makes each SET durable before answering it (empty: --daemon, reported as having none)")
	f.IntVar(&o.cfg.Pid, "pid", 0, "PID of an already running daemon, for CPU and RSS (without --daemon)")
	f.StringVar(&o.cfg.Address, "address", o.cfg.Address, "host:port of the portmapper over UDP and TCP")
	f.StringVar(&o.cfg.Socket, "socket", o.cfg.Socket, "local socket for registrations and SET/UNSET (empty: TCP to --address)")
	f.BoolVar(&o.asJSON, "json", false, "print the results as JSON instead of a table")
	return cmd
}

type benchCompareOptions struct {
	benchLoadOptions
	rpcbind          string
	portmapd         string
	portmapdArgs     string
	portmapdWarmArgs string
	rpcbindWarm      bool
	// The durable-SET loads: their table sizes, and the serve arguments
	// that make portmapd's SETs durable.
	durableRegs         []int
	portmapdDurableArgs string
	jsonOut             string
	total               time.Duration
	storm               stormOptions
}

func newCompareCommand() *cobra.Command {
	o := &benchCompareOptions{benchLoadOptions: benchLoadOptions{cfg: bench.DefaultConfig()}, storm: defaultStormOptions()}
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run portmapd and rpcbind through the same loads and print one table",
		Long: `Run portmapd ("portmapd serve", see --portmapd) and, when it is installed, Debian's rpcbind
("rpcbind -f") through the same loads, taking turns one table size at a
time, each as the port-111 portmapper of a private network, mount and PID
namespace of its own (internal/netns), so the machine's port 111 is never touched.
Prints one table: every figure of both daemons and the ratio
portmapd/rpcbind. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.cfg.Registrations) == 0 {
				return errors.New("--registrations: give at least one table size")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.total)
			defer cancel()
			return o.run(ctx, cmd)
		},
	}
	f := cmd.Flags()
	o.addFlags(f)
	f.StringVar(&o.portmapd, "portmapd", "", `portmapd binary (default: portmapd beside this program, else on PATH)`)
	f.StringVar(&o.rpcbind, "rpcbind", "", `rpcbind binary (default: rpcbind on PATH or /usr/sbin/rpcbind; "none" skips it)`)
	// No options files: rpcbind runs without /etc/default/rpcbind too.
	f.StringVar(&o.portmapdArgs, "portmapd-args", "--log-level warn --env-file=", "arguments after \"portmapd serve\"")
	f.StringVar(&o.portmapdWarmArgs, "portmapd-warm-args", "",
		"further serve arguments that turn warm start on, to time a restart with a table (empty skips portmapd's)")
	f.BoolVar(&o.rpcbindWarm, "rpcbind-warm", true, "time a restart of rpcbind -w with a table")
	f.IntSliceVar(&o.durableRegs, "durable-registrations", bench.DefaultDurableRegistrations,
		"table sizes of the durable-SET loads, run with the last table size (0 skips them)")
	f.StringVar(&o.portmapdDurableArgs, "portmapd-durable-args", "--warm-start --state-dir /run/portmapd-durable",
		"further serve arguments that make portmapd's SETs durable, for the durable-SET loads")
	f.StringVar(&o.jsonOut, "json", "", "also write both results as JSON to this file")
	f.DurationVar(&o.total, "total-timeout", 60*time.Minute, "time bound of the whole comparison")
	o.storm.addFlags(f)
	return cmd
}

// contender is one daemon of the comparison.
type contender struct {
	name, daemon, warm string
	durable            string // "": the daemon has no durable SET
	res                *bench.Result
	err                error
}

func (o *benchCompareOptions) run(ctx context.Context, cmd *cobra.Command) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	portmapd, err := o.portmapdPath(self)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	serve := portmapd + " serve " + o.portmapdArgs
	ours := &contender{name: "portmapd", daemon: serve, durable: serve + " " + o.portmapdDurableArgs}
	if o.portmapdWarmArgs != "" {
		ours.warm = serve + " " + o.portmapdWarmArgs
	}
	all := []*contender{ours}
	if path := o.rpcbindPath(); path == "" {
		fmt.Fprintln(stderr, "rpcbind is not installed (apt-get install rpcbind): measuring portmapd alone")
	} else {
		theirs := &contender{name: "rpcbind", daemon: path + " -f"}
		if o.rpcbindWarm {
			theirs.warm = path + " -f -w"
		}
		all = append(all, theirs)
	}

	// The daemons take turns, one table size at a time, each in a fresh
	// namespace: whatever else loads the machine meanwhile then weighs on
	// both alike. The fresh-lookups stream and the warm start come with
	// the last size.
	regs := o.cfg.Registrations
	for i, n := range regs {
		last := i == len(regs)-1
		for _, c := range all {
			if c.err != nil {
				continue
			}
			argv := []string{self, "run", "--json", "--name=" + c.name, "--daemon=" + c.daemon}
			argv = append(argv, o.args(n)...)
			if last && c.warm != "" {
				argv = append(argv, "--warm-daemon="+c.warm)
			}
			if durable := slices.DeleteFunc(slices.Clone(o.durableRegs), func(n int) bool { return n <= 0 }); last && len(durable) > 0 {
				argv = append(argv, "--durable-registrations="+joinInts(durable))
				if c.durable != "" {
					argv = append(argv, "--durable-daemon="+c.durable)
				}
			}
			if !last {
				argv = append(argv, "--fresh-lookups=0")
			}
			res, err := bench.RunInNamespace(ctx, argv, stderr)
			if res != nil {
				if c.res == nil {
					c.res = res
				} else {
					c.res.Merge(res)
				}
			}
			if err != nil {
				// The other daemon is still measured; this one's table
				// shows what it got through.
				c.err = err
				fmt.Fprintf(stderr, "%s: run stopped: %v\n", c.name, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if ours.res == nil {
		return fmt.Errorf("portmapd: no results: %w", ours.err)
	}
	limit := o.runStorms(ctx, self, all, stderr)

	var theirs *bench.Result
	if len(all) > 1 {
		theirs = all[1].res
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out)
	if err := bench.FormatTable(out, ours.res, theirs); err != nil {
		return err
	}
	if err := bench.FormatStormTable(out, ours.res, theirs, limit); err != nil {
		return err
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]*bench.Result{"portmapd": ours.res, "rpcbind": theirs}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil { //nolint:gosec // G306: results, for anyone to read
			return err
		}
	}
	var errs []error
	for _, c := range all {
		errs = append(errs, c.err)
	}
	return errors.Join(errs...)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// portmapdPath finds the portmapd to measure: --portmapd, else the one
// `make build` puts beside this program, else portmapd on PATH.
func (o *benchCompareOptions) portmapdPath(self string) (string, error) {
	if o.portmapd != "" {
		return o.portmapd, nil
	}
	if p := filepath.Join(filepath.Dir(self), "portmapd"); isExecutable(p) {
		return p, nil
	}
	p, err := exec.LookPath("portmapd")
	if err != nil {
		return "", fmt.Errorf("no portmapd beside %s or on PATH: give --portmapd", self)
	}
	return p, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// rpcbindPath finds the rpcbind to compare with, or returns "" to skip it.
func (o *benchCompareOptions) rpcbindPath() string {
	switch o.rpcbind {
	case "none":
		return ""
	case "":
		if p, err := exec.LookPath("rpcbind"); err == nil {
			return p
		}
		// Debian installs it in /usr/sbin, which a user's PATH may lack.
		if _, err := os.Stat("/usr/sbin/rpcbind"); err == nil {
			return "/usr/sbin/rpcbind"
		}
		return ""
	}
	return o.rpcbind
}
