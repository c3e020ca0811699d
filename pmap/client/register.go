package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/portmapd/portmapd/pmap"
)

// Registration is a service's set of mappings, made by Register and
// removed by Unregister.
type Registration struct {
	c        *Client
	prog     uint32
	vers     uint32
	netids   []string
	mappings []pmap.Mapping
}

// Mappings returns what was registered.
func (r *Registration) Mappings() []pmap.Mapping { return r.mappings }

// Register maps (prog, vers) to the address of each listener or packet
// connection a Go RPC service serves on. Stale entries of (prog, vers)
// left by an earlier run of the service are removed first, as services
// do with pmap_unset at start. Call Unregister when the service stops.
func Register(ctx context.Context, c *Client, prog, vers uint32, addrs ...net.Addr) (*Registration, error) {
	r := &Registration{c: c, prog: prog, vers: vers}
	for _, a := range addrs {
		m, err := mappingFor(prog, vers, a)
		if err != nil {
			return nil, err
		}
		r.mappings = append(r.mappings, m)
		r.netids = append(r.netids, m.Netid)
	}
	for _, netid := range r.netids {
		if _, err := c.Unset(ctx, prog, vers, netid); err != nil {
			return nil, fmt.Errorf("removing stale registration of %d/%d on %s: %w", prog, vers, netid, err)
		}
	}
	for i, m := range r.mappings {
		ok, err := c.Set(ctx, m)
		if err == nil && !ok {
			err = fmt.Errorf("portmapper refused %d/%d on %s at %s (another address is registered)", prog, vers, m.Netid, m.Addr)
		}
		if err != nil {
			r.mappings = r.mappings[:i]
			r.netids = r.netids[:i]
			return nil, errors.Join(err, r.Unregister(ctx))
		}
	}
	return r, nil
}

// Unregister removes the registration's mappings.
func (r *Registration) Unregister(ctx context.Context) error {
	var errs []error
	for _, netid := range r.netids {
		if _, err := r.c.Unset(ctx, r.prog, r.vers, netid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mappingFor turns a listening address into a mapping: the netid from
// its network and family, the universal address from the address (a
// wildcard stays a wildcard, which the portmapper merges per caller).
func mappingFor(prog, vers uint32, a net.Addr) (pmap.Mapping, error) {
	var ap netip.AddrPort
	var proto string
	switch a := a.(type) {
	case *net.TCPAddr:
		ap, proto = a.AddrPort(), "tcp"
	case *net.UDPAddr:
		ap, proto = a.AddrPort(), "udp"
	case *net.UnixAddr:
		return pmap.Mapping{Prog: prog, Vers: vers, Netid: "local", Addr: a.Name}, nil
	default:
		return pmap.Mapping{}, fmt.Errorf("cannot register an address of type %T", a)
	}
	addr := ap.Addr()
	if !addr.IsValid() {
		// A nil IP, as in &net.UDPAddr{Port: p}, means every address.
		addr = netip.IPv4Unspecified()
	}
	netid := proto
	if addr.Is6() && !addr.Is4In6() {
		netid += "6"
	} else {
		addr = addr.Unmap()
	}
	return pmap.Mapping{Prog: prog, Vers: vers, Netid: netid, Addr: pmap.FormatUaddr(netip.AddrPortFrom(addr, ap.Port()))}, nil
}
