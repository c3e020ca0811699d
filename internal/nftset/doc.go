// Package nftset keeps an nftables set equal to the services registered
// with the portmapper, so that one firewall rule,
//
//	meta l4proto . th dport @rpc_services accept
//
// admits exactly the ports that mountd, statd, lockd and the others
// picked when they started, and closes each when its service goes.
//
// The administrator declares the set (type inet_proto . inet_service);
// the daemon only writes its elements. Changes flow one way: the
// registry's watch hook (pmap.Registry.Watch) counts, per proto . port,
// the registrations that use it (Syncer.Change, a map update under a
// mutex); a single goroutine then reads the set, diffs what is wanted
// against it and writes the difference in one netlink batch.
// A short pause before each batch coalesces bursts, so a SET/UNSET loop
// costs at most one batch per pause, each no larger than the number of
// distinct ports involved, and the set equals the table once registrations
// are quiet. A failed batch is logged, counted, and retried with backoff;
// since each batch starts from the set as the kernel has it, a retry, or
// the periodic resync, also repairs what other writers did to the set.
//
// It talks to the kernel through github.com/google/nftables, a maintained
// pure-Go netlink implementation of nf_tables, rather than running nft:
// no process per change, no parsing of nft's output, and errors that are
// errnos rather than text.
package nftset
