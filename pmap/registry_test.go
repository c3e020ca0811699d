package pmap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func row(prog, vers uint32, netid, addr string) Mapping {
	return Mapping{Prog: prog, Vers: vers, Netid: netid, Addr: addr, Owner: OwnerSuperuser}
}

// Lookup answers the exact version, else the most recently registered
// other version on the netid, and keeps doing so as entries go.
func TestRegistryLookupFallsBackAfterRemovals(t *testing.T) {
	r := NewRegistry()
	for _, x := range []Mapping{
		row(progA, 1, "udp", "a1"), row(progA, 2, "udp", "a2"), row(progA, 3, "udp", "a3"),
		row(progA, 4, "tcp", "t4"), row(progB, 1, "udp", "b1"),
	} {
		r.Set(x)
	}
	type want struct {
		addr         string
		found, exact bool
	}
	steps := []struct {
		name   string
		remove *[2]uint32 // (vers, prog) unset on "udp" before the lookup
		vers   uint32
		netid  string
		want   want
	}{
		{"exact", nil, 2, "udp", want{"a2", true, true}},
		{"fallback to the newest", nil, 9, "udp", want{"a3", true, false}},
		{"netid folded", nil, 9, "UDP", want{"a3", true, false}},
		{"exact with netid folded", nil, 1, "Udp", want{"a1", true, true}},
		{"other netid has its own versions", nil, 9, "tcp", want{"t4", true, false}},
		{"no such netid", nil, 1, "udp6", want{"", false, false}},
		{"newest removed", &[2]uint32{3, progA}, 9, "udp", want{"a2", true, false}},
		{"oldest removed", &[2]uint32{1, progA}, 9, "udp", want{"a2", true, false}},
		{"removed version is not exact", nil, 1, "udp", want{"a2", true, false}},
		{"last removed", &[2]uint32{2, progA}, 9, "udp", want{"", false, false}},
		{"other program untouched", nil, 1, "udp", want{"", false, false}},
	}
	for _, s := range steps {
		if s.remove != nil {
			if !r.Unset(s.remove[1], s.remove[0], "udp", OwnerSuperuser) {
				t.Fatalf("%s: Unset failed", s.name)
			}
		}
		got, found, exact := r.Lookup(progA, s.vers, s.netid)
		if got.Addr != s.want.addr || found != s.want.found || exact != s.want.exact {
			t.Errorf("%s: Lookup(%d, %q) = (%q, %v, %v), want (%q, %v, %v)", s.name, s.vers, s.netid,
				got.Addr, found, exact, s.want.addr, s.want.found, s.want.exact)
		}
	}
	if got, found, _ := r.Lookup(progB, 7, "udp"); !found || got.Addr != "b1" {
		t.Errorf("program B: (%q, %v)", got.Addr, found)
	}
}

// Each visits mappings in table order: insertion order, with a mapping
// removed and set again at the end. It stops when f returns false.
func TestRegistryEachVisitsInTableOrder(t *testing.T) {
	r := NewRegistry()
	for i := uint32(1); i <= 5; i++ {
		r.Set(row(progA, i, "udp", fmt.Sprint(i)))
	}
	r.Unset(progA, 2, "udp", OwnerSuperuser)
	r.Unset(progA, 5, "", OwnerSuperuser)
	r.Set(row(progA, 2, "udp", "2 again"))
	r.Set(row(progA, 1, "udp", "1")) // no-op: stays first
	var got []string
	r.Each(func(x *Mapping) bool {
		got = append(got, x.Addr)
		return true
	})
	if want := "[1 3 4 2 again]"; fmt.Sprint(got) != want {
		t.Errorf("Each order = %v, want %v", got, want)
	}
	n := 0
	r.Each(func(*Mapping) bool {
		n++
		return n < 2
	})
	if n != 2 {
		t.Errorf("Each called f %d times after it returned false, want 2", n)
	}
	if r.Len() != 4 || len(r.Mappings()) != 4 {
		t.Errorf("Len = %d, len(Mappings) = %d, want 4", r.Len(), len(r.Mappings()))
	}
}

