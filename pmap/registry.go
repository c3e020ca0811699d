package pmap

import (
	"maps"
	"strings"
	"sync"
)

// Registry is the registration table: pure state with rpcbind's semantics
// and no I/O. Lookups cost the same however many entries it holds: exact
// matches come from a map, and the version fallback from a per-program
// list whose last element is the answer.
//
// A Registry is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	// watch, if set, hears of every row added or removed (Watch).
	watch  func(m *Mapping, added bool)
	head   *entry // insertion order, which DUMP reports
	tail   *entry
	n      int
	byKey  map[key]*entry
	byProg map[progKey][]*entry // same program and netid, insertion order
	// v2ports answers v2 GETPORT's exact matches from 12 bytes a row,
	// keyed by prog<<32|vers, for rows on "udp" ([0]) and "tcp" ([1])
	// that have a port: in a large table the call then costs no cache
	// miss into the entry and its address.
	v2ports [2]map[uint64]uint32
	gen     uint64
	max     int // bound on n; MaxMappings unless a test lowers it
	// tracked is the journal of a tracked registry (journal.go).
	tracked
}

// key identifies a mapping. Netids compare case-insensitively, as rpcbind
// compares them with strcasecmp.
type key struct {
	prog, vers uint32
	netid      string
}

type progKey struct {
	prog  uint32
	netid string
}

type entry struct {
	Mapping
	prev, next *entry
	// port is the port of Addr (v2 GETPORT's answer), parsed once at SET
	// rather than on every lookup; v2Port says whether Addr has one.
	port   uint32
	v2Port bool
}

// NewRegistry returns an empty table.
func NewRegistry() *Registry {
	return &Registry{byKey: make(map[key]*entry), byProg: make(map[progKey][]*entry),
		v2ports: [2]map[uint64]uint32{{}, {}}, max: MaxMappings}
}

// foldNetid lower-cases a netid; netids are lower-case already, so this
// allocates only for the odd caller that shouts.
func foldNetid(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// internNetid returns the netids every table is full of as constants, and
// a copy of any other, so that a row never pins a larger buffer.
func internNetid(s string) string {
	switch s {
	case "udp":
		return "udp"
	case "tcp":
		return "tcp"
	case "udp6":
		return "udp6"
	case "tcp6":
		return "tcp6"
	case "local":
		return "local"
	}
	return strings.Clone(s)
}

// Set adds m unless (prog, vers, netid) is taken. As in rpcbind, setting
// the same mapping again succeeds and setting another address for a taken
// key fails: SET never overwrites. Unlike rpcbind, a table that holds
// MaxMappings entries takes no more.
func (r *Registry) Set(m Mapping) bool {
	ok, _ := r.SetAt(m)
	return ok
}

// SetAt is Set that also returns the table's generation right after it,
// which a caller waiting for durability waits for.
func (r *Registry) SetAt(m Mapping) (ok bool, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok = r.setLocked(m, nil, nil)
	r.publish()
	return ok, r.gen
}

// setLocked is Set under the write lock. e, if not nil, is the memory for
// a new row, and list the room for its program's list if it starts one.
func (r *Registry) setLocked(m Mapping, e *entry, list []*entry) bool {
	k := rowKey(m)
	if e := r.byKey[k]; e != nil {
		return e.Addr == m.Addr
	}
	if r.n >= r.max {
		return false
	}
	if e == nil {
		e = new(entry)
	}
	e.Mapping = m
	if e.Netid == k.netid {
		// The interned copy: lookups compare netids by pointer first,
		// so a large table does not cost a cache miss per comparison.
		e.Netid = k.netid
	}
	e.port, e.v2Port = UaddrPort(m.Addr)
	r.byKey[k] = e
	if i := v2Index(e.Netid); i >= 0 && e.v2Port {
		r.v2ports[i][v2Key(e.Prog, e.Vers)] = e.port
	}
	pk := progKey{e.Prog, k.netid}
	if l := r.byProg[pk]; l != nil || list == nil {
		r.byProg[pk] = append(l, e)
	} else {
		r.byProg[pk] = append(list, e)
	}
	if r.tail == nil {
		r.head = e
	} else {
		r.tail.next, e.prev = e, r.tail
	}
	r.tail = e
	r.n++
	r.notify(e, true)
	r.bump()
	r.noteAdded(e)
	return true
}

// rowKey is m's key, its netid folded and interned.
func rowKey(m Mapping) key {
	return key{m.Prog, m.Vers, internNetid(foldNetid(m.Netid))}
}

// v2Index is the v2ports map of a netid spelled exactly "udp" or "tcp"
// (v2 compares netids exactly), or -1.
func v2Index(netid string) int {
	switch netid {
	case "udp":
		return 0
	case "tcp":
		return 1
	}
	return -1
}

func v2Key(prog, vers uint32) uint64 { return uint64(prog)<<32 | uint64(vers) }

// SetAll sets each of ms in order, as many Sets would, and reports how
// many it added or found already there. Taking the lock once and sizing
// the maps for the whole table up front makes a warm start of 10,000
// entries several times cheaper than one Set each.
func (r *Registry) SetAll(ms []Mapping) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.publish()
	// One allocation for all the entries and one for the programs' lists,
	// instead of two small ones a row. The price: a slab stays allocated
	// while any of its rows is registered.
	entries := make([]entry, len(ms))
	lists := make([]*entry, len(ms))
	r.byKey = grown(r.byKey, r.n+len(ms))
	r.byProg = grown(r.byProg, r.n+len(ms))
	r.v2ports = r.grownV2(ms)
	set := 0
	for i, m := range ms {
		if r.setLocked(m, &entries[i], lists[i:i:i+1]) {
			set++
		}
	}
	return set
}

