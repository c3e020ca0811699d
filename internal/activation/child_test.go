package activation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as an activated daemon instead of
// running tests: it calls Sockets, reports what it got as one JSON line,
// and proves each socket works by exchanging a message with itself.
const childEnv = "PORTMAPD_ACTIVATION_CHILD"

// reportPrefix marks the report line among whatever else reaches stdout.
const reportPrefix = "ACTIVATION-REPORT "

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

type childReport struct {
	Err     string
	EnvLeft []string // LISTEN_* variables still set after Sockets(true)
	Leaky   []int    // descriptors above 2 an exec would inherit
	Open    int      // sockets open after Sockets, before serving (not counting inherited ones)
	Sockets []childSocket
}

type childSocket struct {
	Name, Netid, Addr string
	FD                int
	DualStack         bool
	Abstract          bool
	Netids            []string
	Exchanges         []string // "<target> ok" or "<target> <error>"
}

func childMain() int {
	// Descriptors this process inherited from whoever ran the tests (a
	// shell, a CI runner) are not Sockets' business; the passed ones are.
	foreign := map[int]bool{}
	passed, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	for _, fd := range inheritableFDs() {
		if fd < listenFDsStart || fd >= listenFDsStart+passed {
			foreign[fd] = true
		}
	}
	socks, err := Sockets(true)
	rep := childReport{}
	if err != nil {
		rep.Err = err.Error()
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			rep.EnvLeft = append(rep.EnvLeft, k)
		}
	}
	for _, fd := range inheritableFDs() {
		if !foreign[fd] {
			rep.Leaky = append(rep.Leaky, fd)
		}
	}
	rep.Open = openSockets(foreign)
	for _, s := range socks {
		cs := childSocket{Name: s.Name, Netid: s.Netid, Addr: s.Addr.String(), FD: s.FD,
			DualStack: s.DualStack, Abstract: s.Abstract, Netids: s.Netids()}
		cs.Exchanges = selfCheck(s)
		rep.Sockets = append(rep.Sockets, cs)
		s.Close()
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("%s%s\n", reportPrefix, b)
	return 0
}

// inheritableFDs lists open descriptors above stderr without FD_CLOEXEC.
func inheritableFDs() []int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return []int{-1}
	}
	var out []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == 0 && flags&syscall.FD_CLOEXEC == 0 {
			out = append(out, fd)
		}
	}
	return out
}

// openSockets counts descriptors that are sockets, leaving out foreign.
func openSockets(foreign map[int]bool) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || foreign[fd] {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// selfCheck serves the socket in one goroutine and talks to it from
// another, once per address that should reach it: the bound address (with
// loopback standing in for a wildcard) and, for a dual-stack socket,
// IPv4 loopback as well.
func selfCheck(s Socket) []string {
	targets := dialTargets(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveEcho(ctx, s, len(targets))
	}()
	var out []string
	for i, tg := range targets {
		msg := fmt.Sprintf("ping %d", i)
		if err := exchange(tg[0], tg[1], msg); err != nil {
			out = append(out, tg[0]+" "+tg[1]+" "+err.Error())
		} else {
			out = append(out, tg[0]+" "+tg[1]+" ok")
		}
	}
	cancel()
	<-done
	return out
}

func dialTargets(s Socket) [][2]string {
	if s.Netid == NetidLocal {
		return [][2]string{{"unix", s.Addr.String()}}
	}
	ap, err := netip.ParseAddrPort(s.Addr.String())
	if err != nil {
		return [][2]string{{"bad-address", s.Addr.String()}}
	}
	kind := "tcp"
	if s.UDP != nil {
		kind = "udp"
	}
	port := ap.Port()
	v4 := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	var out [][2]string
	add := func(a netip.Addr, net string) {
		out = append(out, [2]string{kind + net, netip.AddrPortFrom(a, port).String()})
	}
	switch a := ap.Addr(); {
	case a.Is4In6():
		add(a.Unmap(), "4") // only IPv4 reaches a v4-mapped address
	case a.Is4() && a.IsUnspecified():
		add(v4, "4")
	case a.Is4():
		add(a, "4")
	case a.IsUnspecified():
		add(netip.IPv6Loopback(), "6")
		if s.DualStack {
			add(v4, "4")
		}
	default:
		add(a, "6")
	}
	return out
}

// serveEcho answers "ping N" with "pong N" until it has answered want of
// them or ctx ends. Anything else (the connection or datagram that made
// systemd-socket-activate start us) is read and ignored.
func serveEcho(ctx context.Context, s Socket, want int) {
	deadline, _ := ctx.Deadline()
	buf := make([]byte, 128)
	answered := 0
	if s.UDP != nil {
		s.UDP.SetReadDeadline(deadline)
		for answered < want && ctx.Err() == nil {
			n, from, err := s.UDP.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if rest, ok := strings.CutPrefix(string(buf[:n]), "ping "); ok {
				s.UDP.WriteToUDPAddrPort([]byte("pong "+rest), from)
				answered++
			}
		}
		return
	}
	if d, ok := s.Listener.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(deadline)
	}
	for answered < want && ctx.Err() == nil {
		c, err := s.Listener.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		n, _ := c.Read(buf)
		if rest, ok := strings.CutPrefix(string(buf[:n]), "ping "); ok {
			c.Write([]byte("pong " + rest))
			answered++
		}
		c.Close()
	}
}

