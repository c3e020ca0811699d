package client

import (
	"context"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/xdr"
)

// PortMapping is one row of PMAP version 2: a program on an IP protocol
// (pmap.ProtoTCP or pmap.ProtoUDP) at a port.
type PortMapping = pmap.PortMapping

// maxListed bounds the rows a DUMP reply may hold.
const maxListed = 1 << 20

func decodeBool(v *bool) func(*xdr.Decoder) error {
	return func(d *xdr.Decoder) (err error) { *v, err = d.AnyBool(); return err }
}

// Null calls procedure 0 of version vers: a ping.
func (c *Client) Null(ctx context.Context, vers uint32) error {
	return c.Call(ctx, vers, pmap.ProcNull, nil, nil)
}

// GetPort asks PMAP v2 for the port of (prog, vers) on prot; 0 means not
// registered.
func (c *Client) GetPort(ctx context.Context, prog, vers, prot uint32) (uint32, error) {
	var port uint32
	err := c.Call(ctx, pmap.VersPMAP, pmap.ProcGetport, pmap.AppendPortMapping(nil, &PortMapping{Prog: prog, Vers: vers, Prot: prot}),
		func(d *xdr.Decoder) (err error) { port, err = d.Uint32(); return err })
	return port, err
}

// SetPort registers (prog, vers) on prot at port with PMAP v2.
func (c *Client) SetPort(ctx context.Context, m PortMapping) (bool, error) {
	var ok bool
	err := c.Call(ctx, pmap.VersPMAP, pmap.ProcSet, pmap.AppendPortMapping(nil, &m), decodeBool(&ok))
	return ok, err
}

// UnsetPort removes (prog, vers) on udp and tcp with PMAP v2.
func (c *Client) UnsetPort(ctx context.Context, prog, vers uint32) (bool, error) {
	var ok bool
	err := c.Call(ctx, pmap.VersPMAP, pmap.ProcUnset, pmap.AppendPortMapping(nil, &PortMapping{Prog: prog, Vers: vers}), decodeBool(&ok))
	return ok, err
}

// DumpPorts lists the PMAP v2 table.
func (c *Client) DumpPorts(ctx context.Context) ([]PortMapping, error) {
	var out []PortMapping
	err := c.Call(ctx, pmap.VersPMAP, pmap.ProcDump, nil, func(d *xdr.Decoder) (err error) {
		out, err = pmap.DecodePmapList(d, out, maxListed)
		return err
	})
	return out, err
}

// GetAddr asks RPCBIND v4 for the universal address of (prog, vers) on the
// transport of this connection; "" means not registered. netid is sent
// as r_netid, which rpcbind ignores in favour of the arrival transport.
func (c *Client) GetAddr(ctx context.Context, prog, vers uint32, netid string) (string, error) {
	var addr string
	args := pmap.AppendRpcb(nil, &pmap.Mapping{Prog: prog, Vers: vers, Netid: netid})
	err := c.Call(ctx, pmap.VersRPCB4, pmap.ProcGetaddr, args, func(d *xdr.Decoder) (err error) { addr, err = pmap.DecodeUaddr(d); return err })
	return addr, err
}

// Set registers m with RPCBIND v3; the daemon sets the owner itself.
func (c *Client) Set(ctx context.Context, m pmap.Mapping) (bool, error) {
	var ok bool
	err := c.Call(ctx, pmap.VersRPCB3, pmap.ProcSet, pmap.AppendRpcb(nil, &m), decodeBool(&ok))
	return ok, err
}

// Unset removes (prog, vers) on netid, or on every netid when it is "".
func (c *Client) Unset(ctx context.Context, prog, vers uint32, netid string) (bool, error) {
	var ok bool
	err := c.Call(ctx, pmap.VersRPCB3, pmap.ProcUnset, pmap.AppendRpcb(nil, &pmap.Mapping{Prog: prog, Vers: vers, Netid: netid}), decodeBool(&ok))
	return ok, err
}

// Dump lists the whole table with RPCBIND v3.
func (c *Client) Dump(ctx context.Context) ([]pmap.Mapping, error) {
	var out []pmap.Mapping
	err := c.Call(ctx, pmap.VersRPCB3, pmap.ProcDump, nil, func(d *xdr.Decoder) (err error) {
		out, err = pmap.DecodeRpcbList(d, out, maxListed)
		return err
	})
	return out, err
}