// grown returns m, or a copy of it with room for want entries.
func grown[K comparable, V any](m map[K]V, want int) map[K]V {
	if want <= len(m) {
		return m
	}
	g := make(map[K]V, want)
	maps.Copy(g, m)
	return g
}

// grownV2 returns the v2 index with room for the rows of ms that belong in
// it.
func (r *Registry) grownV2(ms []Mapping) [2]map[uint64]uint32 {
	var rows [2]int
	for _, m := range ms {
		if i := v2Index(m.Netid); i >= 0 {
			rows[i]++
		}
	}
	var v2 [2]map[uint64]uint32
	for i, ports := range r.v2ports {
		v2[i] = grown(ports, len(ports)+rows[i])
	}
	return v2
}

// Unset removes the mappings of (prog, vers) on netid, or on every netid
// when netid is empty, on behalf of owner. Like rpcbind it walks the table
// in order and stops with false at the first match that owner may not
// remove (only the entry's owner and the superuser may); otherwise it
// reports true, also when nothing matched.
func (r *Registry) Unset(prog, vers uint32, netid, owner string) bool {
	ok, _ := r.UnsetAt(prog, vers, netid, owner)
	return ok
}

// UnsetAt is Unset that also returns the table's generation right after
// it, which a caller waiting for durability waits for.
func (r *Registry) UnsetAt(prog, vers uint32, netid, owner string) (ok bool, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok = r.unsetLocked(prog, vers, netid, owner)
	r.publish()
	return ok, r.gen
}

// unsetV2 is PMAP v2's UNSET: (prog, vers) off both IPv4 transports in
// one operation, so that a failure to persist it takes back both or none.
func (r *Registry) unsetV2(prog, vers uint32, owner string) (okTCP, okUDP bool, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	okTCP = r.unsetLocked(prog, vers, "tcp", owner)
	okUDP = r.unsetLocked(prog, vers, "udp", owner)
	r.publish()
	return okTCP, okUDP, r.gen
}

// unsetLocked is Unset under the write lock.
func (r *Registry) unsetLocked(prog, vers uint32, netid, owner string) bool {
	if netid != "" {
		e := r.byKey[key{prog, vers, foldNetid(netid)}]
		if e == nil {
			return true
		}
		if !mayRemove(owner, e) {
			return false
		}
		r.remove(e)
		return true
	}
	for e := r.head; e != nil; {
		next := e.next
		if e.Prog == prog && e.Vers == vers {
			if !mayRemove(owner, e) {
				return false
			}
			r.remove(e)
		}
		e = next
	}
	return true
}

func mayRemove(owner string, e *entry) bool {
	return owner == OwnerSuperuser || owner == e.Owner
}

