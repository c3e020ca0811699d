package pmap

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/portmapd/portmapd/rpc"
)

// One test per rule of RFC 1833 and of rpcbind 1.2.6 that clients rely
// on. Every call goes through the Mux with hand-built XDR arguments, as
// the rpc server would make it.

const (
	progA = 200001
	progB = 200002
)

// RFC 1833: "This procedure registers ... If the triple is already
// registered, the procedure fails." rpcbind answers TRUE when the same
// address is registered again, and FALSE for any other address.
func TestSetNeverOverwrites(t *testing.T) {
	for _, vers := range []uint32{VersRPCB3, VersRPCB4} {
		t.Run(fmt.Sprintf("v%d", vers), func(t *testing.T) {
			h := newHarness(t)
			first := Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"}
			steps := []struct {
				name string
				m    Mapping
				want bool
			}{
				{"first registration", first, true},
				{"same address again", first, true},
				{"other address for the same triple", Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.2"}, false},
				{"other owner string changes nothing", Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.2", Owner: "superuser"}, false},
				{"other netid is another triple", Mapping{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.2"}, true},
				{"other version is another triple", Mapping{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.3"}, true},
			}
			for _, s := range steps {
				if got := h.set(localRoot, vers, s.m); got != s.want {
					t.Errorf("%s: SET %+v = %v, want %v", s.name, s.m, got, s.want)
				}
			}
			want := []Mapping{
				{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1", Owner: OwnerSuperuser},
				{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.2", Owner: OwnerSuperuser},
				{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.3", Owner: OwnerSuperuser},
			}
			if d := diffMappings(h.registrations(), want); d != "" {
				t.Error(d)
			}
		})
	}
	t.Run("v2", func(t *testing.T) {
		h := newHarness(t)
		if !h.pmapSet(localRoot, progA, 1, ProtoUDP, 2049) {
			t.Fatal("first SET failed")
		}
		if !h.pmapSet(localRoot, progA, 1, ProtoUDP, 2049) {
			t.Error("SET of the same port again = FALSE, want TRUE")
		}
		if h.pmapSet(localRoot, progA, 1, ProtoUDP, 2050) {
			t.Error("SET of another port = TRUE, want FALSE")
		}
		if got := h.getport(loopbackUDP, progA, 1, ProtoUDP); got != 2049 {
			t.Errorf("GETPORT = %d after a refused SET, want 2049", got)
		}
	})
}

// rpcbind compares netids with strcasecmp when it looks for a taken
// triple, unsets or looks up; the PMAP v2 view, which rpcbind keeps as a
// list of its own filled with strcmp, sees only the lower-case netids.
func TestNetidsCompareCaseInsensitively(t *testing.T) {
	h := newHarness(t)
	if !h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"}) {
		t.Fatal("SET udp failed")
	}
	if h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "UDP", Addr: "0.0.0.0.8.2"}) {
		t.Error(`SET "UDP" with another address after "udp" = TRUE, want FALSE`)
	}
	if !h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "Udp", Addr: "0.0.0.0.8.1"}) {
		t.Error(`SET "Udp" with the same address after "udp" = FALSE, want TRUE`)
	}
	if n := len(h.registrations()); n != 1 {
		t.Errorf("%d registrations, want 1", n)
	}
	if !h.unset(localRoot, VersRPCB3, progA, 1, "UDP") {
		t.Fatal(`UNSET "UDP" failed`)
	}
	if n := len(h.registrations()); n != 0 {
		t.Errorf(`UNSET "UDP" left %d registrations of "udp"`, n)
	}

	// An upper-case registration is found by lookups on the transport...
	if !h.set(localRoot, VersRPCB3, Mapping{Prog: progB, Vers: 1, Netid: "UDP", Addr: "0.0.0.0.9.2"}) {
		t.Fatal(`SET "UDP" failed`)
	}
	if got := h.getaddr(remoteUDP, VersRPCB3, progB, 1, "", ""); got != "10.0.0.1.9.2" {
		t.Errorf(`GETADDR of a "UDP" entry from 10.0.0.2 = %q, want it merged like a "udp" one`, got)
	}
	// ...but not by PMAP v2, and PMAP v2 SET still conflicts with it.
	if got := h.getport(loopbackUDP, progB, 1, ProtoUDP); got != 0 {
		t.Errorf(`v2 GETPORT sees a "UDP" entry: port %d, want 0`, got)
	}
	for _, r := range h.pmapDump(loopbackUDP) {
		if r.prog == progB {
			t.Errorf(`v2 DUMP lists a "UDP" entry: %+v`, r)
		}
	}
	if h.pmapSet(localRoot, progB, 1, ProtoUDP, 1) {
		t.Error(`v2 SET udp over a "UDP" entry with another port = TRUE, want FALSE`)
	}
}

// RFC 1833 section 3: PMAP v2 names transports by IP protocol number.
// rpcbind maps 6 to "tcp" and 17 to "udp", refuses any other, and stores
// the universal address 0.0.0.0.p1.p2 of the port's low 16 bits.
func TestPMAPSetMapsProtocolToNetid(t *testing.T) {
	tests := []struct {
		name      string
		prot      uint32
		port      uint32
		ok        bool
		netid     string
		addr      string
		v2Visible uint32
	}{
		{"tcp", ProtoTCP, 2049, true, "tcp", "0.0.0.0.8.1", 2049},
		{"udp", ProtoUDP, 111, true, "udp", "0.0.0.0.0.111", 111},
		{"port 0", ProtoUDP, 0, true, "udp", "0.0.0.0.0.0", 0},
		{"port above 16 bits keeps the low 16", ProtoTCP, 0x12345, true, "tcp", "0.0.0.0.35.69", 0x2345},
		{"port with every bit set", ProtoUDP, 0xffffffff, true, "udp", "0.0.0.0.255.255", 0xffff},
		{"prot 0", 0, 2049, false, "", "", 0},
		{"prot ICMP", 1, 2049, false, "", "", 0},
		{"prot SCTP", 132, 2049, false, "", "", 0},
		{"prot with the low byte of UDP", 0x100 | ProtoUDP, 2049, false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if got := h.pmapSet(loopbackPriv, progA, 3, tt.prot, tt.port); got != tt.ok {
				t.Fatalf("SET prot %d port %#x = %v, want %v", tt.prot, tt.port, got, tt.ok)
			}
			regs := h.registrations()
			if !tt.ok {
				if len(regs) != 0 {
					t.Errorf("a refused SET registered %v", regs)
				}
				return
			}
			want := []Mapping{{Prog: progA, Vers: 3, Netid: tt.netid, Addr: tt.addr, Owner: OwnerSuperuser}}
			if d := diffMappings(regs, want); d != "" {
				t.Error(d)
			}
			if got := h.getport(loopbackUDP, progA, 3, tt.prot); got != tt.v2Visible {
				t.Errorf("GETPORT = %d, want %d", got, tt.v2Visible)
			}
		})
	}
}

// PMAP v2 and RPCBIND v3/v4 are views of one table: what one version
// registers on udp or tcp the other sees; v2 never sees udp6, tcp6 or
// local.
func TestVersionsShareOneTable(t *testing.T) {
	h := newHarness(t)
	for _, m := range []Mapping{
		{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"},
		{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.2"},
		{Prog: progA, Vers: 1, Netid: "tcp6", Addr: "::.8.3"},
		{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a.sock"},
		{Prog: progA, Vers: 2, Netid: "tcp", Addr: "1.2.3.4.1.44"},
	} {
		if !h.set(localRoot, VersRPCB4, m) {
			t.Fatalf("v4 SET %+v failed", m)
		}
	}
	if !h.pmapSet(localRoot, progB, 1, ProtoTCP, 700) {
		t.Fatal("v2 SET failed")
	}

	t.Run("v3 registration seen by v2 GETPORT", func(t *testing.T) {
		if got := h.getport(loopbackUDP, progA, 1, ProtoUDP); got != 0x801 {
			t.Errorf("GETPORT udp = %d, want %d", got, 0x801)
		}
		if got := h.getport(loopbackUDP, progA, 2, ProtoTCP); got != 300 {
			t.Errorf("GETPORT tcp = %d, want 300 (the port of 1.2.3.4.1.44)", got)
		}
	})
	t.Run("v2 registration seen by v3 and v4", func(t *testing.T) {
		if got := h.getaddr(from("tcp", "127.0.0.1:40000"), VersRPCB3, progB, 1, "tcp", ""); got != "127.0.0.1.2.188" {
			t.Errorf("v3 GETADDR = %q, want 127.0.0.1.2.188", got)
		}
		if got := h.getversaddr(from("tcp", "127.0.0.1:40000"), progB, 1, "tcp"); got != "127.0.0.1.2.188" {
			t.Errorf("v4 GETVERSADDR = %q, want 127.0.0.1.2.188", got)
		}
	})
	t.Run("v2 DUMP holds only udp and tcp", func(t *testing.T) {
		want := []pmapRow{
			{Program, 4, ProtoTCP, 111}, {Program, 3, ProtoTCP, 111}, {Program, 2, ProtoTCP, 111},
			{Program, 4, ProtoUDP, 111}, {Program, 3, ProtoUDP, 111}, {Program, 2, ProtoUDP, 111},
			{progA, 1, ProtoUDP, 0x801},
			{progA, 2, ProtoTCP, 300},
			{progB, 1, ProtoTCP, 700},
		}
		got := h.pmapDump(loopbackUDP)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("v2 DUMP:\n got  %v\n want %v", got, want)
		}
	})
	t.Run("v3 and v4 DUMP hold everything", func(t *testing.T) {
		for _, vers := range []uint32{VersRPCB3, VersRPCB4} {
			if n := len(h.dump(remoteUDP, vers)); n != 12+6 {
				t.Errorf("v%d DUMP has %d rows, want 18", vers, n)
			}
		}
	})
}

// rpcbind's v2 UNSET removes the "tcp" and "udp" entries of (prog, vers)
// whatever prot and port say; the program's IPv6 and local entries stay.
func TestPMAPUnsetRemovesBothIPv4Transports(t *testing.T) {
	tests := []struct {
		name       string
		prot, port uint32
	}{
		{"prot udp", ProtoUDP, 0},
		{"prot tcp", ProtoTCP, 0},
		{"prot and port of nothing", 99, 12345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, m := range []Mapping{
				{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"},
				{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1"},
				{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.1"},
				{Prog: progA, Vers: 1, Netid: "tcp6", Addr: "::.8.1"},
				{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a.sock"},
				{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.2"},
			} {
				h.set(localRoot, VersRPCB3, m)
			}
			if !h.pmapUnset(localRoot, progA, 1, tt.prot, tt.port) {
				t.Fatal("v2 UNSET = FALSE")
			}
			want := []Mapping{
				{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.1", Owner: OwnerSuperuser},
				{Prog: progA, Vers: 1, Netid: "tcp6", Addr: "::.8.1", Owner: OwnerSuperuser},
				{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a.sock", Owner: OwnerSuperuser},
				{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.2", Owner: OwnerSuperuser},
			}
			if d := diffMappings(h.registrations(), want); d != "" {
				t.Error(d)
			}
		})
	}
}

// RFC 1833: an empty r_netid in UNSET removes the mappings of (prog, vers)
// on every transport; a netid removes only that one.
func TestRPCBUnsetEmptyNetidRemovesEveryNetid(t *testing.T) {
	regs := []Mapping{
		{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"},
		{Prog: progA, Vers: 1, Netid: "tcp6", Addr: "::.8.1"},
		{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.2"},
		{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a.sock"},
		{Prog: progB, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.3"},
	}
	tests := []struct {
		netid string
		left  []int // indexes into regs
	}{
		{"", []int{2, 4}},
		{"udp", []int{1, 2, 3, 4}},
		{"tcp6", []int{0, 2, 3, 4}},
		{"local", []int{0, 1, 2, 4}},
		{"sctp", []int{0, 1, 2, 3, 4}},
	}
	for _, vers := range []uint32{VersRPCB3, VersRPCB4} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("v%d netid %q", vers, tt.netid), func(t *testing.T) {
				h := newHarness(t)
				for _, m := range regs {
					h.set(localRoot, vers, m)
				}
				if !h.unset(localRoot, vers, progA, 1, tt.netid) {
					t.Fatal("UNSET = FALSE")
				}
				var want []Mapping
				for _, i := range tt.left {
					m := regs[i]
					m.Owner = OwnerSuperuser
					want = append(want, m)
				}
				if d := diffMappings(h.registrations(), want); d != "" {
					t.Error(d)
				}
			})
		}
	}
}

// rpcbind's map_unset answers TRUE "when the entry was not there".
func TestUnsetOfNothingIsTrue(t *testing.T) {
	h := newHarness(t)
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"})
	gen := h.svc.Registry.Generation()
	if !h.pmapUnset(localRoot, progB, 1, ProtoUDP, 0) {
		t.Error("v2 UNSET of nothing = FALSE")
	}
	for _, vers := range []uint32{VersRPCB3, VersRPCB4} {
		if !h.unset(localRoot, vers, progB, 1, "") {
			t.Errorf("v%d UNSET of nothing on every netid = FALSE", vers)
		}
		if !h.unset(localRoot, vers, progA, 2, "udp") {
			t.Errorf("v%d UNSET of another version = FALSE", vers)
		}
		if !h.unset(localRoot, vers, progA, 1, "tcp") {
			t.Errorf("v%d UNSET of another netid = FALSE", vers)
		}
	}
	if h.svc.Registry.Generation() != gen {
		t.Error("UNSET of nothing changed the table's generation")
	}
	if n := len(h.registrations()); n != 1 {
		t.Errorf("%d registrations left, want 1", n)
	}
}

// rpcbind: "Unset only if superuser or the owner itself." The owner is the
// one rpcbind derived when the entry was set.
func TestUnsetRequiresOwnerOrSuperuser(t *testing.T) {
	tests := []struct {
		name    string
		setter  caller
		unsetBy caller
		want    bool
	}{
		{"owner uid", localUser, localUser, true},
		{"other uid", localUser, localUID(1001), false},
		{"root over the local socket", localUser, localRoot, true},
		{"loopback from a privileged port is superuser", localUser, loopbackPriv, true},
		{"loopback from another port is unknown", localUser, loopbackUDP, false},
		{"unknown removes what unknown set", loopbackUDP, from("tcp", "127.0.0.1:50000"), true},
		{"a uid cannot remove what unknown set", loopbackUDP, localUser, false},
		{"superuser's entry and a uid", localRoot, localUser, false},
		{"superuser's entry and unknown", localRoot, loopbackUDP6, false},
	}
	for _, tt := range tests {
		for _, v := range []uint32{VersPMAP, VersRPCB3, VersRPCB4} {
			t.Run(fmt.Sprintf("%s v%d", tt.name, v), func(t *testing.T) {
				h := newHarness(t)
				if !h.set(tt.setter, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"}) {
					t.Fatal("SET failed")
				}
				var got bool
				if v == VersPMAP {
					got = h.pmapUnset(tt.unsetBy, progA, 1, ProtoUDP, 0)
				} else {
					got = h.unset(tt.unsetBy, v, progA, 1, "udp")
				}
				// v2 UNSET ORs the answers for tcp and udp, and tcp, where
				// nothing matched, is TRUE: rpcbind says TRUE either way.
				if answer := tt.want || v == VersPMAP; got != answer {
					t.Errorf("UNSET by %s of an entry set by %s = %v, want %v", tt.unsetBy, tt.setter, got, answer)
				}
				left := len(h.registrations())
				if tt.want && left != 0 || !tt.want && left != 1 {
					t.Errorf("%d registrations left", left)
				}
			})
		}
	}
	t.Run("an empty netid stops at the first foreign entry", func(t *testing.T) {
		h := newHarness(t)
		h.set(localUser, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"})
		h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1"})
		h.set(localUser, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.1"})
		if h.unset(localUser, VersRPCB3, progA, 1, "") {
			t.Error("UNSET over a superuser's entry = TRUE")
		}
		// As rpcbind, the entries before the foreign one are gone.
		want := []Mapping{
			{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: OwnerSuperuser},
			{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.1", Owner: "1000"},
		}
		if d := diffMappings(h.registrations(), want); d != "" {
			t.Error(d)
		}
	})
	t.Run("v2 answers TRUE when either transport went", func(t *testing.T) {
		h := newHarness(t)
		h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1"})
		h.set(localUser, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"})
		if !h.pmapUnset(localUser, progA, 1, ProtoUDP, 0) {
			t.Error("v2 UNSET = FALSE though the caller's udp entry went")
		}
		want := []Mapping{{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: OwnerSuperuser}}
		if d := diffMappings(h.registrations(), want); d != "" {
			t.Error(d)
		}
	})
}

// The owner is derived from how the caller reached us, never taken from
// r_owner: the uid over the local socket, "superuser" for root and for
// the loopback address from a privileged port, "unknown" otherwise.
func TestOwnerIsDerivedFromCaller(t *testing.T) {
	tests := []struct {
		c    caller
		want string
	}{
		{localRoot, OwnerSuperuser},
		{localUser, "1000"},
		{localUID(65534), "65534"},
		{localUID(-1), OwnerUnknown},
		{loopbackPriv, OwnerSuperuser},
		{from("udp", "127.0.0.1:1023"), OwnerSuperuser},
		{from("udp", "127.0.0.1:1024"), OwnerUnknown},
		{from("tcp6", "[::1]:600"), OwnerSuperuser},
		{from("udp6", "[::ffff:127.0.0.1]:600"), OwnerSuperuser},
		{from("udp6", "[::1]:5000"), OwnerUnknown},
		{from("udp", "10.0.0.2:600"), OwnerUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.c.String(), func(t *testing.T) {
			h := newHarness(t, insecure)
			m := Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1", Owner: "superuser"}
			if !h.set(tt.c, VersRPCB4, m) {
				t.Fatal("v4 SET failed")
			}
			if !h.pmapSet(tt.c, progA, 2, ProtoTCP, 1) {
				t.Fatal("v2 SET failed")
			}
			for _, r := range h.registrations() {
				if r.Owner != tt.want {
					t.Errorf("owner of %d/%d/%s = %q, want %q", r.Prog, r.Vers, r.Netid, r.Owner, tt.want)
				}
			}
		})
	}
}

// SET and UNSET are accepted from the local socket, 127.0.0.1, ::1 and
// ::ffff:127.0.0.1 only (not the rest of 127/8), and from anyone when
// insecure. A refusal is AUTH_ERROR with AUTH_TOOWEAK and changes nothing.
func TestSetAndUnsetOnlyFromLocalCallers(t *testing.T) {
	tests := []struct {
		c    caller
		want bool
	}{
		{localRoot, true},
		{localUser, true},
		{from("udp", "127.0.0.1:40000"), true},
		{from("tcp", "127.0.0.1:700"), true},
		{from("udp6", "[::1]:40000"), true},
		{from("tcp6", "[::ffff:127.0.0.1]:40000"), true},
		{from("udp", "127.0.0.2:40000"), false},
		{from("udp", "127.255.255.254:600"), false},
		{from("udp", "10.0.0.1:40000"), false},
		{from("tcp", "10.0.0.2:600"), false},
		{from("udp6", "[::2]:40000"), false},
		{from("udp6", "[fe80::1%2]:40000"), false},
		{from("tcp6", "[::ffff:10.0.0.2]:40000"), false},
	}
	procs := []struct {
		name string
		vers uint32
		proc uint32
		args []byte
	}{
		{"v2 SET", VersPMAP, ProcSet, pmapArg(progB, 1, ProtoUDP, 2049)},
		{"v2 UNSET", VersPMAP, ProcUnset, pmapArg(progA, 1, ProtoUDP, 0)},
		{"v3 SET", VersRPCB3, ProcSet, rpcbArg(progB, 1, "udp", "0.0.0.0.8.1", "")},
		{"v3 UNSET", VersRPCB3, ProcUnset, rpcbArg(progA, 1, "", "", "")},
		{"v4 SET", VersRPCB4, ProcSet, rpcbArg(progB, 1, "udp", "0.0.0.0.8.1", "")},
		{"v4 UNSET", VersRPCB4, ProcUnset, rpcbArg(progA, 1, "udp", "", "")},
	}
	for _, tt := range tests {
		for _, p := range procs {
			for _, open := range []bool{false, true} {
				name := fmt.Sprintf("%s from %s", p.name, tt.c)
				if open {
					name += " insecure"
				}
				t.Run(name, func(t *testing.T) {
					var h *harness
					if open {
						h = newHarness(t, insecure)
					} else {
						h = newHarness(t)
					}
					h.svc.Registry.Set(Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.9.9", Owner: OwnerUnknown})
					before := h.dump(localRoot, VersRPCB3)
					res, err := h.call(tt.c, p.vers, p.proc, p.args)
					want := tt.want || open
					if !want {
						if err != rpc.ErrAuthTooWeak {
							t.Fatalf("got (%x, %v), want AUTH_TOOWEAK", res, err)
						}
						if d := diffMappings(h.dump(localRoot, VersRPCB3), before); d != "" {
							t.Errorf("a refused call changed the table: %s", d)
						}
						st := h.getstat(localRoot)
						if st[p.vers-2].set != 0 || st[p.vers-2].unset != 0 {
							t.Error("a refused call was counted as a SET or UNSET")
						}
						return
					}
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					// Whether UNSET removes the entry is up to its owner.
					if p.proc == ProcSet && string(res) != "\x00\x00\x00\x01" {
						t.Errorf("answered %x, want TRUE", res)
					}
					if len(res) != 4 || res[0]|res[1]|res[2] != 0 || res[3] > 1 {
						t.Errorf("answered %x, want a bool", res)
					}
				})
			}
		}
	}
}

// RFC 1833 GETADDR and rpcbind's find_service: when the version asked for
// is not registered on the transport, the most recently registered other
// version of the program answers, so that the client learns the port and
// gets PROG_MISMATCH from the service itself. GETVERSADDR is exact.
func TestLookupFallsBackToNewestOtherVersion(t *testing.T) {
	h := newHarness(t)
	for _, m := range []Mapping{
		{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.0.1"},
		{Prog: progA, Vers: 3, Netid: "udp", Addr: "0.0.0.0.0.3"},
		{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.2"},
		{Prog: progA, Vers: 9, Netid: "tcp", Addr: "0.0.0.0.0.9"},
	} {
		h.set(localRoot, VersRPCB3, m)
	}
	type want struct {
		port        uint32
		addr, exact string
	}
	check := func(step string, vers uint32, w want) {
		t.Helper()
		if got := h.getport(loopbackUDP, progA, vers, ProtoUDP); got != w.port {
			t.Errorf("%s: GETPORT(%d) = %d, want %d", step, vers, got, w.port)
		}
		for _, v := range []uint32{VersRPCB3, VersRPCB4} {
			if got := h.getaddr(unspecUDP, v, progA, vers, "udp", ""); got != w.addr {
				t.Errorf("%s: v%d GETADDR(%d) = %q, want %q", step, v, vers, got, w.addr)
			}
		}
		if got := h.getversaddr(unspecUDP, progA, vers, "udp"); got != w.exact {
			t.Errorf("%s: GETVERSADDR(%d) = %q, want %q", step, vers, got, w.exact)
		}
	}
	check("exact version", 3, want{3, "0.0.0.0.0.3", "0.0.0.0.0.3"})
	check("absent version", 7, want{2, "0.0.0.0.0.2", ""})
	h.unset(localRoot, VersRPCB3, progA, 2, "")
	check("after the newest went", 7, want{3, "0.0.0.0.0.3", ""})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.4"})
	check("after it came back", 7, want{4, "0.0.0.0.0.4", ""})
	h.unset(localRoot, VersRPCB3, progA, 1, "")
	h.unset(localRoot, VersRPCB3, progA, 2, "")
	h.unset(localRoot, VersRPCB3, progA, 3, "")
	check("nothing left on udp", 7, want{0, "", ""})
}

// RFC 1833: not found is port 0 for GETPORT and the empty string for
// GETADDR and GETVERSADDR.
func TestLookupNotFoundIsZeroOrEmpty(t *testing.T) {
	h := newHarness(t)
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.1"})
	if got := h.getport(loopbackUDP, progB, 1, ProtoUDP); got != 0 {
		t.Errorf("GETPORT of an unknown program = %d", got)
	}
	if got := h.getport(loopbackUDP, progA, 1, ProtoUDP); got != 0 {
		t.Errorf("GETPORT of a program registered only on udp6 = %d", got)
	}
	if got := h.getport(loopbackUDP, Program, 2, 99); got != 0 {
		t.Errorf("GETPORT with prot 99 = %d", got)
	}
	for _, v := range []uint32{VersRPCB3, VersRPCB4} {
		if got := h.getaddr(loopbackUDP, v, progB, 1, "udp", ""); got != "" {
			t.Errorf("v%d GETADDR of an unknown program = %q", v, got)
		}
	}
	if got := h.getversaddr(loopbackUDP, progB, 1, "udp"); got != "" {
		t.Errorf("GETVERSADDR of an unknown program = %q", got)
	}
}

// rpcbind looks GETADDR up on the netid of the transport the request
// arrived on (xp_netid), not on the r_netid it carries.
func TestGetaddrUsesArrivalNetid(t *testing.T) {
	h := newHarness(t)
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a.sock"})
	tests := []struct {
		c     caller
		netid string
		want  string
	}{
		{unspecUDP, "udp", "0.0.0.0.8.1"},
		{unspecUDP, "tcp", "0.0.0.0.8.1"},
		{unspecUDP, "", "0.0.0.0.8.1"},
		{unspecUDP, "local", "0.0.0.0.8.1"},
		{from("tcp", "0.0.0.0:1"), "udp", ""},
		{from("udp6", "[::]:1"), "udp", ""},
		{localRoot, "udp", "/run/a.sock"},
		{localRoot, "", "/run/a.sock"},
	}
	for _, tt := range tests {
		for _, v := range []uint32{VersRPCB3, VersRPCB4} {
			if got := h.getaddr(tt.c, v, progA, 1, tt.netid, ""); got != tt.want {
				t.Errorf("v%d GETADDR r_netid %q over %s = %q, want %q", v, tt.netid, tt.c, got, tt.want)
			}
		}
		if got := h.getversaddr(tt.c, progA, 1, tt.netid); got != tt.want {
			t.Errorf("GETVERSADDR r_netid %q over %s = %q, want %q", tt.netid, tt.c, got, tt.want)
		}
	}
}

// rpcbind's addrmerge: a wildcard registration is answered with the
// address of the interface that faces the caller (or the r_addr hint) and
// the registered port; a caller of unspecified address, a local caller and
// a failed merge get the registered address as it is.
func TestGetaddrMergesAddressForCaller(t *testing.T) {
	h := newHarness(t)
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.2"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.3"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a.sock"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progB, Vers: 1, Netid: "udp", Addr: "not-a-uaddr"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progB, Vers: 1, Netid: "tcp", Addr: "192.0.2.7.0.80"})
	tests := []struct {
		name string
		c    caller
		prog uint32
		hint string
		want string
	}{
		{"caller on eth0's subnet", remoteUDP, progA, "", "10.0.0.1.8.1"},
		{"caller on loopback", loopbackUDP, progA, "", "127.0.0.1.8.1"},
		{"caller on no subnet of ours gets the non-loopback address", from("udp", "192.168.7.9:40000"), progA, "", "10.0.0.1.8.1"},
		{"caller of unspecified address", unspecUDP, progA, "", "0.0.0.0.8.1"},
		{"over tcp", remoteTCP, progA, "", "10.0.0.1.8.2"},
		{"hint names the loopback address", remoteUDP, progA, "127.0.0.1.0.111", "127.0.0.1.8.1"},
		{"hint names eth0's subnet", loopbackUDP, progA, "10.0.0.77.0.111", "10.0.0.1.8.1"},
		{"unparsable hint gives the registered address", remoteUDP, progA, "garbage", "0.0.0.0.8.1"},
		{"IPv6 hint over IPv4", remoteUDP, progA, "::1.0.111", "0.0.0.0.8.1"},
		{"IPv6 loopback caller", loopbackUDP6, progA, "", "::1.8.3"},
		{"IPv6 caller with only loopback to offer", remoteUDP6, progA, "", "::1.8.3"},
		{"IPv6 caller of unspecified address", from("udp6", "[::]:1"), progA, "", "::.8.3"},
		{"local socket", localRoot, progA, "", "/run/a.sock"},
		{"registered address that does not parse", remoteUDP, progB, "", "not-a-uaddr"},
		{"specific registered address keeps its port only", remoteTCP, progB, "", "10.0.0.1.0.80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []uint32{VersRPCB3, VersRPCB4} {
				if got := h.getaddr(tt.c, v, tt.prog, 1, "", tt.hint); got != tt.want {
					t.Errorf("v%d GETADDR = %q, want %q", v, got, tt.want)
				}
			}
		})
	}
}

// rpcbind lists its own rows first (versions 4, 3 and on udp and tcp 2,
// per transport in the order it opened them: tcp6, udp6, tcp, udp, local),
// then the registrations in the order they were made; a mapping unset and
// set again goes to the end.
func TestDumpListsOwnRowsThenRegistrationsInOrder(t *testing.T) {
	h := newHarness(t)
	var want []Mapping
	for _, r := range ownRows {
		vers := []uint32{4, 3}
		if r.netid == "udp" || r.netid == "tcp" {
			vers = append(vers, 2)
		}
		for _, v := range vers {
			want = append(want, Mapping{Prog: Program, Vers: v, Netid: r.netid, Addr: r.addr, Owner: OwnerSuperuser})
		}
	}
	regs := []Mapping{
		{Prog: progB, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: OwnerSuperuser},
		{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.2", Owner: OwnerSuperuser},
		{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.3", Owner: OwnerSuperuser},
		{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a", Owner: OwnerSuperuser},
	}
	for _, m := range regs {
		h.set(localRoot, VersRPCB4, m)
	}
	h.unset(localRoot, VersRPCB4, progA, 2, "udp")
	h.set(localRoot, VersRPCB4, regs[1])
	want = append(want, regs[0], regs[2], regs[3], regs[1])
	for _, v := range []uint32{VersRPCB3, VersRPCB4} {
		if d := diffMappings(h.dump(remoteUDP, v), want); d != "" {
			t.Errorf("v%d DUMP: %s", v, d)
		}
	}
	var wantV2 []pmapRow
	for _, m := range want {
		if p := NetidProto(m.Netid); p != 0 {
			port, _ := UaddrPort(m.Addr)
			wantV2 = append(wantV2, pmapRow{m.Prog, m.Vers, p, port})
		}
	}
	if got := h.pmapDump(remoteUDP); fmt.Sprint(got) != fmt.Sprint(wantV2) {
		t.Errorf("v2 DUMP:\n got  %v\n want %v", got, wantV2)
	}
}

// RFC 1833 GETADDRLIST: every mapping of exactly (prog, vers) whose
// transport is of the arrival transport's protocol family, as rpcb_entry
// with the netconfig fields and the address merged for the caller.
func TestGetaddrlistReturnsEntriesOfArrivalFamily(t *testing.T) {
	h := newHarness(t)
	for _, m := range []Mapping{
		{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"},
		{Prog: progA, Vers: 1, Netid: "tcp6", Addr: "::.8.2"},
		{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.3"},
		{Prog: progA, Vers: 1, Netid: "udp6", Addr: "::.8.4"},
		{Prog: progA, Vers: 1, Netid: "local", Addr: "/run/a.sock"},
		{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.8.5"},
	} {
		h.set(localRoot, VersRPCB3, m)
	}
	tests := []struct {
		name string
		c    caller
		prog uint32
		vers uint32
		hint string
		want []rpcbEntry
	}{
		{"IPv4 caller on eth0's subnet", remoteUDP, progA, 1, "", []rpcbEntry{
			{"10.0.0.1.8.1", "udp", 1, "inet", "udp"},
			{"10.0.0.1.8.3", "tcp", 3, "inet", "tcp"},
		}},
		{"IPv4 over tcp from loopback", from("tcp", "127.0.0.1:1"), progA, 1, "", []rpcbEntry{
			{"127.0.0.1.8.1", "udp", 1, "inet", "udp"},
			{"127.0.0.1.8.3", "tcp", 3, "inet", "tcp"},
		}},
		{"hint", remoteUDP, progA, 1, "127.0.0.1.0.111", []rpcbEntry{
			{"127.0.0.1.8.1", "udp", 1, "inet", "udp"},
			{"127.0.0.1.8.3", "tcp", 3, "inet", "tcp"},
		}},
		{"unparsable hint fails every merge", remoteUDP, progA, 1, "garbage", nil},
		{"IPv6", loopbackUDP6, progA, 1, "", []rpcbEntry{
			{"::1.8.2", "tcp6", 3, "inet6", "tcp"},
			{"::1.8.4", "udp6", 1, "inet6", "udp"},
		}},
		{"exact version only", remoteUDP, progA, 2, "", []rpcbEntry{
			{"10.0.0.1.8.5", "udp", 1, "inet", "udp"},
		}},
		{"no fallback to another version", remoteUDP, progA, 3, "", nil},
		{"unknown program", remoteUDP, progB, 1, "", nil},
		// rpcbind cannot name a caller on the local socket unless it bound
		// its socket to a path, and every merge fails.
		{"local socket", localRoot, progA, 1, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.getaddrlist(tt.c, tt.prog, tt.vers, tt.hint)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("GETADDRLIST:\n got  %v\n want %v", got, tt.want)
			}
		})
	}
	if sem, proto := semantics("local"); sem != 3 || proto != "-" {
		t.Errorf(`netconfig of "local" = (%d, %q), want (3, "-") as /etc/netconfig says`, sem, proto)
	}
}

// GETTIME returns the host's time in seconds since the epoch.
func TestGettimeReturnsSecondsSinceEpoch(t *testing.T) {
	h := newHarness(t)
	for _, v := range []uint32{VersRPCB3, VersRPCB4} {
		res := h.ok(remoteUDP, v, ProcGettime, nil)
		if want := uint32(testNow.Unix()); len(res) != 4 || beUint32(res) != want {
			t.Errorf("v%d GETTIME = %x, want %d", v, res, want)
		}
	}
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// RFC 5531: arguments that do not decode are GARBAGE_ARGS. Every
// procedure that takes arguments is tried with every truncation of valid
// arguments and with strings longer than rpcbind's 9000-byte limit; and
// with non-zero padding, which is served as zero padding is.
func TestTruncatedArgumentsAreGarbage(t *testing.T) {
	long := make([]byte, MaxWireString+1)
	for i := range long {
		long[i] = 'a'
	}
	tooLong := rpcbArg(progA, 1, string(long), "", "")
	procs := []struct {
		name       string
		vers, proc uint32
		args       []byte
		pad        int    // index of a padding byte in args, or -1
		whole      []byte // a variant of args that must be garbage as it is
	}{
		{"v2 SET", VersPMAP, ProcSet, pmapArg(progA, 1, ProtoUDP, 1), -1, nil},
		{"v2 UNSET", VersPMAP, ProcUnset, pmapArg(progA, 1, ProtoUDP, 1), -1, nil},
		{"v2 GETPORT", VersPMAP, ProcGetport, pmapArg(progA, 1, ProtoUDP, 1), -1, nil},
		{"v3 SET", VersRPCB3, ProcSet, rpcbArg(progA, 1, "udp", "0.0.0.0.8.1", "x"), 15, tooLong},
		{"v3 UNSET", VersRPCB3, ProcUnset, rpcbArg(progA, 1, "udp", "", "x"), 15, tooLong},
		{"v3 GETADDR", VersRPCB3, ProcGetaddr, rpcbArg(progA, 1, "udp", "", "x"), 15, tooLong},
		{"v3 UADDR2TADDR", VersRPCB3, ProcUaddr2taddr, xdrString("0.0.0.0.8.1"), 15, xdrString(string(long))},
		{"v3 TADDR2UADDR", VersRPCB3, ProcTaddr2uaddr, netbufArg(16, make([]byte, 16)), -1, netbufArg(MaxWireString+1, nil)},
		{"v4 SET", VersRPCB4, ProcSet, rpcbArg(progA, 1, "udp", "0.0.0.0.8.1", "x"), 15, tooLong},
		{"v4 UNSET", VersRPCB4, ProcUnset, rpcbArg(progA, 1, "udp", "", "x"), 15, tooLong},
		{"v4 GETADDR", VersRPCB4, ProcGetaddr, rpcbArg(progA, 1, "udp", "", "x"), 15, tooLong},
		{"v4 UADDR2TADDR", VersRPCB4, ProcUaddr2taddr, xdrString("0.0.0.0.8.1"), 15, xdrString(string(long))},
		{"v4 TADDR2UADDR", VersRPCB4, ProcTaddr2uaddr, netbufArg(16, make([]byte, 16)), -1, netbufArg(4, make([]byte, 16))},
		{"v4 GETVERSADDR", VersRPCB4, ProcGetversaddr, rpcbArg(progA, 1, "udp", "", "x"), 15, tooLong},
		{"v4 INDIRECT", VersRPCB4, ProcIndirect, rmtcallArg(progA, 1, 0, []byte{1, 2, 3}), 19, nil},
		{"v4 GETADDRLIST", VersRPCB4, ProcGetaddrlist, rpcbArg(progA, 1, "udp", "", "x"), 15, tooLong},
	}
	for _, p := range procs {
		t.Run(p.name, func(t *testing.T) {
			h := newHarness(t)
			for _, c := range []caller{loopbackUDP, localRoot} {
				if p.proc == ProcIndirect && c.netid == rpc.NetidLocal {
					continue // no reply at all over a stream
				}
				for n := 0; n < len(p.args); n++ {
					if _, err := h.call(c, p.vers, p.proc, p.args[:n]); err != rpc.ErrGarbageArgs {
						t.Errorf("%s: %d of %d bytes: %v, want GARBAGE_ARGS", c, n, len(p.args), err)
					}
				}
				if p.whole != nil {
					if _, err := h.call(c, p.vers, p.proc, p.whole); err != rpc.ErrGarbageArgs {
						t.Errorf("%s: over-long field: %v, want GARBAGE_ARGS", c, err)
					}
				}
			}
			if p.pad >= 0 {
				// libtirpc reads padding without looking at it: the call
				// is served as with zero padding, and noted for the count.
				bad := append([]byte(nil), p.args...)
				bad[p.pad] = 1
				want, wantErr := newHarness(t).call(loopbackUDP, p.vers, p.proc, p.args)
				h := newHarness(t)
				got, err := h.call(loopbackUDP, p.vers, p.proc, bad)
				if err != wantErr || !bytes.Equal(got, want) {
					t.Errorf("non-zero padding: %x %v, want %x %v as with zero padding", got, err, want, wantErr)
				}
				if !h.padded {
					t.Error("non-zero padding not noted")
				}
				if h.call(loopbackUDP, p.vers, p.proc, p.args); h.padded {
					t.Error("zero padding noted as non-zero")
				}
			}
		})
	}
	t.Run("procedures without arguments ignore trailing bytes", func(t *testing.T) {
		h := newHarness(t)
		for _, p := range []struct{ vers, proc uint32 }{
			{VersPMAP, ProcNull}, {VersPMAP, ProcDump},
			{VersRPCB3, ProcNull}, {VersRPCB3, ProcDump}, {VersRPCB3, ProcGettime},
			{VersRPCB4, ProcNull}, {VersRPCB4, ProcDump}, {VersRPCB4, ProcGettime}, {VersRPCB4, ProcGetstat},
		} {
			if _, err := h.call(loopbackUDP, p.vers, p.proc, []byte{1, 2, 3}); err != nil {
				t.Errorf("v%d proc %d with 3 stray bytes: %v", p.vers, p.proc, err)
			}
		}
	})
	t.Run("CALLIT and BCAST stay silent", func(t *testing.T) {
		h := newHarness(t)
		for _, p := range []struct{ vers, proc uint32 }{{VersPMAP, ProcCallit}, {VersRPCB3, ProcCallit}, {VersRPCB4, ProcCallit}} {
			if _, err := h.call(loopbackUDP, p.vers, p.proc, []byte{0, 0, 0}); err != rpc.ErrNoReply {
				t.Errorf("v%d CALLIT with garbage: %v, want no reply", p.vers, err)
			}
		}
	})
}

func xdrString(s string) []byte {
	b := make([]byte, 0, 4+len(s)+3)
	b = append(b, byte(len(s)>>24), byte(len(s)>>16), byte(len(s)>>8), byte(len(s)))
	b = append(b, s...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// rpcbind reads every string it decodes as a C string: bytes after a NUL
// are not part of it.
func TestStringsEndAtNUL(t *testing.T) {
	h := newHarness(t)
	if !h.set(localRoot, VersRPCB4, Mapping{Prog: progA, Vers: 1, Netid: "tcp\x00junk", Addr: "0.0.0.0.1.2\x00x", Owner: "o"}) {
		t.Fatal("SET failed")
	}
	want := []Mapping{{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.1.2", Owner: OwnerSuperuser}}
	if d := diffMappings(h.registrations(), want); d != "" {
		t.Error(d)
	}
	if got := h.getport(loopbackUDP, progA, 1, ProtoTCP); got != 0x102 {
		t.Errorf("GETPORT = %#x, want 0x102", got)
	}
	if got := h.getaddr(remoteTCP, VersRPCB3, progA, 1, "", "\x00127.0.0.1.0.111"); got != "10.0.0.1.1.2" {
		t.Errorf("GETADDR with a hint that starts with NUL = %q, want no hint used", got)
	}
	if !h.unset(localRoot, VersRPCB4, progA, 1, "tcp\x00more") {
		t.Error("UNSET failed")
	}
	if n := len(h.registrations()); n != 0 {
		t.Errorf("%d registrations left", n)
	}
}

// The Mux answers what the Service does not register: PROG_MISMATCH 2..4
// for another version, PROC_UNAVAIL beyond each version's last procedure.
func TestProceduresOfEachVersion(t *testing.T) {
	h := newHarness(t)
	_, err := h.call(loopbackUDP, 5, ProcNull, nil)
	var pm *rpc.ProgMismatchError
	if !errors.As(err, &pm) || pm.Low != VersPMAP || pm.High != VersRPCB4 {
		t.Errorf("version 5: %v, want PROG_MISMATCH 2..4", err)
	}
	for _, tt := range []struct{ vers, last uint32 }{
		{VersPMAP, ProcCallit}, {VersRPCB3, ProcTaddr2uaddr}, {VersRPCB4, ProcGetstat},
	} {
		if _, err := h.call(loopbackUDP, tt.vers, tt.last+1, nil); err != rpc.ErrProcUnavail {
			t.Errorf("v%d proc %d: %v, want PROC_UNAVAIL", tt.vers, tt.last+1, err)
		}
		if _, err := h.call(loopbackUDP, tt.vers, ^uint32(0), nil); err != rpc.ErrProcUnavail {
			t.Errorf("v%d proc 2^32-1: %v, want PROC_UNAVAIL", tt.vers, err)
		}
		if res, err := h.call(loopbackUDP, tt.vers, ProcNull, nil); err != nil || len(res) != 0 {
			t.Errorf("v%d NULL = (%x, %v), want an empty result", tt.vers, res, err)
		}
	}
}
