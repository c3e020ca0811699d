// Package cli holds portmapd's cobra commands. Each command is built by a
// constructor from an options struct, so tests can build and run them
// without global state.
package cli
