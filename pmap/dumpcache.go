package pmap

import (
	"sync"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// DUMP's reply is the whole table; it is encoded once per change of the
// table and then sent from the cache (rpc.Reply.Tail), so a client polling
// a large table costs a write, not a rebuild.

type dumpCache struct {
	mu    sync.Mutex
	gen   uint64
	valid bool
	body  []byte // never modified once published: writers may hold it
}

// body returns the encoded list for the table's current generation,
// building it with enc when the table changed.
func (dc *dumpCache) get(r *Registry, enc func([]byte, *Mapping) []byte) []byte {
	gen := r.Generation()
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.valid && dc.gen == gen {
		return dc.body
	}
	var b []byte
	if dc.body != nil {
		b = make([]byte, 0, len(dc.body)+len(dc.body)/8)
	}
	gen = r.eachAt(func(m *Mapping) { b = enc(b, m) })
	dc.body, dc.gen, dc.valid = xdr.AppendBool(b, false), gen, true
	return dc.body
}

// encodePmapRow appends one PMAP v2 row (struct pmaplist); rows that v2
// cannot express (other netids, addresses without a port) are skipped.
func encodePmapRow(b []byte, m *Mapping) []byte {
	prot := NetidProto(m.Netid)
	if prot == 0 {
		return b
	}
	port, ok := UaddrPort(m.Addr)
	if !ok {
		return b
	}
	return AppendPortMapping(xdr.AppendBool(b, true), &PortMapping{Prog: m.Prog, Vers: m.Vers, Prot: prot, Port: port})
}

// encodeRpcbRow appends one RPCBIND row (struct rpcblist).
func encodeRpcbRow(b []byte, m *Mapping) []byte {
	return AppendRpcb(xdr.AppendBool(b, true), m)
}

// AppendRpcb appends m as RFC 1833's struct rpcb: the argument of SET,
// UNSET, GETADDR, GETVERSADDR and GETADDRLIST, and each row of a DUMP.
func AppendRpcb(b []byte, m *Mapping) []byte {
	b = xdr.AppendUint32(b, m.Prog)
	b = xdr.AppendUint32(b, m.Vers)
	b = xdr.AppendString(b, m.Netid)
	b = xdr.AppendString(b, m.Addr)
	return xdr.AppendString(b, m.Owner)
}

func (s *Service) pmapDump(w *rpc.Reply, _ *rpc.Call) error {
	w.Tail = s.dumpV2.get(s.Registry, encodePmapRow)
	return nil
}

func (s *Service) rpcbDump(w *rpc.Reply, _ *rpc.Call) error {
	w.Tail = s.dumpRpcb.get(s.Registry, encodeRpcbRow)
	return nil
}
