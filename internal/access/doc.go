// Package access decides which hosts may use the portmapper beyond NULL.
//
// Lists of addresses and networks come from the command line (--allow,
// --deny) and, for administrators coming from tcp_wrappers, from the
// "rpcbind" and "portmap" entries of /etc/hosts.allow and /etc/hosts.deny.
// The rule is tcp_wrappers': a host matched by an allow rule is let in; else
// one matched by a deny rule is refused; else it is let in. Host names and
// NIS netgroups are not supported (resolving names on every call is how
// rpcbind got slow); such patterns are reported and never match.
package access
