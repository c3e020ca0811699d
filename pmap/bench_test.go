package pmap

import (
	"fmt"
	"testing"

	"github.com/portmapd/portmapd/rpc"
)

// Lookups cost the same however large the table is, and allocate nothing
// on their way through the Mux. Compare the sub-benchmarks' ns/op; the
// allocs/op column must read 0 for GETPORT and GETADDR:
//
//	go test -run '^$' -bench . -benchmem ./pmap/

// benchTable is a harness with n registrations of distinct programs on udp
// and tcp, as many daemons' worth of services as n says.
func benchTable(b *testing.B, n int) *harness {
	b.Helper()
	h := newHarness(b)
	for i := 0; i < n; i++ {
		netid := "udp"
		if i%2 == 1 {
			netid = "tcp"
		}
		prog := uint32(300000 + i/2)
		port := uint32(1024 + i%60000)
		addr := fmt.Sprintf("0.0.0.0.%d.%d", port>>8, port&255)
		if !h.svc.Registry.Set(Mapping{Prog: prog, Vers: 1, Netid: netid, Addr: addr, Owner: OwnerSuperuser}) {
			b.Fatal("Set failed")
		}
	}
	return h
}

// benchCall serves one prepared call per iteration into a reused buffer.
func benchCall(b *testing.B, h *harness, c caller, vers, proc uint32, args [][]byte) {
	b.Helper()
	call := rpc.Call{
		CallHeader: rpc.CallHeader{RPCVers: rpc.Version, Prog: Program, Vers: vers, Proc: proc},
		Netid:      c.netid,
		Remote:     c.remote,
	}
	call.SetUID(c.uid)
	buf := make([]byte, 0, 64<<10)
	w := new(rpc.Reply)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		call.XID = uint32(i)
		call.Args = args[i%len(args)]
		*w = rpc.Reply{Body: rpc.AppendSuccess(buf[:0], call.XID)}
		err := h.mux.ServeRPC(w, &call)
		if err != nil || len(w.Body)+len(w.Tail) <= 24 {
			b.Fatalf("(%x, %v)", w.Body, err)
		}
		buf = w.Body[:0]
	}
}

var benchSizes = []int{10, 100_000}

// lookupKeys spreads the lookups over the table: programs registered
// first, last and in between.
func lookupKeys(n int, arg func(prog uint32) []byte) [][]byte {
	var out [][]byte
	for _, i := range []int{0, n / 4, n / 2, n - 1} {
		out = append(out, arg(uint32(300000+i/2)))
	}
	return out
}

func BenchmarkGetport(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			h := benchTable(b, n)
			args := lookupKeys(n, func(prog uint32) []byte { return pmapArg(prog, 1, ProtoUDP, 0) })
			benchCall(b, h, loopbackUDP, VersPMAP, ProcGetport, args)
		})
	}
}

func BenchmarkGetaddr(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			h := benchTable(b, n)
			// Asked for version 2, which only the fallback answers, from a
			// remote caller whose answer has to be merged.
			args := lookupKeys(n, func(prog uint32) []byte { return rpcbArg(prog, 2, "udp", "", "") })
			benchCall(b, h, remoteUDP, VersRPCB4, ProcGetaddr, args)
		})
	}
}

func BenchmarkGetaddrWithHint(b *testing.B) {
	h := benchTable(b, 10)
	args := lookupKeys(10, func(prog uint32) []byte { return rpcbArg(prog, 1, "udp", "10.0.0.1.0.111", "") })
	benchCall(b, h, remoteUDP, VersRPCB3, ProcGetaddr, args)
}

func BenchmarkDump(b *testing.B) {
	h := benchTable(b, 10_000)
	benchCall(b, h, remoteTCP, VersRPCB3, ProcDump, [][]byte{nil})
}

// BenchmarkLoadTable is a warm start's insertion of 10,000 saved entries:
// one Set each, or one SetAll.
func BenchmarkLoadTable(b *testing.B) {
	ms := make([]Mapping, 10000)
	for i := range ms {
		ms[i] = Mapping{Prog: 200000 + uint32(i), Vers: 1, Netid: "tcp6", Addr: "::1.3.232", Owner: OwnerSuperuser}
	}
	b.Run("Set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := NewRegistry()
			for _, m := range ms {
				r.Set(m)
			}
		}
	})
	b.Run("SetAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n := NewRegistry().SetAll(ms); n != len(ms) {
				b.Fatalf("set %d", n)
			}
		}
	})
}
