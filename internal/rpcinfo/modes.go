package rpcinfo

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client/tirpc"
	"github.com/portmapd/portmapd/xdr"
)

// The functions below are rpcinfo.c's, one for each of its modes. Each
// makes rpcinfo's calls in rpcinfo's order and returns its typed result
// and the error that ended it; renderResult and renderDiags print them
// as rpcinfo does, and finish as --json.

const minuteTimeout = 60 * time.Second
const pingTimeout = 10 * time.Second

// maxVersionsPinged bounds the versions pinged when the server names a
// range: rpcinfo would ping all four billion of a "wise guy" server.
const maxVersionsPinged = 1024

// rpcbdump is rpcinfo's default listing (RPCBIND v3 DUMP, falling back
// to v4 and to PMAP v2) and, with short, -s.
func (r *runner) rpcbdump(short bool, netid string, netidSet bool, args []string) (*DumpResult, error) {
	res := &DumpResult{Mappings: []Mapping{}}
	res.Query = "dump"
	if short {
		res.Query = "short"
	}
	if len(args) > 1 {
		return res, usageError{}
	}
	var c tirpc.Clnt
	var err error
	if len(args) == 1 {
		host := args[0]
		res.Host = host
		if !netidSet {
			c, _, err = r.rpcbindCreate(host, pmap.VersRPCB3)
		} else {
			nc, found := r.lookupNetid(res.common(), netid)
			if !found {
				return res, netidNotFound{"rpcinfo: invalid transport"}
			}
			c, _, err = r.infoHandle(host, nc, pmap.VersRPCB3)
		}
	} else {
		c, err = r.localInfo(pmap.VersRPCB3)
	}
	if err != nil {
		return res, createFailure("rpcinfo: can't contact rpcbind", err)
	}
	defer c.Close()
	var rows []pmap.Mapping
	timeout := r.CallTimeout(minuteTimeout)
	st := c.Call(pmap.ProcDump, nil, rpcbList(&rows), timeout)
	if st != tirpc.Success {
		if st != tirpc.ProgVersMismatch && st != tirpc.ProgUnavail {
			return res, rpcbindFailed(c)
		}
		e := c.Geterr()
		switch {
		case e.Low() == pmap.VersRPCB4:
			rows = nil
			c.SetVers(pmap.VersRPCB4)
			if c.Call(pmap.ProcDump, nil, rpcbList(&rows), timeout) != tirpc.Success {
				return res, rpcbindFailed(c)
			}
		case e.High() == pmap.VersPMAP:
			var ports []pmap.PortMapping
			c.SetVers(pmap.VersPMAP)
			if c.Call(pmap.ProcDump, nil, pmapList(&ports), timeout) != tirpc.Success {
				return res, rpcbindFailed(c)
			}
			rows = nil
			for _, p := range ports {
				rows = append(rows, pmapToRpcb(p))
			}
		default:
			// Neither: rpcinfo goes on with an empty list.
			rows = nil
		}
	}
	for _, m := range rows {
		res.Mappings = append(res.Mappings, Mapping{m.Prog, m.Vers, m.Netid, m.Addr, m.Owner, r.serviceOr(m.Prog, "")})
	}
	if short && len(rows) > 0 {
		res.Programs = r.shortPrograms(res.Mappings)
	}
	for _, m := range rows {
		if port, ok := pmap.UaddrPort(m.Addr); ok && m.Netid != "local" && m.Netid != "unix" {
			r.flagOutsideRange(res.common(), m.Prog, m.Vers, m.Netid, port)
		}
	}
	return res, nil
}

// flagOutsideRange names, on stderr, a registration whose port is
// outside --port-range: the firewall that opens 111 and that range will
// not let its clients through. Nothing is said without --port-range, so
// rpcinfo's output stays rpcinfo's. The portmapper's own rows are left
// out: its port is the administrator's rule for 111, not a service's, and
// flagging it on every line would bury the registrations that are outside.
func (r *runner) flagOutsideRange(res *Common, prog, vers uint32, netid string, port uint32) {
	if r.portRange == nil || r.portRange.Contains(port) || prog == pmap.Program {
		return
	}
	res.note(outsideRange{prog, vers, netid, port, *r.portRange})
}

// rpcbindFailed is the failure of the last call on c to the portmapper.
func rpcbindFailed(c tirpc.Clnt) error {
	return callFailed{"rpcinfo: can't contact rpcbind: ", c.Geterr()}
}