// The generation changes with every change to the table and with nothing
// else, so that a writer of the warm-start file can tell whether it is
// behind.
func TestRegistryGenerationBumpsOnEveryChangeOnly(t *testing.T) {
	r := NewRegistry()
	r.Set(Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "x", Owner: "1000"})
	steps := []struct {
		name    string
		do      func() bool
		result  bool
		changes bool
	}{
		{"set new", func() bool { return r.Set(row(progA, 2, "udp", "x")) }, true, true},
		{"set same again", func() bool { return r.Set(row(progA, 2, "udp", "x")) }, true, false},
		{"set same, netid in capitals", func() bool { return r.Set(row(progA, 2, "UDP", "x")) }, true, false},
		{"set conflicting", func() bool { return r.Set(row(progA, 2, "udp", "y")) }, false, false},
		{"unset nothing", func() bool { return r.Unset(progB, 1, "", OwnerSuperuser) }, true, false},
		{"unset nothing on a netid", func() bool { return r.Unset(progA, 2, "tcp", OwnerSuperuser) }, true, false},
		{"unset refused", func() bool { return r.Unset(progA, 1, "udp", "1001") }, false, false},
		{"unset by owner", func() bool { return r.Unset(progA, 1, "udp", "1000") }, true, true},
		{"set another netid", func() bool { return r.Set(row(progA, 2, "tcp", "x")) }, true, true},
		{"unset every netid", func() bool { return r.Unset(progA, 2, "", OwnerSuperuser) }, true, true},
	}
	for _, s := range steps {
		before, gen := r.Snapshot()
		if got := s.do(); got != s.result {
			t.Errorf("%s: returned %v, want %v", s.name, got, s.result)
		}
		after, gen2 := r.Snapshot()
		if changed := gen2 != gen; changed != s.changes {
			t.Errorf("%s: generation %d -> %d, want a change: %v", s.name, gen, gen2, s.changes)
		}
		if gen2 < gen {
			t.Errorf("%s: generation went back from %d to %d", s.name, gen, gen2)
		}
		if same := diffMappings(after, before) == ""; same == s.changes {
			t.Errorf("%s: table changed %v, generation says %v", s.name, !same, s.changes)
		}
		if g := r.Generation(); g != gen2 {
			t.Errorf("%s: Generation() = %d, Snapshot said %d", s.name, g, gen2)
		}
	}
	ms, _ := r.Snapshot()
	if len(ms) != 0 {
		t.Fatalf("table not empty: %v", ms)
	}
	r.Set(row(progA, 1, "udp", "x"))
	ms, _ = r.Snapshot()
	ms[0].Addr = "changed"
	if got, _, _ := r.Lookup(progA, 1, "udp"); got.Addr != "x" {
		t.Error("changing a Snapshot changed the registry")
	}
}

// Versions is the range PROG_MISMATCH reports, computed like rpcbind's
// find_versions.
func TestRegistryVersions(t *testing.T) {
	r := NewRegistry()
	for _, x := range []Mapping{
		row(progA, 4, "udp", ""), row(progA, 2, "udp", ""), row(progA, 7, "UDP6", ""), row(progA, 9, "tcp", ""),
		row(progB, 0, "udp", ""), row(progB, 5, "udp", ""), row(progB, 3, "udp", ""),
	} {
		r.Set(x)
	}
	tests := []struct {
		prog      uint32
		netid     string
		low, high uint32
	}{
		{progA, "udp", 2, 4},
		{progA, "udp6", 7, 7},
		{progA, "local", 0, 0},
		// rpcbind takes a low of 0 for "nothing seen yet".
		{progB, "udp", 3, 5},
	}
	for _, tt := range tests {
		if low, high := r.Versions(tt.prog, tt.netid); low != tt.low || high != tt.high {
			t.Errorf("Versions(%d, %q) = %d..%d, want %d..%d", tt.prog, tt.netid, low, high, tt.low, tt.high)
		}
	}
}

