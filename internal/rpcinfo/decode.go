package rpcinfo

import "github.com/portmapd/portmapd/pmap"

// Decoders of the results rpcinfo asks for. Each follows the XDR of
// libtirpc (rpcb_prot.c, pmap_prot2.c) with its limits, and each list
// is bounded in length as well: C would follow a hostile server's list
// until malloc failed, here maxRows ends it as a decoding error.

// maxRows bounds the rows of any list in a reply. A datagram holds at
// most a few hundred rows; a stream reply is bounded by maxRecord.
const maxRows = 1 << 16

// The rows of a PMAP version 2 DUMP (struct pmap, whose fields are C's
// unsigned longs, read as 32-bit values) are pmap.PortMapping, and those
// of an RPCBIND DUMP (struct rpcb) pmap.Mapping.

// AddrEntry is one entry of GETADDRLIST (struct rpcb_entry).
type AddrEntry struct {
	Addr, Netid   string
	Semantics     uint32
	Family, Proto string
}

// AddrStat is one GETPORT/GETADDR lookup of GETSTAT (rpcbs_addrlist).
type AddrStat struct {
	Prog, Vers       uint32
	Success, Failure int32
	Netid            string
}

// RmtStat is one remote call of GETSTAT (rpcbs_rmtcalllist).
type RmtStat struct {
	Prog, Vers, Proc           uint32
	Success, Failure, Indirect int32
	Netid                      string
}

// VersStat is the statistics of one portmapper version (rpcb_stat).
type VersStat struct {
	Info       [13]int32
	Set, Unset int32
	Addrs      []AddrStat
	Rmts       []RmtStat
}

// decodePmapList reads a pmaplist: optional-data entries of four
// unsigned ints.
func decodePmapList(out *[]pmap.PortMapping) func(*xdrReader) bool {
	return func(d *xdrReader) bool {
		for d.boolean() {
			if len(*out) >= maxRows {
				return false
			}
			*out = append(*out, pmap.PortMapping{Prog: d.u32(), Vers: d.u32(), Prot: d.u32(), Port: d.u32()})
		}
		return d.ok()
	}
}

// decodeRpcbList reads an rpcblist.
func decodeRpcbList(out *[]pmap.Mapping) func(*xdrReader) bool {
	return func(d *xdrReader) bool {
		for d.boolean() {
			if len(*out) >= maxRows {
				return false
			}
			var m pmap.Mapping
			m.Prog, m.Vers = d.u32(), d.u32()
			m.Netid, m.Addr, m.Owner = d.str(maxDataSize), d.str(maxDataSize), d.str(maxDataSize)
			if !d.ok() {
				return false
			}
			*out = append(*out, m)
		}
		return d.ok()
	}
}

// decodeEntryList reads an rpcb_entry_list.
func decodeEntryList(out *[]AddrEntry) func(*xdrReader) bool {
	return func(d *xdrReader) bool {
		for d.boolean() {
			if len(*out) >= maxRows {
				return false
			}
			var e AddrEntry
			e.Addr, e.Netid = d.str(maxDataSize), d.str(maxDataSize)
			e.Semantics = d.u32()
			e.Family, e.Proto = d.str(maxDataSize), d.str(maxDataSize)
			if !d.ok() {
				return false
			}
			*out = append(*out, e)
		}
		return d.ok()
	}
}

// decodeStats reads an rpcb_stat_byvers: three rpcb_stat, for versions
// 2, 3 and 4 in that order.
func decodeStats(out *[3]VersStat) func(*xdrReader) bool {
	return func(d *xdrReader) bool {
		for i := range out {
			s := &out[i]
			for j := range s.Info {
				s.Info[j] = d.i32()
			}
			s.Set, s.Unset = d.i32(), d.i32()
			for n := 0; d.boolean(); n++ {
				if n >= maxRows {
					return false
				}
				a := AddrStat{Prog: d.u32(), Vers: d.u32(), Success: d.i32(), Failure: d.i32()}
				a.Netid = d.str(maxDataSize)
				if !d.ok() {
					return false
				}
				s.Addrs = append(s.Addrs, a)
			}
			for n := 0; d.boolean(); n++ {
				if n >= maxRows {
					return false
				}
				r := RmtStat{Prog: d.u32(), Vers: d.u32(), Proc: d.u32(), Success: d.i32(), Failure: d.i32(), Indirect: d.i32()}
				r.Netid = d.str(maxDataSize)
				if !d.ok() {
					return false
				}
				s.Rmts = append(s.Rmts, r)
			}
			if !d.ok() {
				return false
			}
		}
		return d.ok()
	}
}
