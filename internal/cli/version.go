package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/portmapd/portmapd/internal/daemon"
)

// Version is set at build time (make build passes -ldflags -X); a binary
// built with plain go build reports the commit Go recorded instead.
var Version = ""

// version is what -v and --version print.
func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "0.9.0+" + s.Value[:12]
			}
		}
	}
	return "0.9.0"
}

// rpcbindVersion is what -v prints when the binary runs as rpcbind, in
// the shape of rpcbind 1.2.8's -v (to stderr, as rpcbind does): the
// package and version, then the built-in configuration with rpcbind's
// keys, saying what portmapd does for each: -d gives debug logging,
// hosts.allow/deny are read (libwrap), remote calls and warm start are
// there for -r and -w, and -s switches to _rpc (without it the daemon
// stays root).
func rpcbindVersion() string {
	return fmt.Sprintf("rpcbind %s (portmapd)\n"+
		"debug: yes, libset debug: no, libwrap: yes, nss modules: files, remote calls: yes, "+
		"statedir: %s, systemd: yes, user: root, warm start: yes\n", version(), daemon.DefaultStateDir)
}
