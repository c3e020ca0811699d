package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/portmapd/portmapd/internal/netns"
)

func main() {
	// As a namespace's PID 1 (RunInNamespace re-executes this program
	// for it), Main never returns.
	netns.Main()
	os.Exit(execute())
}

// execute runs the program with a context that SIGINT and SIGTERM cancel,
// returning the process exit code.
func execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "portmapd-bench:", err)
		return 1
	}
	return 0
}

// newRootCommand builds the program with its subcommands.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "portmapd-bench",
		Short: "Load-test portmapd and rpcbind over the wire and compare them",
		Long: `Load-test a portmapper by speaking the protocol: register N programs, then
drive GETPORT over UDP and persistent TCP connections, v4 GETADDR over UDP,
DUMP over TCP and SET/UNSET churn with closed-loop clients, each load bounded
in time and count. "compare" runs portmapd and rpcbind through the same loads,
each in a private namespace of its own, and prints one table.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(), newCompareCommand(), newStormCommand(), newResponderCommand())
	return root
}