func exchange(network, addr, msg string) error {
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, 128)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if want := "pong " + strings.TrimPrefix(msg, "ping "); string(buf[:n]) != want {
		return fmt.Errorf("got %q, want %q", buf[:n], want)
	}
	return nil
}

// parseReport finds the child's report in its standard output.
func parseReport(t *testing.T, out []byte) childReport {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), reportPrefix); ok {
			var rep childReport
			if err := json.Unmarshal([]byte(line), &rep); err != nil {
				t.Fatalf("report %q: %v", line, err)
			}
			return rep
		}
	}
	t.Fatalf("no report in the child's output:\n%s", out)
	return childReport{}
}

// checkSockets compares the report with what the parent passed, in order.
func checkSockets(t *testing.T, rep childReport, want []childSocket) {
	t.Helper()
	if rep.Err != "" {
		t.Fatalf("child: Sockets: %s", rep.Err)
	}
	if len(rep.EnvLeft) != 0 {
		t.Errorf("child: %v still set after Sockets(true)", rep.EnvLeft)
	}
	if len(rep.Leaky) != 0 {
		t.Errorf("child: descriptors %v would leak into an exec", rep.Leaky)
	}
	if len(rep.Sockets) != len(want) {
		t.Fatalf("child got %d sockets, want %d: %+v", len(rep.Sockets), len(want), rep.Sockets)
	}
	if rep.Open != len(want) {
		t.Errorf("child has %d sockets open, want exactly the %d it serves", rep.Open, len(want))
	}
	for i, w := range want {
		g := rep.Sockets[i]
		t.Logf("fd %d %-8q %-5s dual=%-5v at %-28s %v", g.FD, g.Name, g.Netid, g.DualStack, g.Addr, g.Exchanges)
		if g.FD != 3+i || g.Name != w.Name || g.Netid != w.Netid || g.DualStack != w.DualStack || g.Abstract != w.Abstract ||
			strings.Join(g.Netids, ",") != strings.Join(w.Netids, ",") || (w.Addr != "" && g.Addr != w.Addr) {
			t.Errorf("socket %d: got fd %d %q %s dual=%v %v at %s, want fd %d %q %s dual=%v %v at %s", i,
				g.FD, g.Name, g.Netid, g.DualStack, g.Netids, g.Addr, 3+i, w.Name, w.Netid, w.DualStack, w.Netids, w.Addr)
		}
		if len(g.Exchanges) == 0 {
			t.Errorf("socket %d (%s): nothing exchanged", i, g.Netid)
		}
		for _, e := range g.Exchanges {
			if !strings.HasSuffix(e, " ok") {
				t.Errorf("socket %d (%s): exchange failed: %s", i, g.Netid, e)
			}
		}
	}
}
