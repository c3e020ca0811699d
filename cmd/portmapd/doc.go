// Command portmapd is an ONC RPC portmapper: a drop-in replacement for
// rpcbind and portmap. "portmapd serve" runs the daemon; "portmapd dump"
// and "restore" save and reload registrations (cmd/portmapd-bench compares
// it with rpcbind). The systemd units and the options file beside this
// file are what "make install" puts in place. See "portmapd --help".
package main
