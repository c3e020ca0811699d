package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
)

func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestSustainedMixedLoad drives a daemon for about 40 seconds with every
// version over UDP, TCP and the local socket, lookups mixed with SET and
// UNSET churn, and requires no error, no descriptor left behind and flat
// memory. Bounded in time and in calls per client.
func TestSustainedMixedLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a 40-second load")
	}
	port, sock := startLoopbackDaemon(t)
	pid := daemonPid(t, port)
	// ctx only says when the run is over; each call has its own timeout,
	// so a call in flight at the end is not mistaken for a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	call := context.Background()

	warm := func() {
		// A short run first, so that memory is measured after the
		// daemon's buffers and pools exist.
		c, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 200 {
			c.Dump(ctx)
		}
	}
	warm()
	fds, rss := countFDs(t, pid), rssKB(t, pid)

	var calls, failures atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	var wg sync.WaitGroup
	type transport struct{ network, address, netid string }
	transports := []transport{
		{"udp", fmt.Sprintf("127.0.0.1:%d", port), "udp"},
		{"tcp", fmt.Sprintf("127.0.0.1:%d", port), "tcp"},
		{"udp", fmt.Sprintf("[::1]:%d", port), "udp6"},
		{"tcp", fmt.Sprintf("[::1]:%d", port), "tcp6"},
		{"unix", sock, "local"},
	}
	for i, tr := range transports {
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Reconnect now and then, so connections churn too.
				for round := 0; ctx.Err() == nil && round < 1000; round++ {
					c, err := client.Dial(call, tr.network, tr.address)
					if err != nil {
						fail(err)
						return
					}
					// Generous: this test is about errors and leaks, and
					// a loaded CI machine can delay a datagram for
					// seconds; the client retransmits meanwhile.
					c.Timeout = 20 * time.Second
					prog := uint32(0x30000000 + i*1000 + k*100)
					for n := uint32(0); n < 200 && ctx.Err() == nil; n++ {
						m := pmap.Mapping{Prog: prog + n%50, Vers: 1, Netid: tr.netid, Addr: fmt.Sprintf("0.0.0.0.%d.%d", 40+n%50, n%256)}
						var err error
						switch n % 8 {
						case 0:
							_, err = c.Set(call, m)
						case 1:
							_, err = c.Unset(call, m.Prog, m.Vers, m.Netid)
						case 2:
							_, err = c.GetPort(call, prog+n%50, 1, pmap.ProtoUDP)
						case 3:
							_, err = c.GetAddr(call, prog+n%50, 1, tr.netid)
						case 4:
							if tr.network != "udp" {
								_, err = c.Dump(call)
							}
						case 5:
							_, err = c.DumpPorts(call)
						case 6:
							err = c.Null(call, 4)
						case 7:
							_, err = c.GetPort(call, 0x3fffffff-n, 1, pmap.ProtoTCP) // never registered
						}
						if err != nil {
							fail(fmt.Errorf("%s %s: %w", tr.network, tr.address, err))
						}
						calls.Add(1)
					}
					c.Close()
				}
			}()
		}
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed; first: %v", n, calls.Load(), firstErr.Load())
	}
	if calls.Load() < 10000 {
		t.Fatalf("only %d calls in the run", calls.Load())
	}
	// Connections close asynchronously: give the daemon a moment.
	var afterFDs int
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if afterFDs = countFDs(t, pid); afterFDs <= fds || time.Now().After(end) {
			break
		}
	}
	afterRSS := rssKB(t, pid)
	t.Logf("%d calls; descriptors %d → %d; RSS %d kB → %d kB", calls.Load(), fds, afterFDs, rss, afterRSS)
	if afterFDs > fds {
		t.Errorf("descriptors grew from %d to %d", fds, afterFDs)
	}
	if afterRSS-rss > 16*1024 {
		t.Errorf("RSS grew by %d kB", afterRSS-rss)
	}
}
