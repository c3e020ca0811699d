package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
)

// On loopback: portmapd in the test, and services that answer, refuse,
// mismatch or hang. The e2e tests build real networks with firewalls.

// service serves program 400300 versions 1 and 2, and 400301 with an
// AUTH_ERROR, over TCP and UDP on one loopback port.
func service(t *testing.T) int {
	t.Helper()
	mux := rpc.NewMux()
	null := []rpc.Handler{rpc.HandlerFunc(func(*rpc.Reply, *rpc.Call) error { return nil })}
	mux.Handle(400300, 1, null)
	mux.Handle(400300, 2, null)
	mux.Handle(400301, 1, []rpc.Handler{rpc.HandlerFunc(func(*rpc.Reply, *rpc.Call) error {
		return rpc.AuthErr(rpc.AuthTooWeak)
	})})
	tl, ul := daemontest.PortPair(t, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	daemontest.ServeRPC(t, mux, tl, ul)
	return tl.Addr().(*net.TCPAddr).Port
}

// hanging accepts connections and reads them without ever answering.
func hanging(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func register(t *testing.T, socket string, prog, vers uint32, netid string, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := pmap.Mapping{Prog: prog, Vers: vers, Netid: netid, Addr: fmt.Sprintf("127.0.0.1.%d.%d", port>>8, port&255)}
	if ok, err := c.Set(ctx, m); !ok || err != nil {
		t.Fatalf("SET %v: %v %v", m, ok, err)
	}
}

func TestVerdicts(t *testing.T) {
	pm, socket := daemontest.Start(t)
	svc := service(t)
	hang := hanging(t)
	closed := daemontest.ClosedPort(t)
	for _, netid := range []string{"tcp", "udp"} {
		register(t, socket, 400300, 1, netid, svc)
		register(t, socket, 400300, 2, netid, svc)
		register(t, socket, 400301, 1, netid, svc)
		register(t, socket, 400303, 1, netid, closed)
	}
	register(t, socket, 400302, 1, "tcp", hang)
	register(t, socket, 400304, 1, "udp", svc) // only over UDP

	noSuchHost := func(context.Context, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}
	}
	for _, c := range []struct {
		name  string
		cfg   Config
		class Class
		last  string // the last step's detail
	}{
		{"the portmapper answers", Config{Host: "127.0.0.1"}, OK, "answers"},
		{"a service answers", Config{Host: "127.0.0.1", Prog: 400300, HasProg: true, Vers: 2, HasVers: true}, OK, "answers"},
		{"without a version the highest is called", Config{Host: "127.0.0.1", Prog: 400300, HasProg: true}, OK,
			"version 2 answers (the service has versions 1 to 2)"},
		{"a name that does not resolve", Config{Host: "x.invalid", Lookup: noSuchHost}, Unresolved, "does not resolve"},
		{"nothing on the portmapper's port", Config{Host: "127.0.0.1", Port: closed}, PortmapperRefused, "refused"},
		{"a program not registered", Config{Host: "127.0.0.1", Prog: 400399, HasProg: true}, NotRegistered, "not registered"},
		{"registered on UDP only", Config{Host: "127.0.0.1", Prog: 400304, HasProg: true, Protos: []string{"tcp"}}, NotRegistered,
			"not registered on tcp (only on udp)"},
		{"a version the service lacks", Config{Host: "127.0.0.1", Prog: 400300, HasProg: true, Vers: 7, HasVers: true},
			VersionMismatch, "version mismatch: the service has versions 1 to 2"},
		{"an auth error", Config{Host: "127.0.0.1", Prog: 400301, HasProg: true, Vers: 1, HasVers: true}, AuthFailed,
			"authentication error: credential too weak"},
		{"the service is down", Config{Host: "127.0.0.1", Prog: 400303, HasProg: true, Protos: []string{"udp"}}, ServiceRefused, "refused"},
		{"the service hangs", Config{Host: "127.0.0.1", Prog: 400302, HasProg: true, Vers: 1, HasVers: true, Protos: []string{"tcp"},
			Timeout: 300 * time.Millisecond}, ServiceTimeout, "connected, but no answer within 300ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.cfg.Port == 0 {
				c.cfg.Port = pm
			}
			if c.cfg.Timeout == 0 {
				c.cfg.Timeout = 2 * time.Second
			}
			rep := Run(context.Background(), c.cfg)
			last := rep.Steps[len(rep.Steps)-1]
			if Class(rep.Verdict.Code) != c.class || rep.Verdict.Name != c.class.String() || last.Detail != c.last {
				var b bytes.Buffer
				rep.WriteText(&b)
				t.Errorf("verdict %s, last step %q; want %s, %q\n%s", rep.Verdict.Name, last.Detail, c.class, c.last, b.String())
			}
		})
	}
}

func TestReportFormats(t *testing.T) {
	pm, socket := daemontest.Start(t)
	register(t, socket, 400300, 1, "tcp", daemontest.ClosedPort(t))
	rep := Run(context.Background(), Config{Host: "127.0.0.1", Port: pm, Prog: 400300, HasProg: true, Vers: 1, HasVers: true,
		Protos: []string{"tcp"}, Timeout: time.Second})
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^ok   resolve           127\.0\.0\.1: an address \[[0-9.]+ms\]
ok   portmapper   tcp  127\.0\.0\.1:[0-9]+: answers \[[0-9.]+ms\]
ok   registration tcp  program 400300 version 1: at 127\.0\.0\.1\.[0-9]+\.[0-9]+ \(port [0-9]+\) \[[0-9.]+ms\]
FAIL port         tcp  127\.0\.0\.1:[0-9]+: refused \[[0-9.]+ms\]
verdict: service-refused \(exit 7\): program 400300 is registered at tcp port [0-9]+, but nothing listens there: the service is down
remedy: restart the service; .*
$`)
	if !want.MatchString(text.String()) {
		t.Errorf("text:\n%s", text.String())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Host    string
		Prog    uint32
		Vers    uint32
		Steps   []Step
		Verdict Verdict
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Host != "127.0.0.1" || back.Prog != 400300 || back.Vers != 1 || len(back.Steps) != 4 ||
		back.Steps[3].Status != StatusFail || back.Verdict.Code != 7 {
		t.Errorf("%s", js.String())
	}
}

// With a port range, a registration outside it is named in the
// registration step: the firewall that opens 111 and that range would drop
// the service's traffic.
func TestPortRangeIsNamed(t *testing.T) {
	pm, socket := daemontest.Start(t)
	svc := service(t)
	register(t, socket, 400300, 1, "tcp", svc)
	for _, c := range []struct {
		low, high uint16
		outside   bool
	}{{1, 1023, svc >= 1024}, {uint16(svc), uint16(svc), false}} {
		rep := Run(context.Background(), Config{Host: "127.0.0.1", Port: pm, Prog: 400300, HasProg: true, Vers: 1, HasVers: true,
			Protos: []string{"tcp"}, Timeout: 2 * time.Second, Ports: &pmap.PortRange{Low: uint32(c.low), High: uint32(c.high)}})
		var reg *Step
		for i := range rep.Steps {
			if rep.Steps[i].Name == "registration" {
				reg = &rep.Steps[i]
			}
		}
		if reg == nil {
			t.Fatal("no registration step")
		}
		if got := strings.Contains(reg.Detail, "outside the port range"); got != c.outside {
			t.Errorf("range %d-%d, port %d: %q", c.low, c.high, svc, reg.Detail)
		}
	}
}
