// Package lockfile keeps a second portmapd from starting, and says who is
// in the way when one cannot start.
//
// Two portmappers on one host cannot both work: clients find whichever
// answers port 111 first, and registrations made with one are invisible
// to the other. Binding port 111 already fails for the second one, but
// not under socket activation (systemd holds the sockets) and not with
// SO_REUSEPORT; and a second daemon could still unlink and rebind the
// local socket of the first. So the daemon takes an exclusive flock(2)
// on a lock file first, holding its pid, and refuses to run otherwise,
// naming the pid of the one that runs.
//
// It takes rpcbind's lock file too (AcquireShared on RpcbindPath), the
// way rpcbind takes it, so that a real rpcbind and portmapd each refuse
// to start while the other runs.
//
// flock rather than a pid file checked with kill(pid, 0): the kernel
// drops the lock when its holder dies, however it dies, so a stale file
// never blocks a restart and a recycled pid never fakes a live daemon.
//
// PortUsers answers the other question, "port 111 is in use by whom?",
// from /proc/net/{tcp,udp,tcp6,udp6} and the socket inodes in
// /proc/*/fd, so an error can say "by rpcbind (pid 1234)".
package lockfile