// pmapToRpcb is rpcinfo's conversion of a PMAP row for the listing.
func pmapToRpcb(p pmap.PortMapping) pmap.Mapping {
	m := pmap.Mapping{Prog: p.Prog, Vers: p.Vers, Owner: "unknown"}
	netid, ok := pmap.ProtoNetid(p.Prot)
	if !ok {
		netid = fmt.Sprintf("%6d", p.Prot)
	}
	m.Netid = netid
	m.Addr = pmap.FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p.Port)))
	return m
}

// pmapdump is -p: PMAP v2 DUMP, over the local socket or, for a host, over
// TCP at the port the portmapper gives for itself.
func (r *runner) pmapdump(args []string) (*PortsResult, error) {
	res := &PortsResult{Ports: []Port{}}
	res.Query = "pmap"
	if len(args) > 1 {
		return res, usageError{}
	}
	var c tirpc.Clnt
	host := "(null)" // printf of a NULL host in glibc
	if len(args) == 1 {
		host = args[0]
		res.Host = host
		var err error
		if c, err = r.ipGetclient(host, pmap.Program, pmap.VersPMAP, "tcp"); err != nil {
			return res, err
		}
	} else {
		var err error
		if c, err = r.localInfo(pmap.VersPMAP); err != nil {
			return res, createFailure("rpcinfo: can't contact portmapper", err)
		}
	}
	defer c.Close()
	var rows []pmap.PortMapping
	if st := c.Call(pmap.ProcDump, nil, pmapList(&rows), r.CallTimeout(minuteTimeout)); st != tirpc.Success {
		if st == tirpc.ProgVersMismatch || st == tirpc.ProgUnavail {
			if c.Geterr().Low() > pmap.VersPMAP {
				return res, notPortmapper{host}
			}
			return res, alreadySaid{}
		}
		return res, callFailed{"rpcinfo: can't contact portmapper", c.Geterr()}
	}
	for _, p := range rows {
		name, _ := r.service(p.Prog)
		res.Ports = append(res.Ports, Port{p.Prog, p.Vers, pmap.ProtoName(p.Prot), p.Port, name})
	}
	for _, p := range rows {
		r.flagOutsideRange(res.common(), p.Prog, p.Vers, pmap.ProtoName(p.Prot), p.Port)
	}
	return res, nil
}

// pstatus records the outcome of the last ping on c.
func (r *runner) pstatus(c tirpc.Clnt, prog, vers uint64, res *PingResult) bool {
	e := c.Geterr()
	p := Ping{Prog: prog, Vers: vers, Ready: e.Stat == tirpc.Success}
	if e.Stat != tirpc.Success {
		failed := callFailed{"rpcinfo", e}
		p.Error = strings.TrimPrefix(failed.Error(), "rpcinfo: ")
		res.note(failed)
	}
	res.Pings = append(res.Pings, p)
	return p.Ready
}

// versionRange reads the range a PROG_MISMATCH named, or learns that
// the service answers every version; ok is false when the probe failed
// and was reported.
func (r *runner) versionRange(c tirpc.Clnt, ping func(uint32) tirpc.Status, st tirpc.Status, prog uint64, res *PingResult) (lo, hi uint64, ok bool) {
	switch st {
	case tirpc.ProgVersMismatch:
		e := c.Geterr()
		return uint64(e.Low()), uint64(e.High()), true
	case tirpc.Success:
		// It answers version 0; perhaps every version.
		switch ping(1<<32 - 1) {
		case tirpc.ProgVersMismatch:
			e := c.Geterr()
			return uint64(e.Low()), uint64(e.High()), true
		case tirpc.Success:
			return 0, 1<<32 - 1, true
		}
		r.pstatus(c, prog, 1<<32-1, res)
		return 0, 0, false
	}
	r.pstatus(c, prog, 0, res)
	return 0, 0, false
}

// pingRange pings every version from lo to hi and reports whether all
// answered.
func (r *runner) pingRange(c tirpc.Clnt, ping func(uint32) tirpc.Status, prog, lo, hi uint64, res *PingResult) bool {
	ok := true
	if hi >= lo && hi-lo >= maxVersionsPinged {
		res.note(versionsCapped{lo, hi})
		hi = lo + maxVersionsPinged - 1
	}
	for v := lo; v <= hi; v++ {
		ping(uint32(v))
		if !r.pstatus(c, prog, v, res) {
			ok = false
		}
	}
	return ok
}

