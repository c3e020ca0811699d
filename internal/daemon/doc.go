// Package daemon wires portmapd together: it binds the sockets rpcbind
// binds (udp, tcp, udp6, tcp6 on port 111 and the local stream socket),
// fills the registration table with the daemon's own rows, and serves the
// portmapper's procedures until its context ends.
package daemon
