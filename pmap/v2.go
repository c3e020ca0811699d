package pmap

import (
	"net/netip"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// PMAP version 2 (RFC 1833, section 3). Its table is a view of the one
// registry: the mappings on netids "udp" and "tcp", with the port taken
// from the universal address.

// PortMapping is struct pmap: a row of PMAP's DUMP and the argument of
// its SET, UNSET and GETPORT, a program on an IP protocol (ProtoTCP or
// ProtoUDP) at a port.
type PortMapping struct {
	Prog, Vers, Prot, Port uint32
}

// AppendPortMapping appends m as XDR.
func AppendPortMapping(b []byte, m *PortMapping) []byte {
	b = xdr.AppendUint32(b, m.Prog)
	b = xdr.AppendUint32(b, m.Vers)
	b = xdr.AppendUint32(b, m.Prot)
	return xdr.AppendUint32(b, m.Port)
}

// DecodePortMapping decodes a struct pmap.
func DecodePortMapping(d *xdr.Decoder) (PortMapping, error) {
	var m PortMapping
	var err error
	for _, f := range []*uint32{&m.Prog, &m.Vers, &m.Prot, &m.Port} {
		if *f, err = d.Uint32(); err != nil {
			return m, err
		}
	}
	return m, nil
}

func decodePmap(args []byte) (PortMapping, error) {
	p, err := DecodePortMapping(xdr.NewDecoder(args))
	if err != nil {
		return p, rpc.ErrGarbageArgs
	}
	return p, nil
}

func (s *Service) v2Procs() []rpc.Handler {
	return []rpc.Handler{
		ProcNull:    s.counted(StatV2, ProcNull, null),
		ProcSet:     s.counted(StatV2, ProcSet, s.pmapSet),
		ProcUnset:   s.counted(StatV2, ProcUnset, s.pmapUnset),
		ProcGetport: s.counted(StatV2, ProcGetport, s.pmapGetport),
		ProcDump:    s.counted(StatV2, ProcDump, s.pmapDump),
		ProcCallit:  s.counted(StatV2, ProcCallit, s.remoteCall(StatV2, false)),
	}
}

// counted wraps a procedure so that GETSTAT counts its calls, and applies
// the host access lists.
func (s *Service) counted(v int, proc uint32, f rpc.HandlerFunc) rpc.HandlerFunc {
	return func(w *rpc.Reply, c *rpc.Call) error {
		s.Stats.Proc(v, proc)
		if !s.allowed(c, proc) {
			return rpc.ErrAuthTooWeak
		}
		return f(w, c)
	}
}

func null(*rpc.Reply, *rpc.Call) error { return nil }

func (s *Service) pmapSet(w *rpc.Reply, c *rpc.Call) error {
	p, err := decodePmap(c.Args)
	if err != nil {
		return err
	}
	if !s.mayChange(c) {
		return rpc.ErrAuthTooWeak
	}
	netid, _ := ProtoNetid(p.Prot)
	ok := false
	if netid != "" {
		// rpcbind stores the port's two low bytes, whatever the rest.
		addr := FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p.Port)))
		m := Mapping{Prog: p.Prog, Vers: p.Vers, Netid: netid, Addr: addr, Owner: ownerOf(c)}
		var gen uint64
		if s.admit(c, m) {
			ok, gen = s.Registry.SetAt(m)
		}
		s.Stats.Set(StatV2, ok)
		if ok {
			s.changed(w, gen)
		}
	}
	w.Body = xdr.AppendBool(w.Body, ok)
	return nil
}

func (s *Service) pmapUnset(w *rpc.Reply, c *rpc.Call) error {
	p, err := decodePmap(c.Args)
	if err != nil {
		return err
	}
	if !s.mayChange(c) {
		return rpc.ErrAuthTooWeak
	}
	// Version 2 removes both IPv4 transports whatever prot and port say;
	// the IPv6 and local rows of the program stay.
	owner := ownerOf(c)
	before := s.Registry.Generation()
	okTCP, okUDP, gen := s.Registry.unsetV2(p.Prog, p.Vers, owner)
	ok := okTCP || okUDP
	if !okTCP || !okUDP {
		s.rejected(rpc.RefusedNotOwner)
	}
	s.Stats.Unset(StatV2, ok)
	if gen != before {
		s.changed(w, gen)
	}
	w.Body = xdr.AppendBool(w.Body, ok)
	return nil
}

func (s *Service) pmapGetport(w *rpc.Reply, c *rpc.Call) error {
	p, err := decodePmap(c.Args)
	if err != nil {
		return err
	}
	var port uint32
	netid, _ := ProtoNetid(p.Prot)
	if netid != "" {
		port, _ = s.Registry.lookupV2(p.Prog, p.Vers, netid)
		if s.serves(netid) {
			s.Stats.Lookup(StatV2, p.Prog, p.Vers, netid, port != 0)
		}
	}
	w.Body = xdr.AppendUint32(w.Body, port)
	return nil
}
