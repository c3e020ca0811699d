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
//
// A handler writes everything it produces into the Reply the server
// gives it, in the manner of a ResponseWriter: the results, a cached tail
// sent without copying, and a wait to finish before the reply leaves; or
// it returns an error that chooses the reply. The Call carries only the
// call.
//
// A datagram socket has one reader, which takes the calls queued in the
// socket in batches (recvmmsg) and sends their replies together
// (sendmmsg): under load a call costs a fraction of a system call each
// way. A reply that must wait before it is sent (a change being made
// durable, Reply.After) waits off the reader. Each stream connection has
// a goroutine of its own; the calls a client pipelined are all handled
// before their waits run, so that they share one write to disk.
package rpc
