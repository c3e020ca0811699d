package rpc

import (
	"net"
	"sync"
	"testing"
	"time"
)

// A storm of connections that each carry one call and close: every call
// is answered, and once the clients are gone the server holds none of
// their connections and has counted each one opened and closed once.
func TestServerNewConnectionPerCall(t *testing.T) {
	obs := &countingObserver{}
	ts := startServer(t, &Server{Observer: obs})
	const clients, calls = 16, 20
	var wg sync.WaitGroup
	for i := range clients {
		network, addr := "tcp", ts.tcp.Addr().String()
		if i%2 == 1 {
			network, addr = "unix", ts.unixPath
		}
		wg.Go(func() {
			for k := range uint32(calls) {
				c, err := net.Dial(network, addr)
				if err != nil {
					t.Error(err)
					return
				}
				sc := &streamClient{conn: c, rr: NewRecordReader(c, 1<<20)}
				sc.send(t, testCall(k, 1, procNull))
				expectReply(t, sc, AppendSuccess(nil, k))
				c.Close()
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.mu.Lock()
		open := len(ts.conns)
		ts.mu.Unlock()
		if open == 0 && obs.closed.Load() == clients*calls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still tracked, %d of %d counted closed", open, obs.closed.Load(), clients*calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := obs.opened.Load(); n != clients*calls {
		t.Errorf("%d connections counted opened, want %d", n, clients*calls)
	}
}

// A connection whose first call was answered on the fast path goes on to
// the general path with its next ones, on both kinds of socket.
func TestServerSecondCallAfterTheFirst(t *testing.T) {
	ts := startServer(t, &Server{})
	for _, dial := range []struct{ network, addr string }{{"tcp", ts.tcp.Addr().String()}, {"unix", ts.unixPath}} {
		c := dialStream(t, dial.network, dial.addr)
		for k := range uint32(3) {
			c.send(t, testCall(k, 1, procNull))
			expectReply(t, c, AppendSuccess(nil, k))
			// Let the connection settle in the tail between calls.
			time.Sleep(20 * time.Millisecond)
		}
	}
}