// ipPing is -u and -t: the service's address from the portmapper over
// the protocol, then NULL calls to it.
func (r *runner) ipPing(proto string, args []string) (*PingResult, error) {
	res := &PingResult{Netid: proto, Pings: []Ping{}}
	res.Query = "ping"
	if len(args) < 2 || len(args) > 3 {
		return res, usageError{}
	}
	host := args[0]
	res.Host = host
	prog, err := r.getprognum(args[1])
	if err != nil {
		return res, err
	}
	var vers uint64
	if len(args) == 3 {
		if vers, err = getvers(args[2]); err != nil {
			return res, err
		}
	}
	c, err := r.ipGetclient(host, uint32(prog), uint32(vers), proto)
	if err != nil {
		return res, err
	}
	defer c.Close()
	res.Netid = c.Netid()
	return res, r.pingVersions(c, prog, vers, len(args) == 3, res)
}

// pingVersions is what -u, -t, -T and -a do once the client exists:
// NULL to the given version, or, without one, to version 0 to learn the
// range the server has and then to every version in it. A failed ping
// is noted in res, and ends the run with exit status 1.
func (r *runner) pingVersions(c tirpc.Clnt, prog, vers uint64, versGiven bool, res *PingResult) error {
	ping := func(v uint32) tirpc.Status {
		c.SetVers(v)
		return c.Call(pmap.ProcNull, nil, nil, r.CallTimeout(pingTimeout))
	}
	st := ping(uint32(vers))
	if versGiven {
		if !r.pstatus(c, prog, vers, res) {
			return alreadySaid{}
		}
		return nil
	}
	lo, hi, ok := r.versionRange(c, ping, st, prog, res)
	if !ok || !r.pingRange(c, ping, prog, lo, hi, res) {
		return alreadySaid{}
	}
	return nil
}

// progping is -T netid host prog [vers]: clnt_tp_create, then NULL calls.
func (r *runner) progping(netid string, netidSet bool, args []string) (*PingResult, error) {
	res := &PingResult{Netid: netid, Pings: []Ping{}}
	res.Query = "ping"
	if len(args) < 2 || len(args) > 3 || !netidSet {
		return res, usageError{}
	}
	res.Host = args[0]
	prog, err := r.getprognum(args[1])
	if err != nil {
		return res, err
	}
	prog = uint64(uint32(prog))
	var vers uint64
	if len(args) == 3 {
		if vers, err = getvers(args[2]); err != nil {
			return res, err
		}
		vers = uint64(uint32(vers))
	}
	nc, ok := r.lookupNetid(res.common(), netid)
	if !ok {
		return res, netidUnknown{netid}
	}
	c, err := r.lib().TpCreate(args[0], uint32(prog), uint32(vers), nc)
	if err != nil {
		return res, createFailure("rpcinfo", err)
	}
	defer c.Close()
	return res, r.pingVersions(c, prog, vers, len(args) == 3, res)
}

// addrping is -a address -T netid prog [vers]: NULL calls to the address
// itself, without the portmapper.
func (r *runner) addrping(address, netid string, netidSet bool, args []string) (*PingResult, error) {
	res := &PingResult{Netid: netid, Address: address, Pings: []Ping{}}
	res.Query = "ping"
	if len(args) < 1 || len(args) > 2 || !netidSet {
		return res, usageError{}
	}
	nc, ok := r.lookupNetid(res.common(), netid)
	if !ok {
		return res, netidUnknown{netid}
	}
	prog, err := r.getprognum(args[0])
	if err != nil {
		return res, err
	}
	prog = uint64(uint32(prog))
	var vers uint64
	if len(args) == 2 {
		if vers, err = getvers(args[1]); err != nil {
			return res, err
		}
		vers = uint64(uint32(vers))
	}
	// uaddr2taddr fails for a transport libtirpc has no socket for.
	a, ok := tirpc.Uaddr2Taddr(nc, address)
	if !ok {
		return res, noHandleAddress{}
	}
	c, err := r.lib().TliCreate(nc, a, uint32(prog), uint32(vers))
	if err != nil {
		return res, createFailure("rpcinfo", err)
	}
	defer c.Close()
	return res, r.pingVersions(c, prog, vers, len(args) == 2, res)
}

