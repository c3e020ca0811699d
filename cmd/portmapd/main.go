package main

import (
	"os"

	"github.com/portmapd/portmapd/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
