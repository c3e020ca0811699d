// Package rpc is the ONC RPC version 2 layer of portmapd (RFC 5531).
//
// It parses call headers and AUTH_SYS credentials, builds replies by
// appending to the caller's buffer, reassembles record-marked messages on
// streams under a total size cap, and serves calls on UDP, TCP and unix
// sockets through a Handler. A Mux dispatches by program and version and
// answers PROG_UNAVAIL, PROG_MISMATCH and PROC_UNAVAIL itself, so handlers
// see only calls to procedures they registered.
//
// A message whose header does not parse gets no reply at all: any answer
// to garbage can be used to amplify. Handlers see the transport, the remote
// and local addresses, and on the local socket the caller's uid.
package rpc
