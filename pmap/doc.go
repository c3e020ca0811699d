// Package pmap is the portmapper itself: the registration table that maps
// (program, version, netid) to a universal address, and the procedures of
// PMAP version 2 and RPCBIND versions 3 and 4 (RFC 1833) as rpc handlers
// over it.
//
// Registry is pure state with rpcbind's semantics (SET never overwrites,
// lookups fall back to another version, netids compare case-insensitively)
// and no I/O. Service serves the three versions as views of that one
// table, deriving owners and access from how a call arrived, merging
// addresses for the caller as rpcbind's addrmerge does, and keeping the
// GETSTAT counters in Stats. Where a client can see the difference, the
// procedures answer as Debian's rpcbind 1.2.6 does; where they do not, the
// comments say why.
package pmap