// remove unlinks e; the caller holds the write lock.
func (r *Registry) remove(e *entry) {
	r.notify(e, false)
	k := key{e.Prog, e.Vers, foldNetid(e.Netid)}
	delete(r.byKey, k)
	if i := v2Index(e.Netid); i >= 0 {
		delete(r.v2ports[i], v2Key(e.Prog, e.Vers))
	}
	pk := progKey{e.Prog, k.netid}
	list := r.byProg[pk]
	at, prev := -1, e.prev
	for i, x := range list {
		if x == e {
			at = i
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil // let the removed entry be collected
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(r.byProg, pk)
	} else {
		r.byProg[pk] = list
	}
	if e.prev == nil {
		r.head = e.next
	} else {
		e.prev.next = e.next
	}
	if e.next == nil {
		r.tail = e.prev
	} else {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
	r.n--
	r.bump()
	r.noteRemoved(e, prev, at)
}

// bump records a change: the generation lets caches and the warm-start
// writer know what they have seen.
func (r *Registry) bump() {
	r.gen++
}

// Lookup finds the mapping of (prog, vers) on netid. When that version is
// not registered it falls back, as rpcbind's find_service does, to the
// most recently registered other version of prog on netid, so that the
// client learns the port and then gets PROG_MISMATCH from the service.
// exact reports whether the version matched.
func (r *Registry) Lookup(prog, vers uint32, netid string) (m Mapping, found, exact bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.byKey[key{prog, vers, netid}]; e != nil {
		return e.Mapping, true, true
	}
	if netid != foldNetid(netid) {
		if e := r.byKey[key{prog, vers, foldNetid(netid)}]; e != nil {
			return e.Mapping, true, true
		}
	}
	list := r.byProg[progKey{prog, foldNetid(netid)}]
	if len(list) == 0 {
		return Mapping{}, false, false
	}
	return list[len(list)-1].Mapping, true, false
}

// lookupV2 is Lookup over PMAP version 2's view of the table, which
// rpcbind keeps as a list of its own: only mappings whose netid is exactly
// netid ("udp" or "tcp"; rpcbind adds to that list with strcmp) and whose
// address yields a port. It returns the port of the exact version, or of
// the most recently registered other version in that view.
func (r *Registry) lookupV2(prog, vers uint32, netid string) (port uint32, found bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if i := v2Index(netid); i >= 0 {
		if port, ok := r.v2ports[i][v2Key(prog, vers)]; ok {
			return port, true
		}
	} else if e := r.byKey[key{prog, vers, netid}]; e != nil && e.Netid == netid && e.v2Port {
		return e.port, true
	}
	list := r.byProg[progKey{prog, netid}]
	for i := len(list) - 1; i >= 0; i-- {
		if e := list[i]; e.Netid == netid && e.v2Port {
			return e.port, true
		}
	}
	return 0, false
}

// Versions reports the lowest and highest version of prog registered on
// netid, for PROG_MISMATCH. It follows rpcbind's find_versions to the
// letter, including its treatment of a registered version 0 as "none
// seen yet"; both are 0 when prog is not registered on netid.
func (r *Registry) Versions(prog uint32, netid string) (low, high uint32) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.byProg[progKey{prog, foldNetid(netid)}] {
		switch v := e.Vers; {
		case low == 0:
			low, high = v, v
		case v < low:
			low = v
		case v > high:
			high = v
		}
	}
	return low, high
}

// Each calls f for every mapping in table order while holding a read lock;
// f must not call back into r. Iteration stops when f returns false.
func (r *Registry) Each(f func(*Mapping) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for e := r.head; e != nil; e = e.next {
		if !f(&e.Mapping) {
			return
		}
	}
}

// eachAt calls f for every mapping in order and returns the generation
// of the table it saw, both under one read lock.
func (r *Registry) eachAt(f func(*Mapping)) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for e := r.head; e != nil; e = e.next {
		f(&e.Mapping)
	}
	return r.gen
}

// Mappings returns a copy of the table in order.
func (r *Registry) Mappings() []Mapping {
	ms, _ := r.Snapshot()
	return ms
}

// Snapshot returns a copy of the table and its generation.
func (r *Registry) Snapshot() ([]Mapping, uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ms := make([]Mapping, 0, r.n)
	for e := r.head; e != nil; e = e.next {
		ms = append(ms, e.Mapping)
	}
	return ms, r.gen
}

// Generation returns a number that changes whenever the table does.
func (r *Registry) Generation() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.gen
}

// Len returns the number of mappings.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Watch makes f hear of every change to the table: first of every row
// there already, as added, then of each row added or removed, whatever
// removes it (UNSET, a pruned service, a change rolled back), in the
// order the table changes. f runs under the table's write lock, so it
// must be quick and must not call back into r; m is valid only during the
// call. Lookups never see the hook. One watcher at a time: a later Watch
// replaces f, and Watch(nil) ends it.
func (r *Registry) Watch(f func(m *Mapping, added bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watch = f
	if f == nil {
		return
	}
	for e := r.head; e != nil; e = e.next {
		f(&e.Mapping, true)
	}
}

// notify tells the watcher, if any, that e is being added or removed.
// Whatever puts a row into the table or takes it out calls it (link and
// remove do), under the write lock.
func (r *Registry) notify(e *entry, added bool) {
	if r.watch != nil {
		r.watch(&e.Mapping, added)
	}
}
