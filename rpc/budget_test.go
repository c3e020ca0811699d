package rpc

import (
	"testing"
	"time"
)

// A portmapper call is never larger than 9,000 bytes (rpcbind's
// RPC_MAXDATASIZE): by default a record of that size is served and one a
// byte longer closes the connection, as rpcbind closes it.
func TestServerDefaultRecordCapIsTheLargestCall(t *testing.T) {
	ts := startServer(t, &Server{})
	msg := testCall(1, 1, procNull)
	c := dialStream(t, "tcp", ts.tcp.Addr().String())
	c.send(t, append(msg, make([]byte, DefaultMaxRecord-len(msg))...))
	expectReply(t, c, AppendSuccess(nil, 1))
	c = dialStream(t, "tcp", ts.tcp.Addr().String())
	c.send(t, append(msg, make([]byte, DefaultMaxRecord+1-len(msg))...))
	c.expectClosed(t, replyWait)
}

// The bytes held for unfinished records across all connections are capped:
// past the cap the record that started first is evicted and its connection
// closed, while the others, and fresh clients, are served.
func TestServerEvictsTheOldestUnfinishedRecord(t *testing.T) {
	ts := startServer(t, &Server{MaxPartial: 20000})
	var crowd []*streamClient
	for i := range 3 {
		// A NULL call padded to 8,000 bytes, in two fragments that do not
		// end the record: 8 KiB held for each connection.
		msg := testCall(uint32(10+i), 1, procNull)
		msg = append(msg, make([]byte, 8000-len(msg))...)
		c := dialStream(t, "tcp", ts.tcp.Addr().String())
		c.write(t, frag(false, string(msg[:4000])))
		c.write(t, frag(false, string(msg[4000:])))
		crowd = append(crowd, c)
		// Let the server take them in, in order.
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			ts.budget.mu.Lock()
			n := len(ts.budget.order)
			ts.budget.mu.Unlock()
			if n == min(i+1, 2) {
				break
			}
		}
	}
	// 3 x 8 KiB over a cap of 20,000 bytes: the first is closed.
	crowd[0].expectClosed(t, replyWait)
	if n := ts.Counters.RecordsEvicted.Load(); n != 1 {
		t.Errorf("RecordsEvicted = %d, want 1", n)
	}
	// The others finish their records and are answered.
	for i, c := range crowd[1:] {
		c.write(t, frag(true, ""))
		expectReply(t, c, AppendSuccess(nil, uint32(11+i)))
	}
	fresh := dialStream(t, "unix", ts.unixPath)
	fresh.send(t, testCall(5, 1, procNull))
	expectReply(t, fresh, AppendSuccess(nil, 5))
	ts.budget.mu.Lock()
	defer ts.budget.mu.Unlock()
	if ts.budget.used != 0 || len(ts.budget.order) != 0 {
		t.Errorf("%d bytes of %d records still counted after they finished", ts.budget.used, len(ts.budget.order))
	}
}
