package pmap

import (
	"sync"
	"sync/atomic"

	"github.com/portmapd/portmapd/xdr"
)

// Statistics that RPCBIND v4 GETSTAT reports (RFC 1833, rpcb_stat), kept
// per portmapper version: calls per procedure, successful SETs and UNSETs,
// lookups and remote calls by (prog, vers, netid).
//
// rpcbind adds a list entry for every distinct program anyone asks about,
// so any host can grow its memory and its GETSTAT reply without bound.
// Here each list is capped; lookups of keys beyond the cap still count in
// the per-procedure figures but get no entry of their own.

// Indexes of the three versions in Stats, as rpcbind numbers them.
const (
	StatV2 = 0
	StatV3 = 1
	StatV4 = 2
)

const (
	highProc       = 13 // RPCBSTAT_HIGHPROC: procedures counted per version
	DefaultMaxStat = 256
)

// Stats is safe for concurrent use; counting an existing key takes a read
// lock and atomic adds, and never allocates.
type Stats struct {
	// MaxEntries bounds each lookup and remote-call list.
	MaxEntries int
	vers       [3]versStats
}

type versStats struct {
	procs      [highProc]atomic.Int32
	set, unset atomic.Int32

	mu       sync.RWMutex
	addrs    map[key]*addrStat
	addrList []*addrStat // insertion order; encoded newest first
	rmt      map[rmtKey]*rmtStat
	rmtList  []*rmtStat
}

type addrStat struct {
	prog, vers       uint32
	netid            string
	success, failure atomic.Int32
}

type rmtKey struct {
	prog, vers, proc uint32
	netid            string
}

type rmtStat struct {
	rmtKey
	success, failure, indirect atomic.Int32
}

// NewStats returns zeroed statistics.
func NewStats() *Stats { return &Stats{MaxEntries: DefaultMaxStat} }

// Proc counts a call to proc of version v (StatV2...).
func (s *Stats) Proc(v int, proc uint32) {
	if proc < highProc {
		s.vers[v].procs[proc].Add(1)
	}
}

// Set counts a SET; only successful ones are counted, as rpcbind does.
func (s *Stats) Set(v int, ok bool) {
	if ok {
		s.vers[v].set.Add(1)
	}
}

// Unset counts an UNSET; only successful ones are counted.
func (s *Stats) Unset(v int, ok bool) {
	if ok {
		s.vers[v].unset.Add(1)
	}
}

// Lookup counts a GETPORT, GETADDR or GETADDRLIST of (prog, vers) on
// netid. netid must be a constant or otherwise long-lived string.
func (s *Stats) Lookup(v int, prog, vers uint32, netid string, ok bool) {
	vs := &s.vers[v]
	k := key{prog, vers, netid}
	vs.mu.RLock()
	a, full := vs.addrs[k], len(vs.addrList) >= s.MaxEntries
	vs.mu.RUnlock()
	if a == nil && full {
		return // untracked, as the list is full: no write lock per call
	}
	if a == nil {
		vs.mu.Lock()
		if a = vs.addrs[k]; a == nil {
			if len(vs.addrList) >= s.MaxEntries {
				vs.mu.Unlock()
				return
			}
			if vs.addrs == nil {
				vs.addrs = make(map[key]*addrStat)
			}
			a = &addrStat{prog: prog, vers: vers, netid: netid}
			vs.addrs[k] = a
			vs.addrList = append(vs.addrList, a)
		}
		vs.mu.Unlock()
	}
	if ok {
		a.success.Add(1)
	} else {
		a.failure.Add(1)
	}
}

// RemoteCall counts a forwarded call; indirect marks INDIRECT. As in
// rpcbind (rpcbs_rmtcall), a new entry starts with an indirect count of
// one whatever made it, and later calls add only for INDIRECT: rpcinfo -m
// users compare these figures.
func (s *Stats) RemoteCall(v int, prog, vers, proc uint32, netid string, ok, indirect bool) {
	vs := &s.vers[v]
	k := rmtKey{prog, vers, proc, netid}
	vs.mu.Lock()
	r := vs.rmt[k]
	fresh := r == nil
	if fresh {
		if len(vs.rmtList) >= s.MaxEntries {
			vs.mu.Unlock()
			return
		}
		if vs.rmt == nil {
			vs.rmt = make(map[rmtKey]*rmtStat)
		}
		r = &rmtStat{rmtKey: k}
		vs.rmt[k] = r
		vs.rmtList = append(vs.rmtList, r)
	}
	vs.mu.Unlock()
	if ok {
		r.success.Add(1)
	} else {
		r.failure.Add(1)
	}
	if indirect || fresh {
		r.indirect.Add(1)
	}
}

// AppendXDR appends rpcb_stat_byvers: the three versions' statistics,
// lists newest first as rpcbind prepends to them.
func (s *Stats) AppendXDR(b []byte) []byte {
	for i := range s.vers {
		vs := &s.vers[i]
		for p := range vs.procs {
			b = xdr.AppendInt32(b, vs.procs[p].Load())
		}
		b = xdr.AppendInt32(b, vs.set.Load())
		b = xdr.AppendInt32(b, vs.unset.Load())
		vs.mu.RLock()
		for j := len(vs.addrList) - 1; j >= 0; j-- {
			a := vs.addrList[j]
			b = AppendAddrStat(xdr.AppendBool(b, true), &AddrStat{Prog: a.prog, Vers: a.vers,
				Success: a.success.Load(), Failure: a.failure.Load(), Netid: a.netid})
		}
		b = xdr.AppendBool(b, false)
		for j := len(vs.rmtList) - 1; j >= 0; j-- {
			r := vs.rmtList[j]
			b = AppendRmtStat(xdr.AppendBool(b, true), &RmtStat{Prog: r.prog, Vers: r.vers, Proc: r.proc,
				Success: r.success.Load(), Failure: r.failure.Load(), Indirect: r.indirect.Load(), Netid: r.netid})
		}
		vs.mu.RUnlock()
		b = xdr.AppendBool(b, false)
	}
	return b
}
