package rpc

import (
	"encoding/binary"
	"net"
)

// streamBatch holds the replies of calls pipelined on one stream while
// further calls are already buffered, so that their waits (ReplyAfter:
// warm start's durability) run together once the buffered calls are
// handled: a client that pipelines N SETs gets one fsync, not N. Replies
// still leave in the order the calls came.
type streamBatch struct {
	rr   *RecordReader
	held []heldReply
}

type heldReply struct {
	msg, tail []byte       // the reply message, without its record mark
	wait      func() error // nil: nothing to wait for, counted already
	xid       uint32
	vers      uint32
	proc      uint32
}

// maxHeld bounds the replies held on one stream: a client that pipelines
// without end is answered in batches of this many.
const maxHeld = 64

// hold reports whether a reply should wait for the calls behind it: some
// are held already, or another whole call is buffered.
func (b *streamBatch) hold() bool {
	return b != nil && len(b.held) < maxHeld && (len(b.held) > 0 || b.rr.Ready())
}

// add holds a copy of a reply.
func (b *streamBatch) add(msg, tail []byte, c *Call, wait func() error) {
	b.held = append(b.held, heldReply{msg: append([]byte(nil), msg...), tail: tail, wait: wait,
		xid: c.XID, vers: c.Vers, proc: c.Proc})
}

// due reports whether the held replies must go now: nothing more is
// buffered, or the batch is full.
func (b *streamBatch) due() bool {
	return len(b.held) > 0 && (len(b.held) >= maxHeld || !b.rr.Ready())
}

// flush runs the held waits in order (the first one's write carries the
// changes of all) and sends every held reply in one write.
func (s *Server) flushBatch(conn net.Conn, b *streamBatch, netid string) error {
	bufs := make(net.Buffers, 0, 3*len(b.held))
	for i := range b.held {
		h := &b.held[i]
		if h.wait != nil {
			outcome := OutcomeSuccess
			if err := h.wait(); err != nil {
				h.msg, h.tail, outcome = AppendAccepted(h.msg[:0], h.xid, SystemErr), nil, OutcomeSystemErr
			}
			if s.Observer != nil {
				s.Observer.Call(h.vers, h.proc, netid, outcome)
			}
		}
		mark := binary.BigEndian.AppendUint32(nil, lastFragment|uint32(len(h.msg)+len(h.tail)))
		bufs = append(bufs, mark, h.msg)
		if len(h.tail) > 0 {
			bufs = append(bufs, h.tail)
		}
	}
	clear(b.held)
	b.held = b.held[:0]
	_, err := bufs.WriteTo(conn)
	return err
}
