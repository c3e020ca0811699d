package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// ErrRefused is SetMany's outcome for a SET answered FALSE: another
// address is registered for the program, version and netid.
var ErrRefused = errors.New("refused: another address is registered")

// pipelineWindow is how many calls SetMany has outstanding at once: enough
// that a warm-start daemon makes each batch durable with one write,
// little enough that neither side's socket buffer fills.
const pipelineWindow = 128

// SetMany registers every mapping of ms with RPCBIND v3 SETs and returns
// each one's outcome: nil, ErrRefused, or the call's error (a
// *rpc.ReplyError for SYSTEM_ERR). On a stream the calls are pipelined,
// a window at a time, so that the daemon handles a window's calls before
// waiting for their durability once; over UDP they are made one at a time.
// The error is for the connection: after it, later outcomes are unknown.
func (c *Client) SetMany(ctx context.Context, ms []pmap.Mapping) ([]error, error) {
	outcomes := make([]error, len(ms))
	if c.stream == nil {
		for i, m := range ms {
			ok, err := c.Set(ctx, m)
			if err == nil && !ok {
				err = ErrRefused
			}
			if err != nil && ctx.Err() != nil {
				return outcomes, err
			}
			outcomes[i] = err
		}
		return outcomes, nil
	}
	for start := 0; start < len(ms); start += pipelineWindow {
		if err := c.setWindow(ctx, ms[start:min(start+pipelineWindow, len(ms))], outcomes[start:]); err != nil {
			return outcomes, err
		}
	}
	return outcomes, nil
}

// setWindow sends one window of SETs in a single write and reads their
// replies.
func (c *Client) setWindow(ctx context.Context, ms []pmap.Mapping, outcomes []error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.Timeout)
	}
	c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	first := c.xid + 1
	buf := c.buf[:0]
	for _, m := range ms {
		c.xid++
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0) // record mark
		buf = rpc.AppendCall(buf, c.xid, pmap.Program, pmap.VersRPCB3, pmap.ProcSet, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
		buf = pmap.AppendRpcb(buf, &m)
		rpc.MarkRecord(buf[at:])
	}
	c.buf = buf
	fail := func(err error) error {
		c.broken = err
		c.conn.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if _, err := c.conn.Write(buf); err != nil {
		return fail(err)
	}
	// Every call is answered once; anything else on the stream (a record
	// too short to hold an xid, another xid, a second answer) is stray,
	// and the deadline bounds how long strays can keep the loop going.
	answered := make([]bool, len(ms))
	for pending := len(ms); pending > 0; {
		rec, err := c.stream.RecordReader().Next()
		if err != nil {
			return fail(err)
		}
		if len(rec) < 4 {
			continue
		}
		i := int(replyXID(rec) - first)
		if i < 0 || i >= len(ms) || answered[i] {
			continue
		}
		answered[i] = true
		pending--
		d := xdr.NewDecoder(rec)
		if _, err := rpc.ParseReply(d); err != nil {
			outcomes[i] = err
			continue
		}
		set, err := d.AnyBool()
		switch {
		case err != nil:
			outcomes[i] = fmt.Errorf("decode results of SET: %w", err)
		case !set:
			outcomes[i] = ErrRefused
		}
	}
	return nil
}
