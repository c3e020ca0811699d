package pmap

import "slices"

// Change is one row added to or removed from a tracked Registry.
type Change struct {
	// Gen is the table's generation right after the change.
	Gen     uint64
	Removed bool
	Mapping
}

// Journal is told every change of a tracked Registry, in the order they
// happen, while the registry's write lock is held: it must be quick and
// must not call back into the registry. last is true for the final
// change of one operation (a SET, an UNSET that removes several rows, a
// SetAll), so that a journal can keep an operation's changes together:
// a caller is told the outcome of its whole operation, never of half.
type Journal interface {
	Record(c Change, last bool)
}

// tracked is what a Registry keeps for its Journal: how to undo every
// change the journal has not yet settled, newest last.
type tracked struct {
	journal   Journal
	undo      []undo
	published int // undo[:published] has been handed to the journal
}

// undo is how to take back one change: remove e again, or put a removed e
// back where it was.
type undo struct {
	gen     uint64
	e       *entry
	removed bool
	prev    *entry // e's predecessor in table order when it was removed
	at      int    // e's index in its program's list when it was removed
}

// Track hands every later change to j, and keeps what Revert needs to take
// back the changes j has not settled. A warm start tracks the registry
// once its saved table is loaded.
func (r *Registry) Track(j Journal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.journal, r.undo, r.published = j, nil, 0
}

// Settle tells the registry that the changes up to generation gen are
// durable: they will never be reverted, and their undo records go.
func (r *Registry) Settle(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < r.published && r.undo[i].gen <= gen {
		i++
	}
	if i == 0 {
		return
	}
	n := copy(r.undo, r.undo[i:])
	clear(r.undo[n:]) // let removed entries be collected
	r.undo = r.undo[:n]
	r.published -= i
	if cap(r.undo) > 1024 && n < cap(r.undo)/4 {
		r.undo = slices.Clip(r.undo) // a burst's undo log is not kept for ever
	}
}

// Revert takes back every change after generation after, newest first,
// so that the table is again exactly what it was at after (DUMP order
// included): the changes could not be made durable. It reports the
// generation of the newest change taken back (after, if none) and the
// table's generation now, at which its content is that of after. The
// journal is not told of the reverting itself.
func (r *Registry) Revert(after uint64) (newest, now uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	newest = after
	i := len(r.undo)
	for i > 0 && r.undo[i-1].gen > after {
		i--
		u := r.undo[i]
		newest = max(newest, u.gen)
		if u.removed {
			r.restore(u)
		} else {
			r.unlinkQuietly(u.e)
		}
	}
	clear(r.undo[i:])
	r.undo = r.undo[:i]
	r.published = min(r.published, i)
	return newest, r.gen
}

// noteAdded records that e was just added.
func (r *Registry) noteAdded(e *entry) {
	if r.journal != nil {
		r.undo = append(r.undo, undo{gen: r.gen, e: e})
	}
}

// noteRemoved records that e was just removed; prev and at say where it
// was.
func (r *Registry) noteRemoved(e, prev *entry, at int) {
	if r.journal != nil {
		r.undo = append(r.undo, undo{gen: r.gen, e: e, removed: true, prev: prev, at: at})
	}
}

// publish hands the operation's changes to the journal, the last marked.
func (r *Registry) publish() {
	if r.journal == nil {
		return
	}
	for i := r.published; i < len(r.undo); i++ {
		u := &r.undo[i]
		r.journal.Record(Change{Gen: u.gen, Removed: u.removed, Mapping: u.e.Mapping}, i == len(r.undo)-1)
	}
	r.published = len(r.undo)
}

// unlinkQuietly removes e without recording an undo for it.
func (r *Registry) unlinkQuietly(e *entry) {
	j := r.journal
	r.journal = nil
	r.remove(e)
	r.journal = j
}

// restore puts a removed entry back where it was. Changes are reverted
// newest first, so the table is exactly as it was right after the
// removal: the key is free and the neighbours are the same.
func (r *Registry) restore(u undo) {
	e := u.e
	k := rowKey(e.Mapping)
	r.byKey[k] = e
	if i := v2Index(e.Netid); i >= 0 && e.v2Port {
		r.v2ports[i][v2Key(e.Prog, e.Vers)] = e.port
	}
	pk := progKey{e.Prog, k.netid}
	list := r.byProg[pk]
	r.byProg[pk] = slices.Insert(list, min(max(u.at, 0), len(list)), e)
	e.prev = u.prev
	if u.prev == nil {
		e.next = r.head
		r.head = e
	} else {
		e.next = u.prev.next
		u.prev.next = e
	}
	if e.next == nil {
		r.tail = e
	} else {
		e.next.prev = e
	}
	r.n++
	r.bump()
	r.notify(e, true) // a watcher saw it go; it sees it come back
}
