// Package activation speaks the two halves of systemd's service protocol
// that a portmapper needs, without linking libsystemd:
//
//   - socket activation (sd_listen_fds): Sockets takes the descriptors
//     systemd bound for portmapd.socket (LISTEN_PID, LISTEN_FDS,
//     LISTEN_FDNAMES, descriptors from 3 on), works out what each one is
//     from the kernel rather than from the unit file, and hands them back
//     as a net.Listener or *net.UDPConn with the netid the portmapper
//     serves on it. An IPv6 socket that is not IPV6_V6ONLY is reported as
//     dual-stack, because it also receives IPv4 traffic (as mapped
//     addresses) and so stands in for the IPv4 netid too.
//   - readiness and liveness (sd_notify): a Notifier sends READY=1,
//     RELOADING=1, STOPPING=1, STATUS= and WATCHDOG=1 datagrams to
//     $NOTIFY_SOCKET, and RunWatchdog pings at half of WATCHDOG_USEC so
//     a wedged daemon is restarted.
//
// Both are inert outside systemd: with no LISTEN_PID, Sockets returns
// nothing and the daemon binds its own sockets; with no NOTIFY_SOCKET,
// every Notifier method is a no-op.
package activation
