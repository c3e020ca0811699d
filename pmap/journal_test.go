package pmap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// recorder is a Journal that keeps what it is told.
type recorder struct {
	changes []Change
	lasts   int
}

func (j *recorder) Record(c Change, last bool) {
	j.changes = append(j.changes, c)
	if last {
		j.lasts++
	}
}

// op is one random SET or UNSET over a small key space, so that sets
// collide, versions fall back and multi-row UNSETs happen.
func randomOp(rng *rand.Rand, r *Registry) {
	prog := uint32(100 + rng.IntN(4))
	vers := uint32(1 + rng.IntN(3))
	netid := []string{"udp", "tcp", "udp6", "local"}[rng.IntN(4)]
	switch rng.IntN(3) {
	case 0, 1:
		r.Set(Mapping{Prog: prog, Vers: vers, Netid: netid, Addr: fmt.Sprintf("0.0.0.0.%d.%d", rng.IntN(4), vers), Owner: "superuser"})
	default:
		if rng.IntN(2) == 0 {
			netid = ""
		}
		r.Unset(prog, vers, netid, OwnerSuperuser)
	}
}

// answers is everything a client can learn from r: the table in DUMP
// order, every lookup with its version fallback, and PROG_MISMATCH's range.
func answers(r *Registry) string {
	out := fmt.Sprint(r.Mappings())
	for prog := uint32(100); prog < 104; prog++ {
		for vers := uint32(0); vers < 5; vers++ {
			for _, netid := range []string{"udp", "tcp", "udp6", "local"} {
				m, found, exact := r.Lookup(prog, vers, netid)
				port, v2 := r.lookupV2(prog, vers, netid)
				out += fmt.Sprint(m, found, exact, port, v2)
			}
		}
		lo, hi := r.Versions(prog, "udp")
		out += fmt.Sprint(lo, hi)
	}
	return out
}

// A change that cannot be made durable is taken back: Revert returns the
// table to exactly what it was, DUMP order and version fallback included,
// however the changes after that point interleave.
func TestRevertRestoresTheTableExactly(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 17))
		r := NewRegistry()
		j := &recorder{}
		r.Track(j)
		// A watcher (the nftables set) must hear reverted rows come
		// back and go again, so that it ends with the table.
		heard := map[Mapping]int{}
		r.Watch(func(m *Mapping, added bool) {
			if added {
				heard[*m]++
			} else {
				heard[*m]--
			}
		})
		for range rng.IntN(30) {
			randomOp(rng, r)
		}
		durable := r.Generation()
		r.Settle(durable)
		want := answers(r)
		for range 1 + rng.IntN(30) {
			randomOp(rng, r)
		}
		newest, now := r.Revert(durable)
		if got := answers(r); got != want {
			t.Fatalf("seed %d: after Revert(%d) the registry answers\n%s\nwant\n%s", seed, durable, got, want)
		}
		if now < newest || newest < durable {
			t.Fatalf("seed %d: Revert = (%d, %d) after %d", seed, newest, now, durable)
		}
		table := map[Mapping]int{}
		for _, m := range r.Mappings() {
			table[m]++
		}
		for m, n := range heard {
			if n != table[m] {
				t.Fatalf("seed %d: the watcher counts %v %d times, the table %d", seed, m, n, table[m])
			}
		}
		for m := range table {
			if heard[m] != 1 {
				t.Fatalf("seed %d: the watcher never heard %v come back", seed, m)
			}
		}
		// The table goes on working, and reverting again changes nothing.
		randomOp(rng, r)
		if _, again := r.Revert(r.Generation()); again != r.Generation() {
			t.Fatalf("seed %d: a Revert with nothing to take back moved the generation", seed)
		}
	}
}

// The journal sees every row change in order with its generation, each
// operation's last change marked, and never the reverting itself.
func TestJournalSeesEveryChange(t *testing.T) {
	r := NewRegistry()
	j := &recorder{}
	r.Track(j)
	m := func(vers uint32, netid string) Mapping {
		return Mapping{Prog: 7, Vers: vers, Netid: netid, Addr: "0.0.0.0.0.1", Owner: "superuser"}
	}
	r.Set(m(1, "udp"))
	r.Set(m(1, "udp")) // no change
	r.Set(m(1, "tcp"))
	r.Set(m(2, "tcp"))
	r.Unset(7, 1, "", OwnerSuperuser) // two rows, one operation
	want := []Change{
		{Gen: 1, Mapping: m(1, "udp")},
		{Gen: 2, Mapping: m(1, "tcp")},
		{Gen: 3, Mapping: m(2, "tcp")},
		{Gen: 4, Removed: true, Mapping: m(1, "udp")},
		{Gen: 5, Removed: true, Mapping: m(1, "tcp")},
	}
	if !slices.Equal(j.changes, want) || j.lasts != 4 {
		t.Fatalf("journal saw %v (%d operations), want %v (4)", j.changes, j.lasts, want)
	}
	r.Settle(3)
	r.Revert(3)
	if len(j.changes) != len(want) {
		t.Errorf("the journal was told of the revert: %v", j.changes[len(want):])
	}
	if got := r.Mappings(); !slices.Equal(got, []Mapping{m(1, "udp"), m(1, "tcp"), m(2, "tcp")}) {
		t.Errorf("after reverting the UNSET the table is %v", got)
	}
	// Settled changes stay.
	if _, now := r.Revert(0); len(r.Mappings()) != 3 || now != r.Generation() {
		t.Errorf("Revert took back settled changes: %v", r.Mappings())
	}
}
