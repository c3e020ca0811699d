// Command portmapd is an ONC RPC portmapper: a drop-in replacement for
// rpcbind and portmap. See "portmapd --help".
package main

import (
	"os"

	"github.com/portmapd/portmapd/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
