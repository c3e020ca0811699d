package options

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// RpcbindUser is the account Debian's rpcbind switches to with -s.
const RpcbindUser = "_rpc"

// TranslateRpcbind rewrites rpcbind's command-line options (getopt string
// "adh:ilswfr", as in Debian's rpcbind 1.2.6) into portmapd serve flags,
// with a note for each option whose meaning differs. Words that are not
// rpcbind options pass through untouched, so portmapd's own flags can be
// mixed in: long flags (--log-calls, --host=ADDR, and a value following
// one as its own word), -H and -i, which mean in portmapd what they look
// like. Any other single-letter option is an error: it would be an
// rpcbind option that has no meaning here (or a typo), and guessing would
// start the daemon configured differently from what was asked.
//
//	-a       (abort on errors)   nothing; noted
//	-d       (debug)             --log-level=debug; noted (no forking anyway)
//	-f       (foreground)        nothing; noted (portmapd never forks)
//	-h ADDR  (bind for UDP)      --host=ADDR; noted (portmapd binds TCP too)
//	-i       (insecure)          --insecure
//	-l       (libwrap logging)   --log-calls; noted
//	-r       (remote calls)      --remote-calls
//	-s       (run as user)       --user=_rpc
//	-v       (version, 1.2.8)    --version (RewriteArgv: print it and exit)
//	-w       (warm start)        --warm-start
func TranslateRpcbind(args []string) (flags []string, notes []string, err error) {
	note := func(s string) {
		if !slices.Contains(notes, s) {
			notes = append(notes, s)
		}
	}
	for i := 0; i < len(args); i++ {
		w := args[i]
		switch {
		case w == "--":
			if rest := args[i+1:]; len(rest) > 0 {
				return nil, nil, fmt.Errorf("rpcbind takes no arguments, got %q", rest)
			}
			return flags, notes, nil
		case strings.HasPrefix(w, "--"), !strings.HasPrefix(w, "-"), w == "-":
			flags = append(flags, w)
			continue
		}
		// A cluster of single-letter options, as getopt reads it: "-wi",
		// "-h10.0.0.1", "-wh" followed by the address as the next word.
		cluster := w[1:]
		for j := 0; j < len(cluster); j++ {
			switch c := cluster[j]; c {
			case 'a':
				note("-a (abort on errors in debug mode) is accepted and does nothing: portmapd does not abort")
			case 'd':
				flags = append(flags, "--log-level=debug")
				note("-d: debug logging (--log-level=debug); portmapd runs in the foreground anyway")
			case 'f':
				note("-f is accepted and does nothing: portmapd always runs in the foreground")
			case 'i':
				flags = append(flags, "--insecure")
			case 'l':
				flags = append(flags, "--log-calls")
				note("-l: portmapd has no libwrap; it logs calls instead (--log-calls)")
			case 'r':
				flags = append(flags, "--remote-calls")
			case 's':
				flags = append(flags, "--user="+RpcbindUser)
			case 'v':
				flags = append(flags, "--version")
			case 'w':
				flags = append(flags, "--warm-start")
			case 'h', 'H':
				// rpcbind's -h and portmapd's -H both take an address.
				addr := cluster[j+1:]
				if addr == "" {
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("-%c needs an address", c)
					}
					i++
					addr = args[i]
				}
				flags = append(flags, "--host="+addr)
				if c == 'h' {
					note("-h ADDR: portmapd binds TCP as well as UDP to the given addresses (rpcbind: UDP only)")
				}
				j = len(cluster)
			default:
				return nil, nil, fmt.Errorf("option -%c in %q is neither one of rpcbind's (-adfhilrsvw) "+
					"nor -H or -i; write portmapd options in their long form", c, w)
			}
		}
	}
	return flags, notes, nil
}

// RewriteArgv turns the command line of a binary installed or linked as
// "rpcbind" (so that scripts and units that run "rpcbind -w -f" keep
// working) into the equivalent "portmapd serve" command line, or, when it
// has -v (anywhere, as rpcbind stops there), into "portmapd --version".
// Any other argv is returned as it is, with no notes.
func RewriteArgv(argv []string) ([]string, []string, error) {
	if len(argv) == 0 || filepath.Base(argv[0]) != "rpcbind" {
		return argv, nil, nil
	}
	flags, notes, err := TranslateRpcbind(argv[1:])
	if err != nil {
		return nil, nil, fmt.Errorf("rpcbind command line: %w", err)
	}
	if slices.Contains(flags, "--version") {
		return []string{argv[0], "--version"}, nil, nil
	}
	return append([]string{argv[0], "serve"}, flags...), notes, nil
}
