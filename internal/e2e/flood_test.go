package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs f on an OS thread that has entered the network namespace of
// pid: the sockets f creates belong to that namespace and keep working from
// any goroutine afterwards.
func inNetns(t *testing.T, pid int, f func()) {
	t.Helper()
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns: %v", err)
	}
	defer func() {
		// A thread that cannot go back stays locked and dies with the
		// goroutine, rather than serving others in the wrong namespace.
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	f()
}

func openFDCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// floodResult is what one daemon made of the flood.
type floodResult struct {
	idleKB, peakKB   int
	idleFDs, endFDs  int
	unanswered       []string
	bombs, conns     int
	partialKiBPerCon int
}

// flood is issue 17's TCP flood against the daemon d, on port 111 of its
// namespace: 200 connections that each claim a 2 GiB record, 100 that each
// send 64 KiB of fragments that never end a record, 300 idle ones, and
// rpcbomb datagrams (CVE-2017-8779) throughout; meanwhile and afterwards
// fresh clients over udp, tcp and the local socket must be answered. RSS is
// sampled every 5 ms from idle to the end of the flood.
func flood(t *testing.T, d *Daemon) floodResult {
	pid := daemonPID(t, d)
	ping := NewCall(0xf100d, 100000, 2, 0).Bytes()
	var r floodResult
	check := func(when string) {
		var conns []net.Conn
		inNetns(t, d.NS.Pid(), func() {
			for _, n := range []string{"udp", "tcp"} {
				c, err := net.DialTimeout(n, "127.0.0.1:111", 2*time.Second)
				if err != nil {
					r.unanswered = append(r.unanswered, fmt.Sprintf("%s %s: %v", when, n, err))
					continue
				}
				conns = append(conns, c)
			}
		})
		if c, err := net.DialTimeout("unix", d.NS.HostPath("/run/rpcbind.sock"), 2*time.Second); err == nil {
			conns = append(conns, c)
		} else {
			r.unanswered = append(r.unanswered, fmt.Sprintf("%s local: %v", when, err))
		}
		for _, c := range conns {
			msg := ping
			if _, ok := c.(*net.UDPConn); !ok {
				msg = record(ping)
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 256)
			_, err := c.Write(msg)
			var n int
			if err == nil {
				n, err = c.Read(buf)
			}
			if err != nil || n < 24 {
				r.unanswered = append(r.unanswered, fmt.Sprintf("%s %s: %d bytes, %v", when, c.LocalAddr().Network(), n, err))
			}
			c.Close()
		}
	}
	check("before")
	r.idleKB, r.idleFDs = rssKB(t, pid), openFDCount(pid)
	r.peakKB = r.idleKB
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if kb := rssKB(t, pid); kb > r.peakKB {
				r.peakKB = kb
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	// The connections arrive interleaved, each attacker sending its bytes
	// as soon as it is connected: of every six, two claim a 2 GiB record
	// (with a few bytes of it), one sends 64 KiB of 1 KiB fragments none
	// of which ends the record, three stay idle.
	var held []net.Conn
	var bombConn net.Conn
	var wg sync.WaitGroup
	claim := append(binary.BigEndian.AppendUint32(nil, 0x7fffffff), ping...)
	frag := append(binary.BigEndian.AppendUint32(nil, 1024), make([]byte, 1024)...)
	r.partialKiBPerCon = 64
	inNetns(t, d.NS.Pid(), func() {
		for i := range 600 {
			c, err := net.DialTimeout("tcp", "127.0.0.1:111", 2*time.Second)
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
				break
			}
			held = append(held, c)
			switch i % 6 {
			case 0, 1:
				c.Write(claim)
			case 2:
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					for range 64 {
						if _, err := c.Write(frag); err != nil {
							return // closed by the daemon: fine
						}
					}
				}()
			}
		}
		var err error
		if bombConn, err = net.Dial("udp", "127.0.0.1:111"); err != nil {
			t.Fatal(err)
		}
	})
	r.conns = len(held)
	// rpcbomb datagrams, paced so the socket buffer does not simply drop
	// them, with checks that fresh clients are answered in the middle.
	bombs := rpcbombs()
	for round := range 422 { // 35 kinds: 14,770 datagrams, as in issue 17
		for _, b := range bombs {
			bombConn.Write(b)
			r.bombs++
		}
		time.Sleep(time.Millisecond)
		if round == 211 {
			check("during")
		}
	}
	wg.Wait()
	check("after")
	close(stop)
	sampler.Wait()
	bombConn.Close()
	for _, c := range held {
		c.Close()
	}
	// Descriptors back to idle once the crowd has gone (bounded wait).
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if r.endFDs = openFDCount(pid); r.endFDs <= r.idleFDs {
			break
		}
	}
	return r
}

// TestConnectionFloodMemory is issue 17's flood against portmapd: its RSS
// grows by at most 6 MiB, every fresh client is answered, and its
// descriptors return to their idle count. Bytes held for unfinished
// records are bounded per connection (--max-record, 9,000 bytes, the
// largest portmapper call) and across connections (the oldest partial
// record is evicted first), and buffers grow only with bytes that arrived.
//
// PORTMAPD_E2E_FLOOD_RPCBIND=1 runs the same flood against rpcbind and
// logs its figures, for the README.
func TestConnectionFloodMemory(t *testing.T) {
	specs := []DaemonSpec{Portmapd()}
	if os.Getenv("PORTMAPD_E2E_FLOOD_RPCBIND") == "1" {
		specs = append(specs, Rpcbind())
	}
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			d := StartDaemon(t, spec)
			r := flood(t, d)
			growth := r.peakKB - r.idleKB
			t.Logf("%s: %d connections, %d rpcbomb datagrams: RSS %d kB idle, peak %d kB (growth %.1f MiB); fds %d idle, %d after",
				spec.Name, r.conns, r.bombs, r.idleKB, r.peakKB, float64(growth)/1024, r.idleFDs, r.endFDs)
			for _, u := range r.unanswered {
				t.Errorf("%s: not answered: %s", spec.Name, u)
			}
			if spec.Name != "portmapd" {
				return
			}
			if growth > 6*1024 {
				t.Errorf("RSS grew by %.1f MiB under the flood; the bound is 6 MiB", float64(growth)/1024)
			}
			if r.endFDs > r.idleFDs {
				t.Errorf("%d descriptors open after the flood, %d idle", r.endFDs, r.idleFDs)
			}
			if !d.Alive() {
				t.Errorf("daemon died: %s", d.Stderr())
			}
		})
	}
}

// TestMaxRecordOption: --max-record moves the stream record limit from
// its default of 9,000 bytes, rpcbind's.
func TestMaxRecordOption(t *testing.T) {
	call := NewCall(0x3ec, 100000, 2, 0).Bytes()
	big := record(append(call, make([]byte, 15000-len(call))...))
	for _, tt := range []struct {
		extra  []string
		answer bool
	}{{nil, false}, {[]string{"--max-record", "20000"}, true}} {
		port, _ := startLoopbackDaemon(t, tt.extra...)
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(big)
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		c.Close()
		if got := err == nil && n == 28; got != tt.answer {
			t.Errorf("%v: a 15,000-byte call answered: %v (%d bytes, %v)", tt.extra, got, n, err)
		}
	}
}
