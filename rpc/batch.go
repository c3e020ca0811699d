package rpc

import (
	"net"
)

// streamBatch holds the replies of calls pipelined on one stream while
// further calls are already buffered, so that their waits (Reply.After:
// warm start's durability) run together once the buffered calls are
// handled: a client that pipelines N SETs gets one fsync, not N. Replies
// still leave in the order the calls came.
type streamBatch struct {
	rr   *RecordReader
	held []heldReply
}

type heldReply struct {
	msg, tail []byte       // the reply message, with room for its record mark
	wait      func() error // nil: nothing to wait for, observed already
	xid       uint32
	vers      uint32
	proc      uint32
	netid     string // the call's, as dispatch observed it
}

// maxHeld bounds the replies held on one stream: a client that pipelines
// without end is answered in batches of this many.
const maxHeld = 64

// holds reports whether w, a reply whose message starts with room for its
// record mark, waits in the batch: behind replies held already, so that
// replies keep the calls' order, or when it has a wait and another whole
// call is buffered behind it, which may share that wait.
func (b *streamBatch) holds(w *Reply) bool {
	return len(b.held) > 0 || (w.After != nil && b.rr.Ready())
}

// add holds a copy of w's message.
func (b *streamBatch) add(w *Reply, c *Call) {
	b.held = append(b.held, heldReply{msg: append([]byte(nil), w.Body...), tail: w.Tail, wait: w.After,
		xid: c.XID, vers: c.Vers, proc: c.Proc, netid: c.Netid})
}

// due reports whether the held replies must go now: nothing more is
// buffered, or the batch is full.
func (b *streamBatch) due() bool {
	return len(b.held) > 0 && (len(b.held) >= maxHeld || !b.rr.Ready())
}

// flushBatch runs the held waits in order (the first one's write carries the
// changes of all) and sends every held reply in one write.
func (s *Server) flushBatch(conn net.Conn, b *streamBatch) error {
	bufs := make(net.Buffers, 0, 2*len(b.held))
	for i := range b.held {
		h := &b.held[i]
		if h.wait != nil && !s.await(h.wait, h.vers, h.proc, h.netid) {
			h.msg, h.tail = AppendAccepted(h.msg[:RecordHeaderLen], h.xid, SystemErr), nil
		}
		bufs = append(bufs, markRecord(h.msg, h.tail))
		if len(h.tail) > 0 {
			bufs = append(bufs, h.tail)
		}
	}
	clear(b.held)
	b.held = b.held[:0]
	_, err := bufs.WriteTo(conn)
	return err
}
