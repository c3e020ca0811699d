package rpcinfo

import "github.com/portmapd/portmapd/pmap"

// The results of each mode, as --json prints them. Every result says
// which query it answers and for which host, and carries the error text
// rpcinfo printed, if any, with the exit status.

// Common is what every result has.
type Common struct {
	Host  string `json:"host,omitempty"`
	Query string `json:"query"`
	Error string `json:"error,omitempty"`
	Exit  int    `json:"exit"`
	// notes are what the mode said on stderr before it ended, in order.
	notes []error
}

func (c *Common) common() *Common { return c }

// note keeps a message the mode meets on the way, for renderDiags.
func (c *Common) note(err error) { c.notes = append(c.notes, err) }

type result interface{ common() *Common }

// Mapping is one row of the RPCBIND table.
type Mapping struct {
	Prog    uint32 `json:"prog"`
	Vers    uint32 `json:"vers"`
	Netid   string `json:"netid"`
	Addr    string `json:"addr"`
	Owner   string `json:"owner"`
	Service string `json:"service,omitempty"`
}

// Program is one row of -s.
type Program struct {
	Prog     uint32   `json:"prog"`
	Versions []int64  `json:"versions"`
	Netids   []string `json:"netids"`
	Service  string   `json:"service,omitempty"`
	Owner    string   `json:"owner"`
}

// DumpResult answers the default listing and -s.
type DumpResult struct {
	Common
	Mappings []Mapping `json:"mappings"`
	Programs []Program `json:"programs,omitempty"`
}

// Port is one row of -p.
type Port struct {
	Prog    uint32 `json:"prog"`
	Vers    uint32 `json:"vers"`
	Proto   string `json:"proto"`
	Port    uint32 `json:"port"`
	Service string `json:"service,omitempty"`
}

// PortsResult answers -p.
type PortsResult struct {
	Common
	Ports []Port `json:"ports"`
}

// Ping is the outcome of one NULL call.
type Ping struct {
	Prog  uint64 `json:"prog"`
	Vers  uint64 `json:"vers"`
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

// PingResult answers -u, -t, -T host prog and -a.
type PingResult struct {
	Common
	Netid   string `json:"netid,omitempty"`
	Address string `json:"address,omitempty"`
	Pings   []Ping `json:"pings"`
}

// Entry is one answer of GETADDRLIST.
type Entry struct {
	Addr    string `json:"addr"`
	Netid   string `json:"netid"`
	Family  string `json:"family"`
	Proto   string `json:"proto"`
	Class   string `json:"class"`
	Service string `json:"service,omitempty"`
}

// AddrListResult answers -l.
type AddrListResult struct {
	Common
	Prog    uint32  `json:"prog"`
	Vers    uint32  `json:"vers"`
	Entries []Entry `json:"entries"`
}

// DeleteResult answers -d.
type DeleteResult struct {
	Common
	Prog    uint32 `json:"prog"`
	Vers    uint32 `json:"vers"`
	Netid   string `json:"netid,omitempty"`
	Deleted bool   `json:"deleted"`
}

// StatVersion is GETSTAT's record of one portmapper version.
type StatVersion struct {
	Version uint32           `json:"version"`
	Calls   map[string]int32 `json:"calls"`
	Set     int32            `json:"set"`
	Unset   int32            `json:"unset"`
	Lookups []StatLookup     `json:"lookups"`
	Remote  []StatRemote     `json:"remote_calls"`
}

// StatLookup is one (prog, vers, netid) of GETPORT/GETADDR lookups.
type StatLookup struct {
	Prog    uint32 `json:"prog"`
	Vers    uint32 `json:"vers"`
	Netid   string `json:"netid"`
	Success int32  `json:"success"`
	Failure int32  `json:"failure"`
	Service string `json:"service,omitempty"`
}

// StatRemote is one (prog, vers, proc, netid) of remote calls.
type StatRemote struct {
	Prog     uint32 `json:"prog"`
	Vers     uint32 `json:"vers"`
	Proc     uint32 `json:"proc"`
	Netid    string `json:"netid"`
	Success  int32  `json:"success"`
	Failure  int32  `json:"failure"`
	Indirect int32  `json:"indirect"`
	Service  string `json:"service,omitempty"`
}

// StatResult answers -m.
type StatResult struct {
	Common
	Versions []StatVersion `json:"versions"`
}

// bcastReply is one answer to -b: the responder's universal address and
// its host name.
type bcastReply struct {
	Addr  string `json:"addr"`
	Host  string `json:"host"`
	Netid string `json:"netid"`
}

// BroadcastResult answers -b.
type BroadcastResult struct {
	Common
	Prog    uint32       `json:"prog"`
	Vers    uint32       `json:"vers"`
	Replies []bcastReply `json:"replies"`
}

// UsageResult stands for a command line rpcinfo rejects.
type UsageResult struct {
	Common
}

func statsJSON(st *[3]pmap.VersStat, r *runner) []StatVersion {
	hdrs := [][]string{pmapHdr, rpcb3Hdr, rpcb4Hdr}
	out := make([]StatVersion, 3)
	for i := range st {
		s := &st[i]
		v := StatVersion{Version: uint32(i + 2), Calls: map[string]int32{}, Set: s.Set, Unset: s.Unset,
			Lookups: []StatLookup{}, Remote: []StatRemote{}}
		for p, name := range hdrs[i] {
			v.Calls[name] = s.Info[p]
		}
		for _, a := range s.Addrs {
			v.Lookups = append(v.Lookups, StatLookup{a.Prog, a.Vers, a.Netid, a.Success, a.Failure, r.serviceOr(a.Prog, "")})
		}
		for _, m := range s.Rmts {
			v.Remote = append(v.Remote, StatRemote{m.Prog, m.Vers, m.Proc, m.Netid, m.Success, m.Failure, m.Indirect, r.serviceOr(m.Prog, "")})
		}
		out[i] = v
	}
	return out
}
