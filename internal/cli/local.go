package cli

import (
	"github.com/spf13/pflag"

	"github.com/portmapd/portmapd/internal/daemon"
)

// privateInstance applies what --socket implies for the options left at
// their defaults. The abstract name @/run/rpcbind.sock and rpcbind's lock
// file belong to the system's portmapper, the one on /run/rpcbind.sock:
// an instance given another --socket (a second daemon on another port, a
// test) takes neither unless --abstract-socket or --rpcbind-lock-file
// names it, so it cannot capture the calls the kernel and libtirpc make
// to the abstract name, nor keep the system's portmapper from starting.
// Call it after options.Load, which marks the flags it set as changed.
func privateInstance(f *pflag.FlagSet, cfg *daemon.Config) {
	if !f.Changed("socket") || cfg.SocketPath == daemon.DefaultSocketPath {
		return
	}
	if !f.Changed("abstract-socket") {
		cfg.AbstractSocket = ""
	}
	if !f.Changed("rpcbind-lock-file") {
		cfg.RpcbindLockPath = ""
	}
}
