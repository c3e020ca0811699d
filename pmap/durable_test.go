package pmap

import (
	"errors"
	"testing"

	"github.com/portmapd/portmapd/rpc"
)

// With warm start, every change is answered only once Durable has seen the
// table's generation after it; a change that cannot be persisted is
// answered SYSTEM_ERR, and calls that change nothing do not wait at all.
func TestChangesWaitUntilDurable(t *testing.T) {
	var waited []uint64
	var fail error
	h := newHarness(t, func(s *Service) {
		s.Durable = func(gen uint64) error {
			waited = append(waited, gen)
			return fail
		}
	})
	m := Mapping{Prog: 200100, Vers: 1, Netid: "udp", Addr: "127.0.0.1.3.0", Owner: "superuser"}
	step := func(name string, call func() ([]byte, error), wantErr error, wantWaits int) {
		t.Helper()
		before := len(waited)
		_, err := call()
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", name, err, wantErr)
		}
		if got := len(waited) - before; got != wantWaits {
			t.Errorf("%s: %d waits for durability, want %d", name, got, wantWaits)
		}
		if wantWaits > 0 && waited[len(waited)-1] != h.svc.Registry.Generation() {
			t.Errorf("%s: waited for generation %d, table is at %d", name, waited[len(waited)-1], h.svc.Registry.Generation())
		}
	}
	set := func() ([]byte, error) {
		return h.call(localRoot, VersRPCB3, ProcSet, rpcbArg(m.Prog, m.Vers, m.Netid, m.Addr, ""))
	}
	unset := func() ([]byte, error) {
		return h.call(localRoot, VersRPCB3, ProcUnset, rpcbArg(m.Prog, m.Vers, m.Netid, "", ""))
	}
	pmapSet := func() ([]byte, error) { return h.call(loopbackPriv, VersPMAP, ProcSet, pmapArg(m.Prog, 2, 17, 800)) }
	pmapUnset := func() ([]byte, error) { return h.call(loopbackPriv, VersPMAP, ProcUnset, pmapArg(m.Prog, 2, 17, 0)) }

	other := func() ([]byte, error) {
		return h.call(localRoot, VersRPCB3, ProcSet, rpcbArg(m.Prog, m.Vers, m.Netid, "127.0.0.1.4.0", ""))
	}

	step("SET", set, nil, 1)
	// The same mapping again is TRUE, which must not be said before the
	// first one's write is done.
	step("SET again", set, nil, 1)
	step("SET of another address (FALSE)", other, nil, 0)
	step("UNSET", unset, nil, 1)
	step("UNSET again (nothing to remove)", unset, nil, 0)
	step("v2 SET", pmapSet, nil, 1)
	step("v2 UNSET", pmapUnset, nil, 1)

	fail = errors.New("disk full")
	step("SET that cannot be persisted", set, rpc.ErrSystem, 1)
	step("UNSET that cannot be persisted", unset, rpc.ErrSystem, 1)
}
