// Package netwatch tells the daemon when an address is added to or removed
// from a network interface, so that with --host (or a socket per address)
// it can bind an address that appears after start-up (DHCP, a VPN, a
// late NIC) and drop one that goes, instead of failing at boot or needing
// a restart that loses the registrations.
//
// It listens on an rtnetlink socket (NETLINK_ROUTE) subscribed to the
// IPv4 and IPv6 address groups and turns RTM_NEWADDR and RTM_DELADDR
// messages into Events. The syscall package has everything needed (the
// socket, the message and attribute parsers); golang.org/x/sys/unix would
// add only the two group constants, so it is not used.
//
// Only messages from the kernel are believed (sender port 0): a process
// with CAP_NET_ADMIN could otherwise send the daemon made-up changes, and
// checking costs nothing.
package netwatch