// The PMAP v2 view sees only mappings on exactly "udp" and "tcp" whose
// address yields a port, and falls back within that view.
func TestRegistryV2View(t *testing.T) {
	r := NewRegistry()
	r.Set(row(progA, 1, "udp", "0.0.0.0.0.1"))
	r.Set(row(progA, 2, "UDP", "0.0.0.0.0.2"))
	r.Set(row(progA, 3, "udp", "noport"))
	r.Set(row(progA, 4, "udp6", "::.0.4"))
	tests := []struct {
		vers  uint32
		port  uint32
		found bool
	}{
		{1, 1, true},
		{2, 1, true}, // its own entry is "UDP"
		{3, 1, true}, // its own entry has no port
		{4, 1, true},
		{9, 1, true},
	}
	for _, tt := range tests {
		if port, found := r.lookupV2(progA, tt.vers, "udp"); port != tt.port || found != tt.found {
			t.Errorf("lookupV2(%d) = (%d, %v), want (%d, %v)", tt.vers, port, found, tt.port, tt.found)
		}
	}
	r.Unset(progA, 1, "udp", OwnerSuperuser)
	if port, found := r.lookupV2(progA, 9, "udp"); found {
		t.Errorf("lookupV2 after the only visible entry went = %d", port)
	}
}

// A Registry is safe for concurrent use (run with -race).
func TestRegistryConcurrentUse(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for g := uint32(0); g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint32(0); i < 500; i++ {
				r.Set(row(progA+g, i%7, "udp", "0.0.0.0.0.1"))
				r.Lookup(progA+g, i%5, "udp")
				r.lookupV2(progA+g, i%5, "udp")
				r.Versions(progA+g, "udp")
				r.Each(func(*Mapping) bool { return true })
				r.Snapshot()
				if i%3 == 0 {
					r.Unset(progA+g, i%7, "", OwnerSuperuser)
				}
			}
		}()
	}
	wg.Wait()
	ms, _ := r.Snapshot()
	if len(ms) != r.Len() {
		t.Errorf("Snapshot has %d mappings, Len says %d", len(ms), r.Len())
	}
	seen := map[key]bool{}
	for _, x := range ms {
		k := key{x.Prog, x.Vers, x.Netid}
		if seen[k] {
			t.Errorf("%v twice", k)
		}
		seen[k] = true
		if got, found, exact := r.Lookup(x.Prog, x.Vers, x.Netid); !found || !exact || got != x {
			t.Errorf("Lookup(%v) = (%v, %v, %v)", k, got, found, exact)
		}
	}
}

// The table holds at most MaxMappings entries, so that a local process
// looping on SET cannot take the daemon's memory and every table fits the
// warm-start file; a full table still answers SET of what it holds.
func TestRegistryIsCapped(t *testing.T) {
	if r := NewRegistry(); r.max != MaxMappings {
		t.Fatalf("cap %d, want MaxMappings (%d)", r.max, MaxMappings)
	}
	r := NewRegistry()
	r.max = 3
	for v := uint32(1); v <= 3; v++ {
		if !r.Set(row(progA, v, "udp", "x")) {
			t.Fatalf("Set %d failed below the cap", v)
		}
	}
	gen := r.Generation()
	if r.Set(row(progA, 4, "udp", "x")) {
		t.Error("Set beyond the cap succeeded")
	}
	if !r.Set(row(progA, 3, "udp", "x")) {
		t.Error("Set of a mapping the full table holds failed")
	}
	if r.Len() != 3 || r.Generation() != gen {
		t.Errorf("Len %d, generation %d -> %d", r.Len(), gen, r.Generation())
	}
	r.Unset(progA, 1, "", OwnerSuperuser)
	if !r.Set(row(progA, 4, "udp", "x")) {
		t.Error("Set after an Unset made room failed")
	}
}

