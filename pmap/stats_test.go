package pmap

import (
	"fmt"
	"sync"
	"testing"
)

// RPCBIND v4 GETSTAT (RFC 1833 rpcb_stat_byvers), as rpcbind keeps it.

// Every call to an existing procedure counts, whatever its outcome;
// calls to procedures a version lacks do not.
func TestGetstatCountsEveryCallPerProcedure(t *testing.T) {
	h := newHarness(t)
	h.call(loopbackUDP, VersPMAP, ProcNull, nil)
	h.call(loopbackUDP, VersPMAP, ProcGetport, pmapArg(progA, 1, ProtoUDP, 0))
	h.call(loopbackUDP, VersPMAP, ProcGetport, []byte{1}) // garbage
	h.call(remoteUDP, VersPMAP, ProcSet, pmapArg(progA, 1, ProtoUDP, 1))
	h.call(loopbackUDP, VersPMAP, 6, nil) // PROC_UNAVAIL
	h.call(loopbackUDP, VersRPCB3, ProcDump, nil)
	h.call(loopbackUDP, VersRPCB3, ProcDump, nil)
	h.call(loopbackUDP, VersRPCB3, ProcTaddr2uaddr, netbufArg(0, nil))
	h.call(loopbackUDP, VersRPCB3, 9, nil) // PROC_UNAVAIL
	h.call(loopbackUDP, VersRPCB4, ProcGettime, nil)
	h.call(loopbackUDP, VersRPCB4, ProcGetaddrlist, rpcbArg(progA, 1, "", "", ""))
	st := h.getstat(localRoot) // counts itself
	want := statByVers{}
	want[StatV2].procs[ProcNull] = 1
	want[StatV2].procs[ProcGetport] = 2
	want[StatV2].procs[ProcSet] = 1
	want[StatV3].procs[ProcDump] = 2
	want[StatV3].procs[ProcTaddr2uaddr] = 1
	want[StatV4].procs[ProcGettime] = 1
	want[StatV4].procs[ProcGetaddrlist] = 1
	want[StatV4].procs[ProcGetstat] = 1
	for v := range st {
		if st[v].procs != want[v].procs {
			t.Errorf("version %d procedures:\n got  %v\n want %v", v+2, st[v].procs, want[v].procs)
		}
	}
}

