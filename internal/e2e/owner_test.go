package e2e

import (
	"slices"
	"testing"
)

// TestRegistrationOwnerDifferential checks which owner a registration gets
// and who may remove it, as v3 DUMP and rpcinfo show them.
//
// What Debian's rpcbind does (the Expect lines record it):
//   - The owner is derived, never taken from r_owner: over UDP/TCP from
//     127.0.0.1 or ::1 it is "superuser" when the source port is below 1024
//     and "unknown" otherwise (SET is accepted either way); over the local
//     socket it is the peer's uid from SO_PEERCRED ("superuser" for 0).
//   - UNSET removes an entry only for "superuser" or the entry's owner, and
//     answers FALSE when an entry matched but the caller may not remove it.
//     "unknown" callers may remove "unknown" entries.
func TestRegistrationOwnerDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), ownerSteps())
}

func ownerSteps() []Step {
	own := []string{
		"  100000 4 tcp6 ::.0.111 superuser",
		"  100000 3 tcp6 ::.0.111 superuser",
		"  100000 4 udp6 ::.0.111 superuser",
		"  100000 3 udp6 ::.0.111 superuser",
		"  100000 4 tcp 0.0.0.0.0.111 superuser",
		"  100000 3 tcp 0.0.0.0.0.111 superuser",
		"  100000 2 tcp 0.0.0.0.0.111 superuser",
		"  100000 4 udp 0.0.0.0.0.111 superuser",
		"  100000 3 udp 0.0.0.0.0.111 superuser",
		"  100000 2 udp 0.0.0.0.0.111 superuser",
		"  100000 4 local /run/rpcbind.sock superuser",
		"  100000 3 local /run/rpcbind.sock superuser",
	}
	kept := []string{
		"  400010 1 udp 0.0.0.0.16.4 superuser",
		"  400011 1 udp 0.0.0.0.16.14 unknown",
		"  400012 1 tcp 0.0.0.0.16.24 unknown",
		"  400013 1 tcp 0.0.0.0.16.34 superuser",
	}
	return []Step{
		// clnt_create run as root binds a reserved port: "superuser".
		Client("SET over udp/tcp: the source port decides the owner",
			"v2 udp set 400010 1 17 4100", "v2 udp:unpriv set 400011 1 17 4110",
			"v2 tcp:unpriv set 400012 1 6 4120", "v2 tcp:priv set 400013 1 6 4130",
			"v3 udp:unpriv set 400014 1 udp 0.0.0.0.16.4 someone", "v3 udp:priv set 400015 1 udp 0.0.0.0.16.5 someone",
			"v4 udp6:unpriv set 400016 1 udp6 ::.16.6", "v4 tcp6:priv set 400016 1 tcp6 ::.16.6"),
		Client("SET over the local socket as root", "v3 local set 400017 1 tcp 0.0.0.0.16.7 someone"),
		ClientOpts("SET over the local socket as uid 1000", []string{"-u", "1000"},
			"v3 local set 400018 1 tcp 0.0.0.0.16.8", "lib rpcb_set 400019 1 udp 0.0.0.0.16.9",
			"lib pmap_set 400020 1 17 4200"),
		Client("v3 DUMP shows the owners", "v3 udp dump").Expect(slices.Concat(
			[]string{"v3 udp dump: 24 rows"}, own, kept, []string{
				"  400014 1 udp 0.0.0.0.16.4 unknown",
				"  400015 1 udp 0.0.0.0.16.5 superuser",
				"  400016 1 udp6 ::.16.6 unknown",
				"  400016 1 tcp6 ::.16.6 superuser",
				"  400017 1 tcp 0.0.0.0.16.7 superuser",
				"  400018 1 tcp 0.0.0.0.16.8 1000",
				"  400019 1 udp 0.0.0.0.16.9 1000",
				"  400020 1 udp 0.0.0.0.16.104 1000",
			})...),
		Command("rpcinfo (local, v3 DUMP)", "rpcinfo"),
		Command("rpcinfo 127.0.0.1", "rpcinfo", "127.0.0.1"),
		Command("rpcinfo -s 127.0.0.1", "rpcinfo", "-s", "127.0.0.1"),
		ClientOpts("UNSET as uid 1000 of entries it does not own is FALSE", []string{"-u", "1000"},
			"v3 local unset 400010 1 -", "v3 local unset 400011 1 -").Expect(
			"v3 local unset 400010 1 -: false",
			"v3 local unset 400011 1 -: false",
		),
		ClientOpts("UNSET as uid 1001 of uid 1000's entry is FALSE", []string{"-u", "1001"},
			"v3 local unset 400018 1 -").Expect(
			"v3 local unset 400018 1 -: false",
		),
		ClientOpts("UNSET as uid 1000 of its own entries", []string{"-u", "1000"},
			"v3 local unset 400018 1 -", "lib rpcb_unset 400019 1 -", "lib pmap_unset 400020 1").Expect(
			"v3 local unset 400018 1 -: true",
			"lib rpcb_unset 400019 1 -: true",
			"lib pmap_unset 400020 1: true",
		),
		Client("UNSET from an unprivileged port removes only unknown-owner entries",
			"v3 udp:unpriv unset 400014 1 udp", "v3 udp:unpriv unset 400015 1 -",
			"v4 tcp6:unpriv unset 400016 1 -").Expect(
			"v3 udp:unpriv unset 400014 1 udp: true",
			"v3 udp:unpriv unset 400015 1 -: false",
			"v4 tcp6:unpriv unset 400016 1 -: false",
		),
		Client("UNSET from a privileged port removes anything",
			"v3 udp:priv unset 400015 1 -", "v4 udp6:priv unset 400016 1 -").Expect(
			"v3 udp:priv unset 400015 1 -: true",
			"v4 udp6:priv unset 400016 1 -: true",
		),
		Client("what is left", "v3 udp dump").Expect(slices.Concat(
			[]string{"v3 udp dump: 17 rows"}, own, kept,
			[]string{"  400017 1 tcp 0.0.0.0.16.7 superuser"})...),
	}
}
