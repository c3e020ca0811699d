package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

func dial(t *testing.T, network, address string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// owner is what the daemon records for this process on the local socket.
func owner() string {
	if os.Geteuid() == 0 {
		return pmap.OwnerSuperuser
	}
	return strconv.Itoa(os.Geteuid())
}

func TestProceduresAgainstDaemon(t *testing.T) {
	port, socket := daemontest.Start(t)
	hostport := fmt.Sprintf("127.0.0.1:%d", port)
	local := dial(t, "unix", socket)
	tcp := dial(t, "tcp", hostport)
	udp := dial(t, "udp", hostport)

	t.Run("NULL of every version, and of one the daemon lacks", func(t *testing.T) {
		for _, c := range []*client.Client{local, tcp, udp} {
			for v := uint32(2); v <= 4; v++ {
				if err := c.Null(ctx(t), v); err != nil {
					t.Errorf("NULL v%d: %v", v, err)
				}
			}
			var re *rpc.ReplyError
			if err := c.Null(ctx(t), 5); !errors.As(err, &re) || re.Accept != rpc.ProgMismatch || re.Low != 2 || re.High != 4 {
				t.Errorf("NULL v5: %v", err)
			}
		}
	})
	t.Run("SET over the local socket records the caller as owner", func(t *testing.T) {
		for _, m := range []pmap.Mapping{
			{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1"},
			{Prog: 100003, Vers: 3, Netid: "udp", Addr: "0.0.0.0.8.1"},
			{Prog: 100003, Vers: 4, Netid: "tcp6", Addr: "::.8.1"},
		} {
			if ok, err := local.Set(ctx(t), m); !ok || err != nil {
				t.Fatalf("SET %v: %v %v", m, ok, err)
			}
		}
		ms, err := tcp.Dump(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, m := range ms {
			if m.Prog == 100003 {
				found++
				if m.Owner != owner() {
					t.Errorf("%v: owner %q, want %q", m, m.Owner, owner())
				}
			}
		}
		if found != 3 {
			t.Errorf("%d rows of 100003 in %v", found, ms)
		}
	})
	t.Run("GETPORT and GETADDR see them", func(t *testing.T) {
		if p, err := udp.GetPort(ctx(t), 100003, 3, pmap.ProtoUDP); p != 2049 || err != nil {
			t.Errorf("GETPORT udp: %d %v", p, err)
		}
		if p, err := tcp.GetPort(ctx(t), 100003, 3, pmap.ProtoTCP); p != 2049 || err != nil {
			t.Errorf("GETPORT tcp: %d %v", p, err)
		}
		// A wildcard registration is answered with the address the call
		// arrived at.
		if a, err := tcp.GetAddr(ctx(t), 100003, 3, "tcp"); a != "127.0.0.1.8.1" || err != nil {
			t.Errorf("GETADDR: %q %v", a, err)
		}
		if a, err := tcp.GetAddr(ctx(t), 400177, 1, "tcp"); a != "" || err != nil {
			t.Errorf("GETADDR of nothing: %q %v", a, err)
		}
		rows, err := udp.DumpPorts(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		want := map[client.PortMapping]bool{{Prog: 100003, Vers: 3, Prot: pmap.ProtoTCP, Port: 2049}: true,
			{Prog: 100003, Vers: 3, Prot: pmap.ProtoUDP, Port: 2049}: true}
		for _, r := range rows {
			delete(want, r)
		}
		if len(want) != 0 {
			t.Errorf("PMAP DUMP %v lacks %v", rows, want)
		}
	})
	t.Run("PMAP SET and UNSET", func(t *testing.T) {
		if ok, err := tcp.SetPort(ctx(t), client.PortMapping{Prog: 100021, Vers: 1, Prot: pmap.ProtoUDP, Port: 40001}); !ok || err != nil {
			t.Fatalf("SET: %v %v", ok, err)
		}
		if p, _ := udp.GetPort(ctx(t), 100021, 1, pmap.ProtoUDP); p != 40001 {
			t.Errorf("port %d", p)
		}
		if ok, err := local.UnsetPort(ctx(t), 100021, 1); !ok || err != nil {
			t.Fatalf("UNSET: %v %v", ok, err)
		}
		if p, _ := udp.GetPort(ctx(t), 100021, 1, pmap.ProtoUDP); p != 0 {
			t.Errorf("port %d after UNSET", p)
		}
	})
	t.Run("UNSET of one netid, then of all", func(t *testing.T) {
		if ok, err := local.Unset(ctx(t), 100003, 3, "udp"); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if p, _ := udp.GetPort(ctx(t), 100003, 3, pmap.ProtoUDP); p != 0 {
			t.Errorf("udp still registered at %d", p)
		}
		if p, _ := udp.GetPort(ctx(t), 100003, 3, pmap.ProtoTCP); p != 2049 {
			t.Errorf("tcp lost: %d", p)
		}
		local.Unset(ctx(t), 100003, 3, "")
		local.Unset(ctx(t), 100003, 4, "")
		ms, _ := local.Dump(ctx(t))
		for _, m := range ms {
			if m.Prog == 100003 {
				t.Errorf("left: %v", m)
			}
		}
	})
	t.Run("a client is safe for concurrent use", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					c := []*client.Client{local, tcp, udp}[i%3]
					if _, err := c.GetPort(ctx(t), 100000, 2, pmap.ProtoUDP); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

func TestRegisterAgainstDaemon(t *testing.T) {
	port, socket := daemontest.Start(t)
	pm := dial(t, "unix", socket)
	look := dial(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))

	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	ul, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer ul.Close()
	// A stale entry of an earlier run, as a crashed service leaves.
	if ok, err := pm.Set(ctx(t), pmap.Mapping{Prog: 400200, Vers: 2, Netid: "tcp", Addr: "127.0.0.1.1.1"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	reg, err := client.Register(ctx(t), pm, 400200, 2, tl.Addr(), ul.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	tp := tl.Addr().(*net.TCPAddr).Port
	up := ul.LocalAddr().(*net.UDPAddr).Port
	want := []pmap.Mapping{
		{Prog: 400200, Vers: 2, Netid: "tcp", Addr: fmt.Sprintf("127.0.0.1.%d.%d", tp>>8, tp&255)},
		{Prog: 400200, Vers: 2, Netid: "udp6", Addr: fmt.Sprintf("::1.%d.%d", up>>8, up&255)},
	}
	if got := reg.Mappings(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("mappings %v, want %v", got, want)
	}
	if a, err := look.GetAddr(ctx(t), 400200, 2, "tcp"); a != want[0].Addr || err != nil {
		t.Errorf("GETADDR: %q %v (the stale entry was not replaced?)", a, err)
	}
	if err := reg.Unregister(ctx(t)); err != nil {
		t.Fatal(err)
	}
	ms, _ := look.Dump(ctx(t))
	for _, m := range ms {
		if m.Prog == 400200 {
			t.Errorf("left after Unregister: %v", m)
		}
	}
	if _, err := client.Register(ctx(t), pm, 1, 1, &net.IPAddr{IP: net.IPv4(1, 2, 3, 4)}); err == nil {
		t.Error("an address of no transport was registered")
	}
}

func TestDialFailures(t *testing.T) {
	ctx := ctx(t)
	if _, err := client.Dial(ctx, "unix", filepath.Join(t.TempDir(), "none.sock")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("missing socket: %v", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := client.Dial(ctx, "tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("closed port: %v", err)
	}
	// Over UDP the refusal comes as an ICMP error to the first call.
	c, err := client.Dial(ctx, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Null(ctx, 2); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("closed UDP port: %v", err)
	}
}

// silentUDP is a UDP port that reads and never answers.
func silentUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go io.Copy(io.Discard, pc)
	return pc.LocalAddr().String()
}

func TestTimeoutsAndCancellation(t *testing.T) {
	addr := silentUDP(t)
	t.Run("the client's timeout", func(t *testing.T) {
		c := dial(t, "udp", addr)
		c.Timeout = 300 * time.Millisecond
		start := time.Now()
		err := c.Null(context.Background(), 2)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("err %v", err)
		}
		if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
			t.Errorf("took %v", took)
		}
	})
	t.Run("the context's deadline", func(t *testing.T) {
		c := dial(t, "udp", addr)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := c.Null(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("cancellation ends a datagram call at once", func(t *testing.T) {
		c := dial(t, "udp", addr)
		c.Timeout = time.Minute
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		if err := c.Null(ctx, 2); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
		// Retransmissions (every 250ms, then more) must not outlive it.
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("took %v after a cancellation at 300ms", took)
		}
	})
}

// hostileTCP serves one reply per connection, reply(xid) after reading a
// call, then closes it.
func hostileTCP(t *testing.T, reply func(xid uint32) []byte) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				rec, err := rpc.NewRecordReader(conn, 1<<16).Next()
				if err != nil || len(rec) < 4 {
					return
				}
				conn.Write(reply(uint32(rec[0])<<24 | uint32(rec[1])<<16 | uint32(rec[2])<<8 | uint32(rec[3])))
			}()
		}
	}()
	return l.Addr().String()
}

func TestHostileServers(t *testing.T) {
	record := func(b []byte) []byte { return rpc.MarkRecord(append(make([]byte, 4), b...)) }
	for _, c := range []struct {
		name  string
		reply func(xid uint32) []byte
		check func(error) bool
	}{
		{"a record header claiming 2 GB", func(uint32) []byte { return []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3} },
			func(err error) bool { return errors.Is(err, rpc.ErrRecordTooLarge) }},
		{"a connection closed without a reply", func(uint32) []byte { return nil },
			func(err error) bool { return errors.Is(err, io.EOF) }},
		{"a reply cut short", func(xid uint32) []byte { return []byte{0x80, 0, 0, 100, 1, 2} },
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"a string of 4 GB in a DUMP", func(xid uint32) []byte {
			b := rpc.AppendSuccess(nil, xid)
			for _, w := range []uint32{1, 100000, 4, 0xffffffff} {
				b = xdr.AppendUint32(b, w)
			}
			return record(b)
		}, func(err error) bool { return errors.Is(err, xdr.ErrTooLong) }},
		{"a message that is not a reply", func(xid uint32) []byte { return record(xdr.AppendUint32(xdr.AppendUint32(nil, xid), 0)) },
			func(err error) bool { return errors.Is(err, rpc.ErrNotReply) }},
		{"an authentication error", func(xid uint32) []byte { return record(rpc.AppendAuthError(nil, xid, rpc.AuthTooWeak)) },
			func(err error) bool {
				var re *rpc.ReplyError
				return errors.As(err, &re) && re.Denied && re.Auth == rpc.AuthTooWeak
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := dial(t, "tcp", hostileTCP(t, c.reply))
			cl.Timeout = 2 * time.Second
			start := time.Now()
			_, err := cl.Dump(context.Background())
			if !c.check(err) {
				t.Errorf("err %v", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	t.Run("a record too short for an xid among pipelined replies", func(t *testing.T) {
		cl := dial(t, "tcp", hostileTCP(t, func(uint32) []byte { return rpc.MarkRecord([]byte{0, 0, 0, 0, 1, 2}) }))
		cl.Timeout = 2 * time.Second
		outcomes, err := cl.SetMany(context.Background(), []pmap.Mapping{{Prog: 400100, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1"}})
		if err == nil || outcomes[0] != nil {
			t.Errorf("outcomes %v, err %v; want the connection's error", outcomes, err)
		}
	})
	t.Run("a stream cut in the middle of a call is not read again", func(t *testing.T) {
		cl := dial(t, "tcp", hostileTCP(t, func(uint32) []byte { return []byte{0x80, 0, 1, 0, 1} }))
		cl.Timeout = 300 * time.Millisecond
		if err := cl.Null(context.Background(), 2); err == nil {
			t.Fatal("no error")
		}
		if err := cl.Null(context.Background(), 2); !errors.Is(err, client.ErrBroken) {
			t.Errorf("second call: %v", err)
		}
	})
}

// TestRegisterWildcard: an address without an IP (a Go listener on ":p"
// reports one like it) is registered on every address.
func TestRegisterWildcard(t *testing.T) {
	_, socket := daemontest.Start(t)
	pm := dial(t, "unix", socket)
	reg, err := client.Register(ctx(t), pm, 400201, 1, &net.UDPAddr{Port: 4500})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister(ctx(t))
	if m := reg.Mappings(); len(m) != 1 || m[0].Netid != "udp" || m[0].Addr != "0.0.0.0.17.148" {
		t.Errorf("%v", m)
	}
}

// SetMany registers a list in pipelined windows on streams (one at a time
// over UDP) and reports each mapping's own outcome in order.
func TestSetMany(t *testing.T) {
	port, socket := daemontest.Start(t)
	hostport := fmt.Sprintf("127.0.0.1:%d", port)
	local := dial(t, "unix", socket)
	for i, c := range []*client.Client{local, dial(t, "tcp", hostport), dial(t, "udp", hostport)} {
		var ms []pmap.Mapping
		for n := range 300 {
			ms = append(ms, pmap.Mapping{Prog: 0x30000000 + uint32(i)<<16 + uint32(n), Vers: 1, Netid: "tcp",
				Addr: fmt.Sprintf("127.0.0.1.%d.%d", 40+n/256, n%256)})
		}
		// Every tenth repeats an earlier key with another address.
		for n := 10; n < len(ms); n += 10 {
			ms[n].Prog, ms[n].Addr = ms[n-1].Prog, "127.0.0.1.99.99"
		}
		outcomes, err := c.SetMany(ctx(t), ms)
		if err != nil {
			t.Fatal(err)
		}
		table, err := local.Dump(ctx(t)) // a DUMP this size does not fit a datagram
		if err != nil {
			t.Fatal(err)
		}
		registered := map[[2]string]bool{}
		for _, m := range table {
			registered[[2]string{strconv.Itoa(int(m.Prog)), m.Addr}] = true
		}
		for n, err := range outcomes {
			want := error(nil)
			if n >= 10 && n%10 == 0 {
				want = client.ErrRefused
			}
			if !errors.Is(err, want) {
				t.Fatalf("client %d: outcome of %v = %v, want %v", i, ms[n], err, want)
			}
			if registered[[2]string{strconv.Itoa(int(ms[n].Prog)), ms[n].Addr}] != (want == nil) {
				t.Fatalf("client %d: %v answered %v, table %v", i, ms[n], err, table)
			}
		}
	}
}
