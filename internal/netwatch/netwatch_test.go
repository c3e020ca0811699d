package netwatch

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/nstest"
)

// attr is one rtattr for building messages by hand.
type attr struct {
	typ  uint16
	data []byte
}

// addrMsg builds an rtnetlink RTM_NEWADDR/RTM_DELADDR message as the kernel
// lays it out: nlmsghdr, ifaddrmsg, then 4-byte aligned attributes.
func addrMsg(typ uint16, family, prefix, flags byte, index uint32, attrs ...attr) []byte {
	body := []byte{family, prefix, flags, 0}
	body = binary.NativeEndian.AppendUint32(body, index)
	for _, a := range attrs {
		l := 4 + len(a.data)
		body = binary.NativeEndian.AppendUint16(body, uint16(l))
		body = binary.NativeEndian.AppendUint16(body, a.typ)
		body = append(body, a.data...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	hdr := binary.NativeEndian.AppendUint32(nil, uint32(syscall.NLMSG_HDRLEN+len(body)))
	hdr = binary.NativeEndian.AppendUint16(hdr, typ)
	hdr = binary.NativeEndian.AppendUint16(hdr, 0)
	hdr = binary.NativeEndian.AppendUint32(hdr, 0)
	hdr = binary.NativeEndian.AppendUint32(hdr, 0)
	return append(hdr, body...)
}

func ip(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestParseMessagesReadsAddressChanges(t *testing.T) {
	const v4, v6 = syscall.AF_INET, syscall.AF_INET6
	tests := []struct {
		name string
		msg  []byte
		want []Event
	}{
		{"an IPv4 address added",
			addrMsg(syscall.RTM_NEWADDR, v4, 24, 0, 2, attr{syscall.IFA_ADDRESS, ip("192.0.2.1")}, attr{syscall.IFA_LOCAL, ip("192.0.2.1")}),
			[]Event{{Added: true, Addr: netip.MustParseAddr("192.0.2.1"), Index: 2, PrefixLen: 24}}},
		{"an IPv4 address removed",
			addrMsg(syscall.RTM_DELADDR, v4, 24, 0, 2, attr{syscall.IFA_LOCAL, ip("192.0.2.1")}),
			[]Event{{Addr: netip.MustParseAddr("192.0.2.1"), Index: 2, PrefixLen: 24}}},
		{"point-to-point: IFA_LOCAL is ours, IFA_ADDRESS the peer's",
			addrMsg(syscall.RTM_NEWADDR, v4, 32, 0, 7, attr{syscall.IFA_ADDRESS, ip("10.8.0.1")}, attr{syscall.IFA_LOCAL, ip("10.8.0.2")}),
			[]Event{{Added: true, Addr: netip.MustParseAddr("10.8.0.2"), Index: 7, PrefixLen: 32}}},
		{"IPv6 has IFA_ADDRESS only",
			addrMsg(syscall.RTM_NEWADDR, v6, 64, 0, 3, attr{syscall.IFA_ADDRESS, ip("2001:db8::1")}),
			[]Event{{Added: true, Addr: netip.MustParseAddr("2001:db8::1"), Index: 3, PrefixLen: 64}}},
		{"tentative in ifaddrmsg's flags",
			addrMsg(syscall.RTM_NEWADDR, v6, 64, syscall.IFA_F_TENTATIVE, 3, attr{syscall.IFA_ADDRESS, ip("2001:db8::1")}),
			[]Event{{Added: true, Addr: netip.MustParseAddr("2001:db8::1"), Index: 3, PrefixLen: 64, Tentative: true}}},
		{"IFA_FLAGS overrides the 8-bit flags",
			addrMsg(syscall.RTM_NEWADDR, v6, 64, syscall.IFA_F_TENTATIVE, 3, attr{syscall.IFA_ADDRESS, ip("2001:db8::1")}, attr{ifaFlags, u32(0x200)}),
			[]Event{{Added: true, Addr: netip.MustParseAddr("2001:db8::1"), Index: 3, PrefixLen: 64}}},
		{"DAD failed counts as tentative",
			addrMsg(syscall.RTM_NEWADDR, v6, 64, 0, 3, attr{syscall.IFA_ADDRESS, ip("2001:db8::1")}, attr{ifaFlags, u32(syscall.IFA_F_DADFAILED)}),
			[]Event{{Added: true, Addr: netip.MustParseAddr("2001:db8::1"), Index: 3, PrefixLen: 64, Tentative: true}}},
		{"two messages in one datagram",
			append(addrMsg(syscall.RTM_DELADDR, v4, 8, 0, 1, attr{syscall.IFA_LOCAL, ip("10.0.0.1")}),
				addrMsg(syscall.RTM_DELADDR, v6, 128, 0, 1, attr{syscall.IFA_ADDRESS, ip("fd00::1")})...),
			[]Event{{Addr: netip.MustParseAddr("10.0.0.1"), Index: 1, PrefixLen: 8},
				{Addr: netip.MustParseAddr("fd00::1"), Index: 1, PrefixLen: 128}}},
		{"a link message is not an address change",
			addrMsg(syscall.RTM_NEWLINK, v4, 0, 0, 1), nil},
		{"an address of the wrong length for its family",
			addrMsg(syscall.RTM_NEWADDR, v4, 24, 0, 2, attr{syscall.IFA_LOCAL, ip("2001:db8::1")}), nil},
		{"no address at all", addrMsg(syscall.RTM_NEWADDR, v4, 24, 0, 2), nil},
		{"another family", addrMsg(syscall.RTM_NEWADDR, syscall.AF_PACKET, 0, 0, 2, attr{syscall.IFA_ADDRESS, ip("10.0.0.1")}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMessages(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseMessagesSurvivesTruncation(t *testing.T) {
	msg := addrMsg(syscall.RTM_NEWADDR, syscall.AF_INET, 24, 0, 2, attr{syscall.IFA_LOCAL, ip("192.0.2.1")})
	for n := range len(msg) {
		parseMessages(msg[:n]) // must not panic; errors and no events are fine
	}
}

// TestWatchInNamespace adds and removes addresses in a private network
// namespace and checks the events. It runs again in a namespace of its
// own, so the host's interfaces are never touched.
func TestWatchInNamespace(t *testing.T) {
	if !nstest.Inside(t, "ip") {
		return
	}

	run := func(t *testing.T, args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Logf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return err
	}
	if err := run(t, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// expect waits for the event about addr, skipping others (bringing
	// links up announces link-local and loopback addresses too).
	expect := func(t *testing.T, added bool, addr string, index int, tentative bool) {
		t.Helper()
		want := netip.MustParseAddr(addr)
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e, ok := <-w.Events():
				if !ok {
					t.Fatalf("events closed: %v", w.Err())
				}
				if e.Addr != want || e.Added != added || e.Tentative != tentative {
					t.Logf("(skipping %v)", e)
					continue
				}
				if e.Index != index {
					t.Fatalf("%v: want interface %d", e, index)
				}
				t.Logf("got %v", e)
				return
			case <-timeout:
				t.Fatalf("no event: added=%v %s tentative=%v", added, addr, tentative)
			}
		}
	}

	t.Run("IPv4 on lo", func(t *testing.T) {
		if run(t, "addr", "add", "192.0.2.10/24", "dev", "lo") != nil {
			t.Fatal("ip addr add failed")
		}
		expect(t, true, "192.0.2.10", lo.Index, false)
		run(t, "addr", "del", "192.0.2.10/24", "dev", "lo")
		expect(t, false, "192.0.2.10", lo.Index, false)
	})
	t.Run("IPv6 on lo", func(t *testing.T) {
		if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
			t.Skip("IPv6 is disabled")
		}
		if run(t, "-6", "addr", "add", "2001:db8::10/64", "dev", "lo") != nil {
			t.Fatal("ip addr add failed")
		}
		expect(t, true, "2001:db8::10", lo.Index, false) // loopback skips DAD: final at once
		run(t, "-6", "addr", "del", "2001:db8::10/64", "dev", "lo")
		expect(t, false, "2001:db8::10", lo.Index, false)
	})
	t.Run("IPv6 duplicate address detection on a veth pair", func(t *testing.T) {
		if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
			t.Skip("IPv6 is disabled")
		}
		if run(t, "link", "add", "pmw0", "type", "veth", "peer", "name", "pmw1") != nil {
			t.Skip("no veth support here")
		}
		defer run(t, "link", "del", "pmw0")
		run(t, "link", "set", "pmw1", "up")
		run(t, "link", "set", "pmw0", "up")
		if run(t, "-6", "addr", "add", "2001:db8:1::1/64", "dev", "pmw0") != nil {
			t.Fatal("ip addr add failed")
		}
		ifc, err := net.InterfaceByName("pmw0")
		if err != nil {
			t.Fatal(err)
		}
		expect(t, true, "2001:db8:1::1", ifc.Index, true)
		expect(t, true, "2001:db8:1::1", ifc.Index, false) // DAD done, about a second later
	})
	cancel()
	for range w.Events() { // drained and closed once the context ends
	}
	if err := w.Err(); err != nil {
		t.Errorf("Err after cancel: %v", err)
	}
}

func TestWatchStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-drained(w):
	case <-time.After(5 * time.Second):
		t.Fatal("events not closed 5s after the context ended")
	}
	if w.Err() != nil {
		t.Errorf("Err: %v", w.Err())
	}
}

func drained(w *Watcher) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range w.Events() {
		}
		close(done)
	}()
	return done
}
