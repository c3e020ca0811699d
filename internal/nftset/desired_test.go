package nftset

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/portmapd/portmapd/pmap"
)

// A registration opens proto . port when it is on tcp, udp, tcp6 or udp6,
// has a port, and is not bound to loopback only.
func TestElemOfOpensOnlyReachableIPRegistrations(t *testing.T) {
	for _, c := range []struct {
		netid, addr string
		want        Elem
		ok          bool
	}{
		{"tcp", "0.0.0.0.3.32", Elem{protoTCP, 800}, true},
		{"udp", "10.0.0.1.3.32", Elem{protoUDP, 800}, true},
		{"tcp6", "::.15.160", Elem{protoTCP, 4000}, true},
		{"udp6", "fe80::1.15.160", Elem{protoUDP, 4000}, true},
		{"TCP", "0.0.0.0.0.1", Elem{protoTCP, 1}, true},
		{"tcp", "127.0.0.1.3.32", Elem{}, false},
		{"udp6", "::1.3.32", Elem{}, false},
		{"udp6", "::ffff:127.0.0.1.3.32", Elem{}, false},
		{"local", "/run/rpcbind.sock", Elem{}, false},
		{"rdma", "0.0.0.0.78.80", Elem{}, false},
		{"tcp", "0.0.0.0.0.0", Elem{}, false},   // no port
		{"tcp", "0.0.0.0.256.0", Elem{}, false}, // beyond 65535
		{"tcp", "nodots", Elem{}, false},
		// Not strictly an address, but clients read its port as rpcbind
		// does: open it rather than leave the service unreachable.
		{"udp", "host.name.3.32", Elem{protoUDP, 800}, true},
	} {
		got, ok := ElemOf(&pmap.Mapping{Netid: c.netid, Addr: c.addr})
		if got != c.want || ok != c.ok {
			t.Errorf("ElemOf(%s %s) = %v %v, want %v %v", c.netid, c.addr, got, ok, c.want, c.ok)
		}
	}
}

// Several registrations on one port share its element: it comes with the
// first and goes with the last; removing what was never counted is a
// no-op.
func TestRefsShareAPortUntilTheLastRegistrationGoes(t *testing.T) {
	r := refs{}
	e := Elem{protoTCP, 2049}
	steps := []struct {
		added, changed bool
	}{{true, true}, {true, false}, {true, false}, {false, false}, {false, false}, {false, true}, {false, false}}
	for i, s := range steps {
		if got := r.change(e, s.added); got != s.changed {
			t.Fatalf("step %d (added=%v): changed=%v, want %v", i, s.added, got, s.changed)
		}
	}
	if len(r) != 0 {
		t.Fatalf("refs left: %v", r)
	}
}

// diff's additions and deletions turn what was applied into what is
// wanted, and nothing else.
func TestDiffTurnsAppliedIntoWanted(t *testing.T) {
	want := refs{{6, 1}: 1, {6, 2}: 3, {17, 2}: 1}
	applied := map[Elem]struct{}{{6, 2}: {}, {17, 3}: {}, {6, 9}: {}}
	add, del := diff(want, applied)
	if fmt.Sprint(add) != "[tcp . 1 udp . 2]" || fmt.Sprint(del) != "[tcp . 9 udp . 3]" {
		t.Fatalf("add %v del %v", add, del)
	}
	if add, del := diff(refs{}, map[Elem]struct{}{}); add != nil || del != nil {
		t.Fatalf("nothing to do, got add %v del %v", add, del)
	}
}

