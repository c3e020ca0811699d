package daemon

// What the daemon's external tests (package daemon_test, which builds its
// daemons with daemontest) look at inside a Daemon.

// CloseAll closes a daemon that was built but not served.
func CloseAll(d *Daemon) { d.closeAll() }

// LocalListeners lists the addresses of the daemon's netid-local sockets.
func LocalListeners(d *Daemon) []string {
	var local []string
	for _, s := range d.stream {
		if s.netid == "local" {
			local = append(local, s.l.Addr().String())
		}
	}
	return local
}
