package cli

import (
	"github.com/spf13/cobra"

	"github.com/portmapd/portmapd/internal/rpcinfo"
)

// newInfoCommand is rpcinfo. Its options are rpcinfo's single-dash ones,
// parsed as getopt parses them, so cobra's flag parsing is off and the
// arguments go to rpcinfo.Run untouched.
func newInfoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "info [rpcinfo options] [host] [prog [vers]]",
		Short: "Query portmappers as rpcinfo does (same options and output), plus --json and several hosts",
		Long: `portmapd info is rpcinfo: the same options (-p -s -m -l -T -u -t -a -b -d -n)
and, for the same portmapper, the same output byte for byte. It also takes
--json, --host HOST (repeatable, queried at once), --timeout D,
--socket PATH and --abstract-socket NAME (the local portmapper is asked
on @/run/rpcbind.sock first, then /run/rpcbind.sock, as rpcinfo 1.2.7
does), and -n PORT really asks the portmapper on PORT.
"portmapd info --help" lists them; a link named rpcinfo runs it directly.`,
		DisableFlagParsing: true,
		SilenceUsage:       true,
		RunE: func(cmd *cobra.Command, args []string) error {
			code := rpcinfo.Run(args, rpcinfo.Options{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}

// exitCode is an error that only carries the status a command wants to
// exit with; it has printed its own messages.
type exitCode int

func (e exitCode) Error() string { return "" }