// Churn: whatever the order of registrations coming and going through
// the registry's watch, the wanted elements are those of the rows left
// (less the portmapper's own port), and one diff applied brings any set
// there.
func TestChurnEndsWithWantedEqualToTheTable(t *testing.T) {
	reg := pmap.NewRegistry()
	s := &Syncer{ownPort: 111, want: refs{}, kick: make(chan struct{}, 1)}
	reg.Set(pmap.Mapping{Prog: 100000, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.111", Owner: pmap.OwnerSuperuser})
	reg.Watch(s.Change)
	rng := rand.New(rand.NewPCG(3, 4))
	netids := []string{"tcp", "udp", "tcp6", "udp6", "local"}
	hosts := []string{"0.0.0.0", "127.0.0.1", "::", "::1", "10.1.2.3"}
	for range 5000 {
		prog, vers := 400000+uint32(rng.IntN(4)), uint32(1+rng.IntN(2))
		netid := netids[rng.IntN(len(netids))]
		if rng.IntN(2) == 0 {
			port := 700 + rng.IntN(6)
			if rng.IntN(50) == 0 {
				port = 111
			}
			reg.Set(pmap.Mapping{Prog: prog, Vers: vers, Netid: netid, Owner: pmap.OwnerSuperuser,
				Addr: fmt.Sprintf("%s.%d.%d", hosts[rng.IntN(len(hosts))], port>>8, port&0xff)})
		} else {
			reg.Unset(prog, vers, netid, pmap.OwnerSuperuser)
		}
	}
	table := map[Elem]struct{}{}
	for _, m := range reg.Mappings() {
		if e, ok := ElemOf(&m); ok && e.Port != 111 {
			table[e] = struct{}{}
		}
	}
	wanted := slices.SortedFunc(maps.Keys(s.want), compareElem)
	if got, want := fmt.Sprint(wanted), fmt.Sprint(slices.SortedFunc(maps.Keys(table), compareElem)); got != want {
		t.Fatalf("wanted %s, the table opens %s", got, want)
	}
	applied := map[Elem]struct{}{{6, 111}: {}, {17, 9999}: {}, {6, 700}: {}}
	add, del := diff(s.want, applied)
	for _, e := range del {
		delete(applied, e)
	}
	for _, e := range add {
		applied[e] = struct{}{}
	}
	if !maps.Equal(applied, table) {
		t.Fatalf("after one diff the set is %v, want %v", applied, table)
	}
	if len(s.kick) != 1 {
		t.Fatal("changes did not wake the loop")
	}
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec("  inet filter\trpc_services ")
	if err != nil || s != (Spec{"inet", "filter", "rpc_services"}) || s.String() != "inet filter rpc_services" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "filter rpc_services", "inet filter rpc services", "arp filter s", "inet fil\x00ter s"} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) accepted", bad)
		}
	}
	if c := s.CreateCommands(); !strings.Contains(c, "nft add set inet filter rpc_services '{ type inet_proto . inet_service; }'") ||
		!strings.Contains(c, "meta l4proto . th dport @rpc_services accept") {
		t.Fatalf("commands:\n%s", c)
	}
}

// The watch function runs under the registry's write lock on every SET
// and UNSET: counting a registration in or out allocates nothing once the
// port has been seen.
func TestChangeDoesNotAllocate(t *testing.T) {
	s := &Syncer{ownPort: 111, want: refs{}, kick: make(chan struct{}, 1)}
	m := &pmap.Mapping{Prog: 100005, Vers: 3, Netid: "tcp6", Addr: "::.78.80"}
	s.Change(m, true)
	if n := testing.AllocsPerRun(1000, func() { s.Change(m, true); s.Change(m, false) }); n != 0 {
		t.Fatalf("%v allocations per SET/UNSET pair", n)
	}
}

// BenchmarkRegistrySetUnset is a SET and an UNSET with and without the
// set's watch function on the registry.
func BenchmarkRegistrySetUnset(b *testing.B) {
	for _, watched := range []bool{false, true} {
		b.Run(fmt.Sprintf("watched=%v", watched), func(b *testing.B) {
			reg := pmap.NewRegistry()
			if watched {
				s := &Syncer{ownPort: 111, want: refs{}, kick: make(chan struct{}, 1)}
				reg.Watch(s.Change)
			}
			m := pmap.Mapping{Prog: 100005, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.78.80", Owner: pmap.OwnerSuperuser}
			b.ReportAllocs()
			for b.Loop() {
				reg.Set(m)
				reg.Unset(m.Prog, m.Vers, m.Netid, pmap.OwnerSuperuser)
			}
		})
	}
}
