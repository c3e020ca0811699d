package client_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// udpPeer answers every datagram with reply(call) (nil: silence) and
// counts the calls it received.
func udpPeer(t *testing.T, reply func(call []byte) []byte) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			n.Add(1)
			if b := reply(buf[:k]); b != nil {
				pc.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), &n
}

func callMsg(xid uint32) []byte {
	return rpc.AppendCall(make([]byte, rpc.RecordHeaderLen), xid, 100000, 2, 0, rpc.OpaqueAuth{})
}

// TestDatagramSchedule: a call is sent again every Wait (growing by Grow
// up to MaxWait) until Total has passed; with StrayCosts a datagram that
// is not the reply costs the whole interval, so a peer that answers
// every call with a stray ends the call after Total/Wait rounds.
func TestDatagramSchedule(t *testing.T) {
	silent := func([]byte) []byte { return nil }
	stray := func(call []byte) []byte {
		return rpc.AppendSuccess(nil, 0xdead) // another call's xid
	}
	tests := []struct {
		name  string
		peer  func([]byte) []byte
		retry client.Retry
		sends int32
	}{
		{"a silent peer, a fixed interval", silent, client.Retry{Total: 400 * time.Millisecond, Wait: 100 * time.Millisecond}, 4},
		{"a silent peer, a growing interval", silent,
			client.Retry{Total: 700 * time.Millisecond, Wait: 100 * time.Millisecond, MaxWait: 200 * time.Millisecond, Grow: 2}, 4},
		{"a stray costs the interval (libtirpc)", stray, client.Retry{Total: 2 * time.Second, Wait: 500 * time.Millisecond, StrayCosts: true}, 4},
		{"strays are read past otherwise", stray, client.Retry{Total: 400 * time.Millisecond, Wait: time.Second}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap, n := udpPeer(t, tt.peer)
			pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			d := client.NewDatagram(pc, ap, 1500)
			_, err = d.RoundTrip(context.Background(), callMsg(7), tt.retry, client.ReplyTo(7))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("err %v, want the deadline", err)
			}
			// The peer may not have read the last datagram yet.
			for i := 0; i < 100 && n.Load() < tt.sends; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if got := n.Load(); got != tt.sends {
				t.Errorf("sent %d times, want %d", got, tt.sends)
			}
		})
	}
	t.Run("the reply ends the call", func(t *testing.T) {
		ap, _ := udpPeer(t, func(call []byte) []byte {
			xid, _ := xdr.NewDecoder(call).Uint32()
			return rpc.AppendSuccess(nil, xid)
		})
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		d := client.NewDatagram(pc, ap, 1500)
		reply, err := d.RoundTrip(context.Background(), callMsg(9), client.Retry{Total: 5 * time.Second, Wait: time.Second}, client.ReplyTo(9))
		if xid, _ := xdr.NewDecoder(reply).Uint32(); err != nil || xid != 9 {
			t.Errorf("reply %x, err %v", reply, err)
		}
	})
}

// TestStreamSkipsRefusedRecords: records the caller does not take are
// read past, and the one it takes is returned.
func TestStreamSkipsRefusedRecords(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		rr := rpc.NewRecordReader(b, 1<<16)
		if _, err := rr.Next(); err != nil {
			return
		}
		for _, xid := range []uint32{1, 2, 3} {
			b.Write(rpc.MarkRecord(rpc.AppendSuccess(make([]byte, rpc.RecordHeaderLen), xid)))
		}
	}()
	s := client.NewStream(a, 1<<16)
	a.SetDeadline(time.Now().Add(5 * time.Second))
	reply, err := s.RoundTrip(callMsg(3), client.ReplyTo(3))
	if xid, _ := xdr.NewDecoder(reply).Uint32(); err != nil || xid != 3 {
		t.Errorf("reply %x, err %v", reply, err)
	}
}
