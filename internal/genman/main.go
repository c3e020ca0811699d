package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra/doc"

	"github.com/portmapd/portmapd/internal/cli"
)

func main() {
	dir := flag.String("dir", ".", "directory to write the pages to")
	flag.Parse()
	if err := writePages(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
}

// writePages writes a page for every command (section 8) into dir.
func writePages(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := cli.NewRootCommand()
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Title: "PORTMAPD", Section: "8", Source: "portmapd", Manual: "System Manager's Manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	return nil
}
