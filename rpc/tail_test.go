package rpc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

// A handler's Tail follows its results on every transport, uncopied on
// streams; one that would make a datagram too large is not sent, and one
// set by a handler that then fails is not sent either.
func TestReplyTail(t *testing.T) {
	small := bytes.Repeat([]byte{0xab}, 12)
	big := bytes.Repeat([]byte{0xcd}, 70000)
	mux := NewMux()
	mux.Handle(testProg, 1, []Handler{
		HandlerFunc(func(w *Reply, c *Call) error { return nil }),
		HandlerFunc(func(w *Reply, c *Call) error { w.Body, w.Tail = xdr.AppendUint32(w.Body, 7), small; return nil }),
		HandlerFunc(func(w *Reply, c *Call) error { w.Tail = big; return nil }),
		HandlerFunc(func(w *Reply, c *Call) error { w.Tail = small; return errors.New("boom") }),
	})
	ts := startServer(t, &Server{Handler: mux, MaxRecord: 1 << 20})
	withSmall := append(xdr.AppendUint32(AppendSuccess(nil, 1), 7), small...)
	for name, c := range ts.clients(t) {
		c.send(t, testCall(1, 1, 1))
		expectReply(t, c, withSmall)
		c.send(t, testCall(3, 1, 3))
		expectReply(t, c, AppendAccepted(nil, 3, SystemErr))
		if name == "udp" {
			// Too large for a datagram: SYSTEM_ERR for this local caller.
			c.send(t, testCall(2, 1, 2))
			expectReply(t, c, AppendAccepted(nil, 2, SystemErr))
			continue
		}
		c.send(t, testCall(2, 1, 2))
		expectReply(t, c, append(AppendSuccess(nil, 2), big...))
	}
	if ts.Counters.TooLarge.Load() != 1 {
		t.Errorf("TooLarge = %d, want 1 (the datagram)", ts.Counters.TooLarge.Load())
	}
}
