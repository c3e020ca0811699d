package rpc

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/portmapd/portmapd/xdr"
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

// A first call whose reply waits (a change being written to disk) is
// answered by the fast path once the wait ends, a failed wait with
// SYSTEM_ERR, and the accepting goroutine is not held meanwhile: new
// connections are served while the wait lasts.
func TestServerReplyAfterOnFirstCall(t *testing.T) {
	release := make(chan struct{})
	ts := heldServer(t, release)
	var held []*streamClient
	for _, dial := range []struct{ network, addr string }{{"tcp", ts.tcp.Addr().String()}, {"unix", ts.unixPath}} {
		c := dialStream(t, dial.network, dial.addr)
		c.send(t, testCall(1, 1, 1))
		held = append(held, c)
		other := dialStream(t, dial.network, dial.addr)
		other.send(t, testCall(2, 1, procNull))
		expectReply(t, other, AppendSuccess(nil, 2))
		failed := dialStream(t, dial.network, dial.addr)
		failed.send(t, testCall(3, 1, 2))
		expectReply(t, failed, AppendAccepted(nil, 3, SystemErr))
	}
	for _, c := range held {
		if got, err := c.recv(t, silenceWait); err == nil {
			t.Fatalf("held reply %x sent before its wait ended", got)
		}
	}
	close(release)
	for _, c := range held {
		expectReply(t, c, xdr.AppendUint32(AppendSuccess(nil, 1), 7))
		// The connection goes on to serve its next call.
		c.send(t, testCall(4, 1, procNull))
		expectReply(t, c, AppendSuccess(nil, 4))
	}
}
