// Package rpcinfo is rpcinfo(8) in Go: "portmapd info", or portmapd run
// under the name rpcinfo.
//
// For the same portmapper it prints what Debian's rpcinfo 1.2.6 prints,
// byte for byte, and makes the same calls in the same order, because
// scripts parse that output and the portmapper's statistics (rpcinfo -m)
// count those calls. So the code follows rpcinfo.c and the parts of
// libtirpc it goes through (getopt, netconfig, rpcb_clnt's lookups and
// fallbacks, clnt_vc and clnt_dg, clnt_perror's messages) step by step,
// C's integer conversions included; the comments name the C function each
// piece stands for. It departs from them only where C would hang or
// overflow on a hostile server's replies: every length is checked before
// use, lists are bounded, waits have an end, and a server claiming four
// billion versions is pinged for the first thousand.
//
// On top it adds --json, --host (several hosts queried at once),
// --timeout and --socket, and gives -n PORT, which rpcinfo 1.2.x parses
// and ignores, a meaning: the portmapper is asked on that port.
//
// The command line is parsed once into options that every --host's run
// shares; each mode fills a typed result, which render.go turns into
// rpcinfo's text and finish into --json's. The libtirpc it goes through
// (netconfig, clnt_vc and clnt_dg, rpcb_clnt's lookups and fallbacks,
// clnt_perror's texts) is package pmap/client/tirpc, on pmap/client's
// Stream, Datagram and Broadcast; over the local socket, its Client. As
// in rpcinfo 1.2.7 and libtirpc 1.3.5, the local socket is its abstract
// name (@/run/rpcbind.sock, this network namespace's portmapper) when
// something listens there, else its path (--abstract-socket, --socket).
package rpcinfo
