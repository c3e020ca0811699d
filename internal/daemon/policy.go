package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/state"
	"github.com/portmapd/portmapd/pmap"
)

// Policy is the part of Config that says who may do what.
type Policy struct {
	// Allow and Deny are addresses or CIDR networks; HostsFiles also
	// reads the rpcbind and portmap entries of /etc/hosts.allow and
	// /etc/hosts.deny.
	Allow, Deny []string
	HostsFiles  bool
	// OpenPrivilegedPorts lets unprivileged callers map ports below 1024
	// and 2049, as rpcbind does.
	OpenPrivilegedPorts bool
	// PortRange ("low-high"), if set, is where registrations must be;
	// PortRangeRefuse refuses others instead of logging them.
	PortRange       string
	PortRangeRefuse bool
	// User, if set, is who the daemon runs as once its sockets are bound.
	User string
}

// Files tcp_wrappers read; variables so tests can point elsewhere.
var (
	HostsAllow = "/etc/hosts.allow"
	HostsDeny  = "/etc/hosts.deny"
)

// applyPolicy fills the service's policy fields from cfg.
func (d *Daemon) applyPolicy(p Policy) error {
	svc := d.Service
	svc.OpenPrivilegedPorts = p.OpenPrivilegedPorts
	if p.PortRange != "" {
		r, err := pmap.ParsePortRange(p.PortRange)
		if err != nil {
			return fmt.Errorf("--port-range %w", err)
		}
		r.Refuse = p.PortRangeRefuse
		svc.Ports = &r
	}
	l, err := d.accessList(p)
	if err != nil {
		return err
	}
	d.sys.access.Store(l)
	// Always installed, so that a reload can add rules to an empty list.
	svc.Access = func(a netip.Addr) bool { return d.sys.access.Load().Allowed(a) }
	return nil
}

// dropPrivileges switches to name once the sockets are bound, keeping the
// state directory writable. Go applies setuid to every thread.
func (d *Daemon) dropPrivileges(name, stateDir string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("--user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if stateDir != "" {
		for _, p := range []string{stateDir, filepath.Join(stateDir, state.FileName), filepath.Join(stateDir, state.JournalName)} {
			if err := os.Lchown(p, uid, gid); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("--user: handing %s to %s: %w", p, name, err)
			}
		}
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("--user: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("--user: setgid: %w", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("--user: setuid: %w", err)
	}
	d.log.Info("dropped privileges", zap.String("user", name), zap.Int("uid", uid), zap.Int("gid", gid))
	return nil
}