// rpcbind's rpcbs_set and rpcbs_unset count only successes.
func TestGetstatCountsSuccessfulSetsAndUnsets(t *testing.T) {
	h := newHarness(t)
	h.pmapSet(localRoot, progA, 1, ProtoUDP, 1) // TRUE
	h.pmapSet(localRoot, progA, 1, ProtoUDP, 2) // FALSE: taken
	h.pmapSet(localRoot, progA, 1, 99, 2)       // FALSE: prot
	h.pmapUnset(localRoot, progB, 1, 0, 0)      // TRUE: nothing there
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.1"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.1"}) // TRUE again
	h.set(localUser, VersRPCB4, Mapping{Prog: progA, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.0.1"})
	h.unset(localUID(1001), VersRPCB4, progA, 3, "")                       // FALSE: owner
	h.call(remoteUDP, VersRPCB4, ProcUnset, rpcbArg(progA, 3, "", "", "")) // refused
	h.unset(localUser, VersRPCB4, progA, 3, "")                            // TRUE
	st := h.getstat(localRoot)
	got := [3][2]int32{}
	for v := range st {
		got[v] = [2]int32{st[v].set, st[v].unset}
	}
	if want := [3][2]int32{{1, 1}, {2, 0}, {1, 1}}; got != want {
		t.Errorf("(sets, unsets) per version = %v, want %v", got, want)
	}
}

// GETPORT, GETADDR, GETVERSADDR and GETADDRLIST are listed by (prog, vers,
// netid) with their successes and failures, newest key first. The netid is
// the arrival transport's, or for GETPORT the netid of its protocol.
func TestGetstatListsLookupsNewestFirst(t *testing.T) {
	h := newHarness(t)
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "udp", Addr: "0.0.0.0.8.1"})
	h.set(localRoot, VersRPCB3, Mapping{Prog: progA, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.0.0"})
	h.getport(loopbackUDP, progA, 1, ProtoUDP)                // success
	h.getport(from("tcp", "127.0.0.1:1"), progA, 2, ProtoUDP) // success by fallback
	h.getport(loopbackUDP, progA, 1, ProtoTCP)                // port 0: failure
	h.getport(loopbackUDP, progA, 1, 99)                      // not listed
	h.getport(loopbackUDP, progA, 1, ProtoUDP)                // success
	h.getaddr(remoteUDP, VersRPCB3, progA, 1, "tcp", "")      // udp: success
	h.getaddr(remoteTCP, VersRPCB3, progB, 1, "udp", "")      // tcp: failure
	h.getaddr(remoteUDP, VersRPCB4, progA, 1, "", "")         // v4 GETADDR
	h.getversaddr(remoteUDP, progA, 2, "")                    // v4: failure
	h.getaddrlist(remoteUDP, progA, 1, "")                    // v4: success
	h.getaddrlist(localRoot, progA, 1, "")                    // v4 on local: failure
	st := h.getstat(localRoot)
	var want [3][]addrStatRow
	want[StatV2] = []addrStatRow{
		{progA, 1, 0, 1, "tcp"},
		{progA, 2, 1, 0, "udp"},
		{progA, 1, 2, 0, "udp"},
	}
	want[StatV3] = []addrStatRow{
		{progB, 1, 0, 1, "tcp"},
		{progA, 1, 1, 0, "udp"},
	}
	want[StatV4] = []addrStatRow{
		{progA, 1, 0, 1, "local"},
		{progA, 2, 0, 1, "udp"},
		{progA, 1, 2, 0, "udp"},
	}
	for v := range want {
		if fmt.Sprint(st[v].addrs) != fmt.Sprint(want[v]) {
			t.Errorf("version %d lookups:\n got  %v\n want %v", v+2, st[v].addrs, want[v])
		}
	}
}

// rpcbind adds an entry for every distinct key anyone asks about; here
// each list stops growing at MaxEntries, while known keys keep counting.
func TestGetstatListsAreCapped(t *testing.T) {
	h := newHarness(t)
	h.svc.Stats.MaxEntries = 3
	for prog := uint32(1); prog <= 5; prog++ {
		h.getport(loopbackUDP, prog, 1, ProtoUDP)
		h.call(loopbackUDP, VersRPCB4, ProcIndirect, rmtcallArg(prog+1000, 1, 0, nil))
	}
	h.getport(loopbackUDP, 1, 1, ProtoUDP)
	st := h.getstat(localRoot)
	wantAddrs := []addrStatRow{{3, 1, 0, 1, "udp"}, {2, 1, 0, 1, "udp"}, {1, 1, 0, 2, "udp"}}
	if fmt.Sprint(st[StatV2].addrs) != fmt.Sprint(wantAddrs) {
		t.Errorf("lookups:\n got  %v\n want %v", st[StatV2].addrs, wantAddrs)
	}
	if n := len(st[StatV4].rmts); n != 3 {
		t.Errorf("%d remote-call entries, want 3", n)
	}
	if got := st[StatV2].procs[ProcGetport]; got != 6 {
		t.Errorf("GETPORT counted %d times, want 6", got)
	}
}

// Counting is safe from many goroutines at once.
func TestStatsConcurrentCounting(t *testing.T) {
	s := NewStats()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				s.Proc(StatV4, ProcGetaddr)
				s.Lookup(StatV4, uint32(i%10), 1, "udp", i%2 == 0)
				s.RemoteCall(StatV4, uint32(i%10), 1, 0, "udp", true, i%3 == 0)
				s.AppendXDR(nil)
			}
		}()
	}
	wg.Wait()
	st, err := decodeStatByVers(s.AppendXDR(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := st[StatV4].procs[ProcGetaddr]; got != 8000 {
		t.Errorf("GETADDR counted %d times, want 8000", got)
	}
	var total int32
	for _, a := range st[StatV4].addrs {
		total += a.success + a.failure
	}
	if total != 8000 || len(st[StatV4].addrs) != 10 {
		t.Errorf("%d lookups in %d entries, want 8000 in 10", total, len(st[StatV4].addrs))
	}
}
