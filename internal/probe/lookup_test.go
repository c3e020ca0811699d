package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// portmapV2 is a portmapper of PMAP version 2 only, as portmap 5 and 6
// are, on a loopback UDP port that also serves every other program's
// NULL: RPCBIND versions 3 and 4 get PROG_MISMATCH(2, 2), GETPORT the
// port itself.
func portmapV2(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	port := uint32(pc.LocalAddr().(*net.UDPAddr).Port)
	go func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			h, err := rpc.ParseCall(xdr.NewDecoder(buf[:n]))
			if err != nil {
				continue
			}
			var out []byte
			switch {
			case h.Prog == pmap.Program && h.Vers != pmap.VersPMAP:
				out = rpc.AppendProgMismatch(nil, h.XID, pmap.VersPMAP, pmap.VersPMAP)
			case h.Prog == pmap.Program && h.Proc == pmap.ProcGetport:
				out = xdr.AppendUint32(rpc.AppendSuccess(nil, h.XID), port)
			default:
				out = rpc.AppendSuccess(nil, h.XID)
			}
			pc.WriteToUDPAddrPort(out, from)
		}
	}()
	return int(port)
}

// TestLookupFallsBackToGetport checks that the registration is found as
// libtirpc's rpcb_getaddr finds it on a portmapper without RPCBIND:
// GETADDR of versions 4 and 3 meet PROG_MISMATCH, then PMAP v2's GETPORT
// answers.
func TestLookupFallsBackToGetport(t *testing.T) {
	pm := portmapV2(t)
	rep := Run(context.Background(), Config{Host: "127.0.0.1", Port: pm, Prog: 400300, HasProg: true, Vers: 1, HasVers: true,
		Protos: []string{"udp"}, Timeout: 2 * time.Second})
	want := pmap.FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(pm)))
	if Class(rep.Verdict.Code) != OK || len(rep.Steps) != 5 || rep.Steps[2].Name != "registration" ||
		rep.Steps[2].Detail != fmt.Sprintf("at %s (port %d)", want, pm) {
		t.Errorf("verdict %s, steps %+v; want ok with the registration at %s", rep.Verdict.Name, rep.Steps, want)
	}
}
