// Package client talks to a portmapper (portmapd, rpcbind or portmap) from
// Go: look services up (GetPort, GetAddr), list them (Dump), and register
// a Go RPC service for as long as it runs (Set, Unset, Register).
//
// Dial connects over "unix" (the local socket, where the daemon learns the
// caller's uid and records it as the entry's owner; "@name" is an abstract
// socket), "tcp" or "udp". For registering, DialLocal tries the local
// socket first, its abstract name before its path, and falls back to TCP
// on the loopback address, as libtirpc 1.3.5 does.
//
// Beneath Client lies the call machinery every RPC client of this module
// is built on (package tirpc, portmapd info's libtirpc, the load generator,
// the liveness checker): Stream and Datagram carry a call the caller
// built and return the reply in a reused buffer, on a Retry schedule over
// UDP; DialReserved and ListenReserved make sockets as libtirpc does.
// The RFC 1833 structures themselves are coded in package pmap.
package client
