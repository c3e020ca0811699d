// Package tirpc is libtirpc's client side as rpcinfo meets it, step for
// step: the netconfig database and its selection of transports, client
// handles over streams and datagrams with clnt_vc's and clnt_dg's
// timeouts and retransmissions (on pmap/client's Stream and Datagram),
// rpcb_clnt's lookups with their fallback from RPCBIND v4 to v3 to PMAP
// v2, rpc_broadcast (on pmap/client's Broadcast), and the clnt_stat
// statuses with clnt_perror's texts.
//
// The order of transports, versions and fallbacks is what a portmapper
// sees (its GETSTAT counts every call) and decides which error a caller
// prints, so it follows the C code, whose function each piece names.
// Where C keeps the thread's rpc_createerr, a Session keeps it and its
// functions return it as a typed error (CreateErr); a call's outcome is a
// Status with its details (RPCErr). Go programs that only want to talk to
// a portmapper use pmap/client's Client instead.
package tirpc