// rpcbaddrlist is -l host prog vers: RPCBIND v4 GETADDRLIST.
func (r *runner) rpcbaddrlist(netid string, netidSet bool, args []string) (*AddrListResult, error) {
	res := &AddrListResult{Entries: []Entry{}}
	res.Query = "addrlist"
	if len(args) != 3 {
		return res, usageError{}
	}
	host := args[0]
	res.Host = host
	var c tirpc.Clnt
	var target tirpc.Taddr
	var err error
	if !netidSet {
		c, target, err = r.rpcbindCreate(host, pmap.VersRPCB4)
	} else {
		nc, found := r.lookupNetid(res.common(), netid)
		if !found {
			return res, netidNotFound{"rpcinfo: invalid transport"}
		}
		c, target, err = r.infoHandle(host, nc, pmap.VersRPCB4)
	}
	if err != nil {
		return res, createFailure("rpcinfo: can't contact rpcbind", err)
	}
	defer c.Close()
	prog, vers, err := r.progAndVers(args[1], args[2], false)
	if err != nil {
		return res, err
	}
	res.Prog, res.Vers = prog, vers
	args2 := pmap.AppendRpcb(nil, &pmap.Mapping{Prog: prog, Vers: vers, Netid: c.Netid(), Addr: target.Uaddr()})
	var entries []pmap.AddrEntry
	if c.Call(pmap.ProcGetaddrlist, args2, func(d *xdr.Decoder) (err error) {
		entries, err = pmap.DecodeAddrList(d, entries, tirpc.MaxRows)
		return err
	}, r.CallTimeout(minuteTimeout)) != tirpc.Success {
		return res, rpcbindFailed(c)
	}
	for _, e := range entries {
		class := "cots_ord"
		switch e.Semantics {
		case tirpc.SemCLTS:
			class = "clts"
		case tirpc.SemCOTS:
			class = "cots"
		}
		res.Entries = append(res.Entries, Entry{e.Addr, e.Netid, e.Family, e.Proto, class, r.serviceOr(prog, "")})
	}
	return res, nil
}

// deletereg is -d [-T netid] prog vers: rpcb_unset, through the local
// socket first. C evaluates the arguments of rpcb_unset right to left,
// so a bad version is reported before a bad program.
func (r *runner) deletereg(netid string, netidSet bool, args []string) (*DeleteResult, error) {
	res := &DeleteResult{}
	res.Query = "delete"
	if len(args) != 2 {
		return res, usageError{}
	}
	if netidSet {
		if _, ok := r.lookupNetid(res.common(), netid); !ok {
			return res, netidUnsupported{netid}
		}
		res.Netid = netid
	}
	prog, vers, err := r.progAndVers(args[0], args[1], true)
	if err != nil {
		return res, err
	}
	res.Prog, res.Vers = prog, vers
	if !r.lib().RpcbUnset(prog, vers, res.Netid) {
		return res, notDeleted{args[0], args[1]}
	}
	res.Deleted = true
	return res, nil
}

// getstat is -m: RPCBIND v4 GETSTAT, printed as rpcinfo's tables.
func (r *runner) getstat(args []string) (*StatResult, error) {
	res := &StatResult{Versions: []StatVersion{}}
	res.Query = "stat"
	var c tirpc.Clnt
	var err error
	if len(args) >= 1 {
		res.Host = args[0]
		c, _, err = r.rpcbindCreate(args[0], pmap.VersRPCB4)
	} else {
		c, err = r.localInfo(pmap.VersRPCB4)
	}
	if err != nil {
		return res, createFailure("rpcinfo: can't contact rpcbind", err)
	}
	defer c.Close()
	var st [3]pmap.VersStat
	if c.Call(pmap.ProcGetstat, nil, func(d *xdr.Decoder) (err error) {
		st, err = pmap.DecodeStatByVers(d, tirpc.MaxRows)
		return err
	}, r.CallTimeout(minuteTimeout)) != tirpc.Success {
		return res, rpcbindFailed(c)
	}
	res.Versions = statsJSON(&st, r)
	return res, nil
}

// brdcst is -b prog vers: rpc_broadcast of a NULL call, with every
// answer that came.
func (r *runner) brdcst(args []string) (*BroadcastResult, error) {
	res := &BroadcastResult{Replies: []bcastReply{}}
	res.Query = "broadcast"
	if len(args) != 2 {
		return res, usageError{}
	}
	prog, vers, err := r.progAndVers(args[0], args[1], false)
	if err != nil {
		return res, err
	}
	res.Prog, res.Vers = prog, vers
	broadcast := r.broadcast
	if broadcast == nil {
		broadcast = r.rpcBroadcast
	}
	replies, st := broadcast(prog, vers)
	res.Replies = append(res.Replies, replies...)
	if st != tirpc.Success && st != tirpc.TimedOut {
		return res, broadcastFailed{st}
	}
	return res, nil
}
