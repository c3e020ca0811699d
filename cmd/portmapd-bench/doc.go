// Command portmapd-bench is the load generator of `make bench`: it puts
// portmapd ("portmapd serve") and Debian's rpcbind through the same loads,
// each the port-111 portmapper of a private namespace, and prints their
// figures side by side. It is a program of its own so that the daemon does
// not link the load generator (internal/bench). See "portmapd-bench
// compare --help".
package main
