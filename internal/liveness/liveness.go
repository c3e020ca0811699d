package liveness

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Checker probes registered services and removes dead ones.
type Checker struct {
	Registry *pmap.Registry
	Log      *zap.Logger
	// Interval between rounds of probes.
	Interval time.Duration
	// Failures in a row after which a mapping is removed.
	Failures int
	// Timeout for one probe.
	Timeout time.Duration
	// Removed counts the mappings dropped.
	Removed atomic.Int64
	// OnRemove, if set, is called after a mapping is dropped (warm start
	// persists the change through it).
	OnRemove func()

	misses map[pmap.Mapping]int
}

// Run probes until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	if c.Failures <= 0 {
		c.Failures = 3
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	c.misses = make(map[pmap.Mapping]int)
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Round(ctx)
		}
	}
}

// Round probes every mapping once.
func (c *Checker) Round(ctx context.Context) {
	if c.misses == nil {
		c.misses = make(map[pmap.Mapping]int)
	}
	var targets []pmap.Mapping
	c.Registry.Each(func(m *pmap.Mapping) bool {
		if m.Prog != pmap.Program && probeAddr(*m).IsValid() {
			targets = append(targets, *m)
		}
		return true
	})
	seen := make(map[pmap.Mapping]bool, len(targets))
	for _, m := range targets {
		if ctx.Err() != nil {
			return
		}
		seen[m] = true
		if c.alive(ctx, m) {
			delete(c.misses, m)
			continue
		}
		c.misses[m]++
		if c.misses[m] < c.Failures {
			continue
		}
		delete(c.misses, m)
		// Remove exactly this netid's entry, and only if it still has the
		// address that failed: the service may have re-registered.
		if cur, found, exact := c.Registry.Lookup(m.Prog, m.Vers, m.Netid); !found || !exact || cur.Addr != m.Addr {
			continue
		}
		if c.Registry.Unset(m.Prog, m.Vers, m.Netid, pmap.OwnerSuperuser) {
			c.Removed.Add(1)
			c.Log.Warn("removed the registration of a service that stopped answering",
				zap.Uint32("prog", m.Prog), zap.Uint32("vers", m.Vers), zap.String("netid", m.Netid),
				zap.String("addr", m.Addr), zap.String("owner", m.Owner), zap.Int("failed_probes", c.Failures))
			if c.OnRemove != nil {
				c.OnRemove()
			}
		}
	}
	for m := range c.misses {
		if !seen[m] {
			delete(c.misses, m)
		}
	}
}

// probeAddr is where a mapping's service is reached from this host: the
// loopback address of its family at its port, or nothing for transports
// that are not probed.
func probeAddr(m pmap.Mapping) netip.AddrPort {
	ap, err := pmap.ParseUaddr(m.Addr)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}
	}
	switch m.Netid {
	case rpc.NetidUDP, rpc.NetidTCP:
		if !ap.Addr().Is4() {
			return netip.AddrPort{}
		}
		if ap.Addr().IsUnspecified() {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
		}
	case rpc.NetidUDP6, rpc.NetidTCP6:
		if !ap.Addr().Is6() {
			return netip.AddrPort{}
		}
		if ap.Addr().IsUnspecified() {
			return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
		}
	default:
		return netip.AddrPort{}
	}
	return ap
}

// alive makes one NULL call to the mapping's service.
func (c *Checker) alive(ctx context.Context, m pmap.Mapping) bool {
	ap := probeAddr(m)
	network := "udp"
	if m.Netid == rpc.NetidTCP || m.Netid == rpc.NetidTCP6 {
		network = "tcp"
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, ap.String())
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	xid := rand.Uint32()
	msg := rpc.AppendCall(nil, xid, m.Prog, m.Vers, 0, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
	if network == "tcp" {
		if rpc.WriteRecord(conn, msg) != nil {
			return false
		}
		rec, err := rpc.NewRecordReader(conn, 64<<10).Next()
		return err == nil && answers(rec, xid)
	}
	// A datagram may be lost: retry within the timeout.
	buf := make([]byte, 8800)
	for try := 0; try < 3; try++ {
		if _, err := conn.Write(msg); err != nil {
			return false // ICMP port unreachable: nobody is there
		}
		conn.SetReadDeadline(time.Now().Add(c.Timeout / 3))
		n, err := conn.Read(buf)
		if err == nil && answers(buf[:n], xid) {
			return true
		}
		if err != nil && !isTimeout(err) {
			return false
		}
	}
	return false
}

// answers reports whether b is an RPC reply to xid, of any status.
func answers(b []byte, xid uint32) bool {
	got, err := rpc.ParseReply(xdr.NewDecoder(b))
	if got != xid {
		return false
	}
	var re *rpc.ReplyError
	return err == nil || errors.As(err, &re)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
