package bench

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"sync"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Responder is the physical limit a storm is measured against: the least
// a Go program can do per connection and still answer. It accepts on TCP
// address and on the local socket, reads one record, writes a fixed
// reply (the storm's expected answer, whatever was asked) and reads on
// until the client closes; no table, no decoding beyond the XID and the
// version, no limits, no deadlines. Datagrams to address get an empty
// success, so that the harness sees it as ready. It serves until ctx ends.
func Responder(ctx context.Context, address, socket string) error {
	// Plain TCP, as the daemons' listeners are (Go's are MPTCP by default).
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	tl, err := lc.Listen(ctx, "tcp4", address)
	if err != nil {
		return err
	}
	defer tl.Close()
	os.Remove(socket)
	ul, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	defer ul.Close()
	pc, err := net.ListenPacket("udp4", address)
	if err != nil {
		return err
	}
	defer pc.Close()
	respondOn(ctx, tl, ul, pc)
	return nil
}

// answerAll answers every connection l accepts, each on a goroutine of
// its own, until l is closed.
func answerAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go respond(c)
	}
}

// respondOn is Responder on sockets bound already (by Responder, or by a
// test on port 0).
func respondOn(ctx context.Context, tl, ul net.Listener, pc net.PacketConn) {
	stop := context.AfterFunc(ctx, func() { tl.Close(); ul.Close(); pc.Close() })
	defer stop()

	var wg sync.WaitGroup
	for _, l := range []net.Listener{tl, ul} {
		wg.Go(func() { answerAll(l) })
	}
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				_, _ = pc.WriteTo(fixedReply(nil, binary.BigEndian.Uint32(buf), 0, 0, false), from)
			}
		}
	})
	<-ctx.Done()
	tl.Close()
	ul.Close()
	pc.Close()
	wg.Wait()
}

// fixedReply appends an accepted, successful reply to xid whose result
// is the storm's answer for a GETPORT (vers 2) or a GETADDR (3 and 4) and
// empty for anything else; a GETADDR over the local socket gets the
// address of the storm program's "local" entry.
func fixedReply(b []byte, xid, vers, proc uint32, local bool) []byte {
	b = rpc.AppendSuccess(b, xid)
	if proc != pmap.ProcGetport { // GETADDR has the same number
		return b
	}
	if vers == pmap.VersPMAP {
		return xdr.AppendUint32(b, portOf(0))
	}
	if local {
		return xdr.AppendString(b, stormLocalAddr)
	}
	return xdr.AppendString(b, uaddrOf(portOf(0)))
}

func respond(c net.Conn) {
	defer c.Close()
	_, local := c.(*net.UnixConn)
	var in [1024]byte
	out := make([]byte, 0, 64)
	have := 0
	for {
		n, err := c.Read(in[have:])
		if err != nil {
			return
		}
		have += n
		// Answer every whole record in the buffer; a call of the storm is
		// one fragment of well under a kilobyte.
		for have >= rpc.RecordHeaderLen {
			size := int(binary.BigEndian.Uint32(in[:]) &^ (1 << 31))
			if rpc.RecordHeaderLen+size > len(in) || size < 24 {
				return
			}
			if have < rpc.RecordHeaderLen+size {
				break
			}
			msg := in[rpc.RecordHeaderLen : rpc.RecordHeaderLen+size]
			out = fixedReply(append(out[:0], 0, 0, 0, 0), binary.BigEndian.Uint32(msg),
				binary.BigEndian.Uint32(msg[16:]), binary.BigEndian.Uint32(msg[20:]), local)
			if _, err := c.Write(rpc.MarkRecord(out)); err != nil {
				return
			}
			have = copy(in[:], in[rpc.RecordHeaderLen+size:have])
		}
		if have == len(in) {
			return
		}
	}
}
