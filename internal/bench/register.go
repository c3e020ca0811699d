package bench

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// pipelineDepth is how many SETs or UNSETs are written before their
// replies are read. Both daemons answer a stream's calls in order; a few
// hundred small replies fit in the socket buffers, so neither side blocks
// writing while the other is not reading.
const pipelineDepth = 256

// changeRange SETs (proc = pmap.ProcSet) or UNSETs the registrations
// [from, to) over one stream connection, pipelining the calls, and stops at
// the first answer that is not TRUE or when ctx ends. It returns how many
// calls were answered TRUE, in order from from.
func changeRange(ctx context.Context, network, addr string, proc uint32, from, to int, timeout time.Duration) (int, error) {
	if from >= to {
		return 0, nil
	}
	conn, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return 0, err
	}
	done := 0
	// Closing the connection when ctx ends unblocks a read that waits for
	// a daemon still working through a long batch.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	rr := rpc.NewRecordReader(conn, maxReply)
	var buf []byte
	xid := uint32(1)
	for start := from; start < to; start += pipelineDepth {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		end := min(start+pipelineDepth, to)
		buf = buf[:0]
		for i := start; i < end; i++ {
			at := len(buf)
			buf = append(buf, 0, 0, 0, 0)
			buf = rpc.AppendCall(buf, xid+uint32(i-start), pmap.Program, pmap.VersRPCB3, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
			addr := ""
			if proc == pmap.ProcSet {
				addr = uaddrOf(portOf(i))
			}
			buf = appendRpcb(buf, progRegistered+uint32(i), benchVers, rpc.NetidUDP, addr)
			rpc.MarkRecord(buf[at:])
		}
		// One deadline per batch: the daemon may take a while for a batch
		// when each SET walks a long list.
		conn.SetDeadline(time.Now().Add(timeout + time.Duration(end-start)*timeout/16))
		if _, err := conn.Write(buf); err != nil {
			return done, ctxErr(ctx, fmt.Errorf("write calls: %w", err))
		}
		for i := start; i < end; i++ {
			msg, err := rr.Next()
			if err != nil {
				return done, ctxErr(ctx, fmt.Errorf("read reply %d: %w", i-from, err))
			}
			d := xdr.NewDecoder(msg)
			got, err := rpc.ParseReply(d)
			if err != nil {
				return done, fmt.Errorf("registration %d: %w", i, err)
			}
			if got != xid+uint32(i-start) {
				return done, fmt.Errorf("registration %d: reply out of order", i)
			}
			ok, err := d.Bool()
			if err != nil {
				return done, fmt.Errorf("registration %d: %w", i, err)
			}
			if !ok {
				return done, fmt.Errorf("registration %d (program %#x): %w", i, progRegistered+i, errRefused)
			}
			done++
		}
		xid += pipelineDepth
	}
	return done, nil
}

// ctxErr prefers ctx's error to err, which is then only its consequence
// (a read on a connection closed because ctx ended).
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}