// SetAll is the same as one Set per row, in order, whatever the rows: a
// repeat of a key keeps the first address, an identical repeat counts as
// set, netids fold, and the table's bound holds. Rows already in the
// table stay first.
func TestSetAll(t *testing.T) {
	rows := []Mapping{
		row(progA, 1, "udp", "a1"),
		row(progA, 1, "udp", "other"), // refused: the first one wins
		row(progA, 1, "udp", "a1"),    // identical: TRUE, no second row
		row(progA, 1, "UDP", "folded"),
		row(progA, 2, "tcp", "a2"),
		row(progB, 1, "tcp6", "b1"),
		row(progB, 2, "ticotsord", "b2"),
		row(progB, 3, "udp", "over the bound"),
	}
	one, all := NewRegistry(), NewRegistry()
	for _, r := range []*Registry{one, all} {
		r.max = 5
		r.Set(row(Program, 2, "udp", "own"))
	}
	want := 0
	for _, m := range rows {
		if one.Set(m) {
			want++
		}
	}
	if got := all.SetAll(rows); got != want {
		t.Errorf("SetAll reported %d set, one Set each %d", got, want)
	}
	gotRows, gotGen := all.Snapshot()
	wantRows, wantGen := one.Snapshot()
	if fmt.Sprint(gotRows) != fmt.Sprint(wantRows) || gotGen != wantGen {
		t.Errorf("SetAll made\n %v (generation %d)\none Set each\n %v (generation %d)", gotRows, gotGen, wantRows, wantGen)
	}
	if len(gotRows) != 5 {
		t.Errorf("%d rows, want the bound of 5", len(gotRows))
	}
	if m, found, exact := all.Lookup(progA, 1, "udp"); !found || !exact || m.Addr != "a1" {
		t.Errorf("lookup after SetAll: %v %v %v", m, found, exact)
	}
}

// SetAll agrees with one Set per row however the rows repeat each other
// or the rows already there: the same table, generation and count, and
// the same answers from every index (exact and fallback lookups, the v2
// index, the version range). The keys are few so that repeats, folded
// netids and addresses without a port are common.
func TestSetAllAgreesWithOneSetPerRow(t *testing.T) {
	netids := []string{"udp", "tcp", "UDP", "udp6", "Tcp", "ticotsord"}
	addrs := []string{"0.0.0.0.3.1", "0.0.0.0.0.7", "garbage", "::1.1.1", "0.0.0.0.255.255"}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		randomRow := func() Mapping {
			return row(1+rng.Uint32N(4), rng.Uint32N(4), netids[rng.IntN(len(netids))], addrs[rng.IntN(len(addrs))])
		}
		one, all := NewRegistry(), NewRegistry()
		for range rng.IntN(20) {
			m := randomRow()
			one.Set(m)
			all.Set(m)
		}
		rows := make([]Mapping, 1+rng.IntN(200))
		for i := range rows {
			rows[i] = randomRow()
		}
		want := 0
		for _, m := range rows {
			if one.Set(m) {
				want++
			}
		}
		if got := all.SetAll(rows); got != want {
			t.Fatalf("seed %d: SetAll reported %d set, one Set each %d", seed, got, want)
		}
		gotRows, gotGen := all.Snapshot()
		wantRows, wantGen := one.Snapshot()
		if fmt.Sprint(gotRows) != fmt.Sprint(wantRows) || gotGen != wantGen || all.Len() != one.Len() {
			t.Fatalf("seed %d: SetAll made\n %v (generation %d)\none Set each\n %v (generation %d)", seed, gotRows, gotGen, wantRows, wantGen)
		}
		for prog := range uint32(6) {
			for _, netid := range netids {
				gl, gh := all.Versions(prog, netid)
				if wl, wh := one.Versions(prog, netid); gl != wl || gh != wh {
					t.Fatalf("seed %d: Versions(%d, %q) = %d-%d, want %d-%d", seed, prog, netid, gl, gh, wl, wh)
				}
				for vers := range uint32(5) {
					gm, gf, ge := all.Lookup(prog, vers, netid)
					wm, wf, we := one.Lookup(prog, vers, netid)
					if gm != wm || gf != wf || ge != we {
						t.Fatalf("seed %d: Lookup(%d, %d, %q) = %v %v %v, want %v %v %v", seed, prog, vers, netid, gm, gf, ge, wm, wf, we)
					}
					gp, gok := all.lookupV2(prog, vers, netid)
					wp, wok := one.lookupV2(prog, vers, netid)
					if gp != wp || gok != wok {
						t.Fatalf("seed %d: lookupV2(%d, %d, %q) = %d %v, want %d %v", seed, prog, vers, netid, gp, gok, wp, wok)
					}
				}
			}
		}
	}
}

