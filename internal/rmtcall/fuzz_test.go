package rmtcall

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// FuzzRelay feeds the reply path whatever a service might send back for a
// call in flight: it must never panic, must free the call once the xid
// matched, and may only answer the caller with a well-formed reply under
// the caller's xid.
func FuzzRelay(f *testing.F) {
	f.Add(append(rpc.AppendSuccess(nil, 0), 1, 2, 3, 4), false, uint8(1))
	f.Add(rpc.AppendSuccess(nil, 0), true, uint8(0))
	f.Add(rpc.AppendProgMismatch(nil, 0, 1, 2), true, uint8(2))
	f.Add(rpc.AppendAuthError(nil, 0, rpc.AuthTooWeak), true, uint8(2))
	f.Add(rpc.AppendAccepted(nil, 0, rpc.ProcUnavail)[:20], true, uint8(2))
	f.Add(rpc.AppendCall(nil, 0, 1, 2, 3, rpc.OpaqueAuth{}), true, uint8(1))
	f.Add([]byte{0, 0}, false, uint8(0))
	fw := newForwarder(f, Config{})
	target := netip.MustParseAddrPort("127.0.0.1:4000")
	f.Fuzz(func(t *testing.T, in []byte, indirect bool, version uint8) {
		rec := newRecorder(t)
		e := &entry{
			key:      callKey{caller: remoteCaller, xid: 9, version: uint32(version%3) + 2, proc: 5},
			target:   target,
			reply:    rec,
			uaddr:    "10.0.0.1.0.1",
			port:     1,
			indirect: indirect,
			reqSize:  1 << 20,
			deadline: time.Now().Add(time.Minute),
		}
		fw.mu.Lock()
		e.xid = fw.newXID()
		fw.insert(e)
		fw.mu.Unlock()
		msg := bytes.Clone(in)
		if len(msg) >= 4 {
			binary.BigEndian.PutUint32(msg, e.xid)
		}
		fw.relay(nil, msg, target)
		fw.mu.Lock()
		still := fw.byXID[e.xid] == e
		if still {
			fw.remove(e)
		}
		fw.mu.Unlock()
		if len(msg) >= 4 && still {
			t.Fatal("a message with the call's xid from its service left the call in flight")
		}
		select {
		case reply := <-rec.replies:
			d := xdr.NewDecoder(reply)
			xid, err := rpc.ParseReply(d)
			if xid != 9 {
				t.Fatalf("reply with xid %d, want the caller's 9", xid)
			}
			if err != nil && !indirect {
				t.Fatalf("CALLIT caller answered with an error: %v", err)
			}
		default:
		}
	})
}
