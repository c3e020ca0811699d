package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/internal/options"
	"github.com/portmapd/portmapd/internal/rpcinfo"
)

// logOptions configure the logger every subcommand uses.
type logOptions struct {
	level  string
	format string
}

// NewRootCommand builds the portmapd program with its subcommands.
func NewRootCommand() *cobra.Command {
	root, _, _ := newRoot()
	return root
}

// newRoot builds the program and returns, for reloading, where the serve
// command's options land.
func newRoot() (*cobra.Command, *logOptions, *daemon.Config) {
	lo := &logOptions{}
	cfg := &daemon.Config{}
	root := &cobra.Command{
		Use:           "portmapd",
		Short:         "An ONC RPC portmapper and rpcbind replacement",
		Long:          "portmapd maps ONC RPC program numbers to the addresses their services listen on (PMAP v2, RPCBIND v3 and v4, RFC 1833).",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.PersistentFlags().StringVar(&lo.level, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&lo.format, "log-format", "console", "log format: console or json")
	root.AddCommand(newServeCommand(lo, cfg), newDumpCommand(), newRestoreCommand())
	root.AddCommand(newInfoCommand(), newProbeCommand())
	return root, lo, cfg
}

// Execute runs the program with a context that SIGINT and SIGTERM cancel,
// returning the process exit code.
func Execute() int {
	// Installed (or linked) as rpcinfo, the program is rpcinfo.
	if filepath.Base(os.Args[0]) == "rpcinfo" {
		return rpcinfo.Run(os.Args[1:], rpcinfo.Options{Name: os.Args[0]})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand()
	// Installed as /sbin/rpcbind, the program takes rpcbind's options.
	if filepath.Base(os.Args[0]) == "rpcbind" {
		argv, _, err := options.RewriteArgv(os.Args)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rpcbind:", err)
			return 1
		}
		if slices.Contains(argv, "--version") { // rpcbind -v
			fmt.Fprint(os.Stderr, rpcbindVersion())
			return 0
		}
		root.SetArgs(argv[1:])
	}
	if err := root.ExecuteContext(ctx); err != nil {
		if code := exitCode(0); errors.As(err, &code) { // info and probe printed their own
			return int(code)
		}
		fmt.Fprintln(os.Stderr, "portmapd:", err)
		return 1
	}
	return 0
}

// newLogger builds a sampled zap logger: under a flood of bad packets the
// first hundred messages of a kind each second are written, then one in a
// hundred, so the log cannot be used to fill the disk.
func (lo *logOptions) newLogger() (*zap.Logger, zap.AtomicLevel, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(lo.level)); err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.DisableCaller = true
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	switch lo.format {
	case "json":
		cfg.Encoding = "json"
	case "console":
		cfg.Encoding = "console"
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	default:
		return nil, zap.AtomicLevel{}, fmt.Errorf("--log-format: %q is neither console nor json", lo.format)
	}
	log, err := cfg.Build()
	return log, cfg.Level, err
}