// v2 GETPORT answers from a compact index; after any sequence of SETs and
// UNSETs it must agree with rpcbind's rule applied to the table itself:
// the exact (prog, vers, netid) row if its address has a port, else the
// newest row of prog on netid that has one.
func TestLookupV2AgreesWithTheTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	netids := []string{"udp", "tcp", "UDP", "udp6", "Tcp"}
	addrs := []string{"0.0.0.0.3.1", "0.0.0.0.0.7", "garbage", "::1.1.1", "0.0.0.0.255.255"}
	r := NewRegistry()
	want := func(prog, vers uint32, netid string) (uint32, bool) {
		rows, _ := r.Snapshot()
		for _, m := range rows {
			if p, ok := UaddrPort(m.Addr); ok && m.Prog == prog && m.Vers == vers && m.Netid == netid {
				return p, true
			}
		}
		for _, m := range slices.Backward(rows) {
			if p, ok := UaddrPort(m.Addr); ok && m.Prog == prog && m.Netid == netid {
				return p, true
			}
		}
		return 0, false
	}
	for step := range 3000 {
		prog, vers := 1+rng.Uint32N(3), 1+rng.Uint32N(3)
		netid := netids[rng.IntN(len(netids))]
		if rng.IntN(3) == 0 {
			r.Unset(prog, vers, netid, OwnerSuperuser)
		} else {
			r.Set(row(prog, vers, netid, addrs[rng.IntN(len(addrs))]))
		}
		for prog := range uint32(4) {
			for vers := range uint32(4) {
				for _, netid := range []string{"udp", "tcp"} { // what v2 asks about
					gotPort, gotOK := r.lookupV2(prog, vers, netid)
					wantPort, wantOK := want(prog, vers, netid)
					if gotPort != wantPort || gotOK != wantOK {
						t.Fatalf("step %d: lookupV2(%d, %d, %q) = %d %v, the table says %d %v",
							step, prog, vers, netid, gotPort, gotOK, wantPort, wantOK)
					}
				}
			}
		}
	}
}

// A watcher hears of every row added or removed, whichever way the table
// changes (Set, SetAll, Unset of one netid or of all, repeats refused), so that the rows it has heard of are the table.
func TestRegistryWatchHearsEveryChange(t *testing.T) {
	r := NewRegistry()
	r.Set(row(progA, 1, "udp", "0.0.0.0.1.1"))
	heard := map[Mapping]int{}
	r.Watch(func(m *Mapping, added bool) {
		if added {
			heard[*m]++
		} else {
			heard[*m]--
		}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	netids := []string{"udp", "tcp", "udp6", "tcp6", "TCP"}
	for i := range 2000 {
		prog, vers := progA+uint32(rng.IntN(3)), uint32(rng.IntN(3))
		netid := netids[rng.IntN(len(netids))]
		switch rng.IntN(4) {
		case 0:
			r.Set(row(prog, vers, netid, fmt.Sprintf("0.0.0.0.%d.%d", rng.IntN(2), i%4)))
		case 1:
			r.SetAll([]Mapping{row(prog, vers, netid, "0.0.0.0.3.1"), row(prog, vers+1, netid, "0.0.0.0.3.2"),
				row(prog, vers, netid, "0.0.0.0.3.3")})
		case 2:
			r.Unset(prog, vers, netid, OwnerSuperuser)
		case 3:
			r.Unset(prog, vers, "", OwnerSuperuser)
		}
	}
	want := map[Mapping]int{}
	for _, m := range r.Mappings() {
		want[m]++
	}
	for m, n := range heard {
		if n == 0 {
			delete(heard, m)
		}
	}
	if len(heard) != len(want) {
		t.Fatalf("heard of %d rows, the table has %d", len(heard), len(want))
	}
	for m, n := range want {
		if heard[m] != n {
			t.Errorf("%+v: heard %d, in the table %d", m, heard[m], n)
		}
	}
	r.Watch(nil)
	r.Set(row(progB, 1, "udp", "0.0.0.0.1.1"))
	if heard[row(progB, 1, "udp", "0.0.0.0.1.1")] != 0 {
		t.Error("heard of a change after Watch(nil)")
	}
}
