// Package bench load-tests a portmapper over the wire, so that portmapd and
// Debian's rpcbind can be put through the same loads and compared.
//
// Run spawns the daemon (or uses one already running), registers N
// programs over the local socket, then drives closed-loop clients, each
// with its own socket: PMAP v2 GETPORT over UDP and over persistent TCP
// connections, RPCBIND v4 GETADDR over UDP, v2 DUMP over TCP and v3
// SET/UNSET churn. Every load is bounded by a duration and a request count,
// every request by a timeout. Answers are checked (the registered port, 0 for
// an unregistered program, the full table in a DUMP), so a wrong answer
// counts as an error, not as a fast one. A share of the lookups asks about
// programs that are not registered, as clients probing for optional
// services do.
//
// The daemon's CPU time and RSS come from /proc/PID, so Run must see the
// daemon's PID: it spawns it itself, which also lets it time start-up to the
// first answer. RunInNamespace runs a command (portmapd-bench's own "run")
// in a private network, mount and PID namespace (internal/netns) where port
// 111 and /run/rpcbind.sock belong to the daemon under test and never to
// the machine. FormatTable prints two daemons' results side by
// side with their ratio. RunStorm measures the storms, every call on a
// connection of its own, from epoll-driven clients that time each call to
// its reply's arrival by the kernel's stamp (and, beside it, to its read),
// beside Responder, the least a Go program can do per connection;
// FormatStormTable prints them.
// `portmapd-bench compare` (cmd/portmapd-bench) strings these together.
package bench
