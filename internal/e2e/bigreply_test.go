package e2e

import (
	"fmt"
	"testing"
)

// TestLargeDatagramRepliesDifferential fills the table and the lookup
// statistics until the replies of DUMP (v2, v3, v4) and GETSTAT outgrow
// what a datagram carries (8,800 bytes, libtirpc's UDPMSGSIZE), then asks
// for them over UDP from this host: the caller is owed an answer and gets
// SYSTEM_ERR, as from rpcbind 1.2.6 (a client then fails at once rather
// than waiting out its timeout), and over TCP the whole reply.
// GETADDRLIST cannot outgrow a datagram: it lists at most the served
// netids of one family for one program and version.
func TestLargeDatagramRepliesDifferential(t *testing.T) {
	t.Parallel()
	var sets, setWant, lookups, lookupWant []string
	// 450 rows: v2's DUMP takes 20 bytes a row, v3's and v4's more.
	for i := range 450 {
		op := fmt.Sprintf("v3 local set %d 1 udp 0.0.0.0.%d.%d", 410000+i, 4+i/256, i%256)
		sets = append(sets, op)
		setWant = append(setWant, op+": true")
	}
	// 300 lookups a version of programs nobody registered: rpcbind keeps
	// them all, portmapd 256 a version, either way over 8,800 bytes.
	for _, v := range []string{"v3", "v4"} {
		for i := range 300 {
			op := fmt.Sprintf("%s udp:unpriv getaddr %d 1", v, 420000+i)
			lookups = append(lookups, op)
			lookupWant = append(lookupWant, op+`: ""`)
		}
	}
	sysErr := func(xid uint32) string { return "reply " + Hex(AcceptedReply(xid, SystemErr)) }
	dump2 := NewCall(0xb160, 100000, 2, 4)
	dump3 := NewCall(0xb161, 100000, 3, 4)
	dump4 := NewCall(0xb162, 100000, 4, 4)
	stat := NewCall(0xb163, 100000, 4, 12)
	RunDiff(t, Rpcbind(), Portmapd(), []Step{
		Client("450 registrations", sets...).Expect(setWant...),
		RawStep("v2 DUMP over UDP: SYSTEM_ERR", dump2.Bytes(), "noreply", "udp").Tolerate(
			"rpcbind's PMAP v2 DUMP stays silent when its reply does not fit (pmap_svc.c sends no error); "+
				"portmapd answers SYSTEM_ERR as rpcbind does for every RPCBIND procedure",
			SameOr(IsReply(AcceptedReply(0xb160, SystemErr)))),
		RawStep("v3 DUMP over UDP: SYSTEM_ERR", dump3.Bytes(), sysErr(0xb161), "udp", "udp6"),
		RawStep("v4 DUMP over UDP: SYSTEM_ERR", dump4.Bytes(), sysErr(0xb162), "udp", "udp6"),
		Client("v2 and v4 DUMP over TCP in full", "v2 tcp dump", "v4 tcp dump"),
		Client("600 lookups of unregistered programs", lookups...).Expect(lookupWant...),
		RawStep("GETSTAT over UDP: SYSTEM_ERR", stat.Bytes(), sysErr(0xb163), "udp", "udp6"),
	})
}
