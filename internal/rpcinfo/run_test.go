package rpcinfo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/daemon"
	"github.com/portmapd/portmapd/internal/daemontest"
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
)

func run(t *testing.T, socket string, args ...string) (string, string, int) {
	t.Helper()
	var o, e bytes.Buffer
	code := Run(args, Options{Stdout: &o, Stderr: &e, Socket: socket})
	return o.String(), e.String(), code
}

func TestAgainstPortmapd(t *testing.T) {
	port, socket := daemontest.Start(t)
	n := fmt.Sprint(port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.Set(ctx, pmap.Mapping{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1"}); !ok || err != nil {
		t.Fatalf("SET: %v %v", ok, err)
	}

	t.Run("listing over the local socket", func(t *testing.T) {
		out, errs, code := run(t, socket)
		if code != 0 || errs != "" || !strings.Contains(out, "    100003    3    tcp       0.0.0.0.8.1            nfs        superuser\n") {
			t.Errorf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("-p at -n PORT", func(t *testing.T) {
		out, errs, code := run(t, socket, "-n", n, "-p", "127.0.0.1")
		if code != 0 || !strings.Contains(out, fmt.Sprintf("    100000    2   tcp%7d  portmapper\n", port)) ||
			!strings.Contains(out, "    100003    3   tcp   2049  nfs\n") {
			t.Errorf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("-n PORT without a host asks 127.0.0.1", func(t *testing.T) {
		out, errs, code := run(t, "/nonexistent", "-n", n, "-s")
		if code != 0 || !strings.Contains(out, "    100003  3         tcp") {
			t.Errorf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, errs, code := run(t, socket, "--json", "-m")
		var res StatResult
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
			t.Fatalf("%v exit %d\n%s%s", err, code, out, errs)
		}
		if res.Query != "stat" || len(res.Versions) != 3 || res.Versions[1].Set != 1 || res.Versions[1].Calls["SET"] != 1 {
			t.Errorf("%+v", res)
		}
	})
	t.Run("several hosts at once", func(t *testing.T) {
		out, errs, code := run(t, socket, "--json", "-n", n, "--host", "127.0.0.1,127.0.0.1", "-T", "tcp", "--", "100000", "-1")
		var res []PingResult
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || len(res) != 2 {
			t.Fatalf("%v exit %d\n%s%s", err, code, out, errs)
		}
		for _, r := range res {
			if r.Host != "127.0.0.1" || len(r.Pings) != 1 || r.Pings[0].Ready ||
				r.Pings[0].Error != "RPC: Program/version mismatch; low version = 2, high version = 4" {
				t.Errorf("%+v", r)
			}
		}
	})
	t.Run("-d through the local socket", func(t *testing.T) {
		if out, errs, code := run(t, socket, "-d", "nfs", "3"); code != 0 || out != "" || errs != "" {
			t.Fatalf("exit %d %q %q", code, out, errs)
		}
		out, _, _ := run(t, socket)
		if strings.Contains(out, "100003") {
			t.Errorf("still registered:\n%s", out)
		}
	})
	t.Run("no local socket", func(t *testing.T) {
		_, errs, code := run(t, "/nonexistent/sock", "-p")
		if code != 1 || errs != "rpcinfo: can't contact portmapper: RPC: Remote system error - No such file or directory\n" {
			t.Errorf("exit %d %q", code, errs)
		}
	})
}

func TestDeleteAtPort(t *testing.T) {
	port, socket := daemontest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Registered through TCP from loopback, the entry belongs to
	// "unknown" (or "superuser" from a reserved port), which -n's TCP
	// UNSET from loopback may remove.
	tcp, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if ok, err := tcp.Set(ctx, pmap.Mapping{Prog: 400500, Vers: 1, Netid: "udp", Addr: "0.0.0.0.39.16"}); !ok || err != nil {
		t.Fatalf("SET: %v %v", ok, err)
	}
	if out, errs, code := run(t, "/nonexistent", "-n", fmt.Sprint(port), "-d", "400500", "1"); code != 0 {
		t.Fatalf("exit %d %q %q", code, out, errs)
	}
	if p, _ := c.GetPort(ctx, 400500, 1, pmap.ProtoUDP); p != 0 {
		t.Errorf("still registered at %d", p)
	}
}

// -n PORT with -u or -t calls the service at that port directly, as
// rpcinfo(8) documents and rpcinfo 1.2.x does not do: here no portmapper
// knows the program at all.
func TestPortOptionPingsTheServiceDirectly(t *testing.T) {
	mux := rpc.NewMux()
	mux.Handle(400700, 2, []rpc.Handler{rpc.HandlerFunc(func(*rpc.Reply, *rpc.Call) error { return nil })})
	srv := &rpc.Server{Handler: mux}
	// One port for both: the UDP port the kernel picks may be taken on
	// TCP by a parallel test, so a few picks are tried.
	var pc net.PacketConn
	var l net.Listener
	var port int
	for try := 0; l == nil; try++ {
		var err error
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = pc.LocalAddr().(*net.UDPAddr).Port
		if l, err = net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	go srv.ServeUDP(pc.(*net.UDPConn), "udp")
	go srv.ServeStream(l, "tcp")
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	for _, mode := range []string{"-u", "-t"} {
		out, errs, code := run(t, "/nonexistent", "-n", fmt.Sprint(port), mode, "127.0.0.1", "400700", "2")
		if code != 0 || out != "program 400700 version 2 ready and waiting\n" {
			t.Errorf("%s: %q %q exit %d", mode, out, errs, code)
		}
	}
	out, _, code := run(t, "/nonexistent", "-n", fmt.Sprint(port), "-u", "127.0.0.1", "400700")
	if code != 0 || out != "program 400700 version 2 ready and waiting\n" {
		t.Errorf("version range over -n: %q exit %d", out, code)
	}
}

// --port-range names the registrations a firewall opening 111 and that
// range would cut off, on stderr, leaving rpcinfo's output as it is. The
// portmapper's own rows (here on a port outside the range) are not named.
func TestPortRangeNamesRegistrationsOutside(t *testing.T) {
	port, socket := daemontest.Start(t)
	// The kernel's ephemeral ports (32768 and up) are outside 1-30000.
	ownOutside := port > 30000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []pmap.Mapping{
		{Prog: 400800, Vers: 1, Netid: "udp", Addr: "0.0.0.0.117.48"}, // 30000
		{Prog: 400801, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.156.64"}, // 40000
	} {
		if ok, err := c.Set(ctx, m); !ok || err != nil {
			t.Fatalf("SET %v: %v %v", m, ok, err)
		}
	}
	plainOut, _, _ := run(t, socket, "-p")
	for _, args := range [][]string{{"-p"}, {}} {
		out, errs, code := run(t, socket, append([]string{"--port-range", "1-30000"}, args...)...)
		if code != 0 || !strings.Contains(errs, "program 400801 version 1 on tcp uses port 40000, outside the port range 1-30000") ||
			strings.Contains(errs, "400800") || (ownOutside && strings.Contains(errs, "program 100000")) {
			t.Errorf("%v: exit %d, stderr:\n%s", args, code, errs)
		}
		if len(args) == 1 && out != plainOut {
			t.Errorf("--port-range changed -p's output:\n%s\nwant\n%s", out, plainOut)
		}
	}
	if _, errs, _ := run(t, socket, "--port-range", "1-65535", "-p"); errs != "" {
		t.Errorf("nothing is outside 1-65535, yet: %s", errs)
	}
}

// TestLocalTriesTheAbstractNameFirst: rpcinfo 1.2.7 (and libtirpc 1.3.5)
// connect to the abstract name first, the portmapper of this network
// namespace, and to the socket path only when nothing listens there.
func TestLocalTriesTheAbstractNameFirst(t *testing.T) {
	name := fmt.Sprintf("@portmapd-rpcinfo-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	_, withName := daemontest.StartWith(t, daemon.Config{AbstractSocket: name})
	_, pathOnly := daemontest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "unix", withName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.Set(ctx, pmap.Mapping{Prog: 200001, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.2"}); !ok || err != nil {
		t.Fatalf("SET: %v %v", ok, err)
	}
	const row = "    200001    1    tcp       0.0.0.0.8.2            -          superuser\n"
	nowhere := "@portmapd-rpcinfo-test-nothing-listens"
	tests := []struct {
		name     string
		o        Options
		args     []string
		reachesA bool
	}{
		{"the abstract name answers: asked first", Options{Socket: pathOnly, AbstractSocket: name}, nil, true},
		{"nothing on the abstract name: the path", Options{Socket: pathOnly, AbstractSocket: nowhere}, nil, false},
		{"the name without its @", Options{Socket: pathOnly, AbstractSocket: name[1:]}, nil, true},
		{"--abstract-socket", Options{Socket: pathOnly}, []string{"--abstract-socket", name}, true},
		{"--socket alone means that socket", Options{Socket: pathOnly, AbstractSocket: name}, []string{"--socket", pathOnly}, false},
		{"--socket keeps a named --abstract-socket", Options{Socket: pathOnly},
			[]string{"--abstract-socket=" + name, "--socket", pathOnly}, true},
		{"an empty --abstract-socket: the path", Options{Socket: pathOnly, AbstractSocket: name}, []string{"--abstract-socket="}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o, e bytes.Buffer
			tt.o.Stdout, tt.o.Stderr = &o, &e
			if code := Run(tt.args, tt.o); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, o.String(), e.String())
			}
			if got := strings.Contains(o.String(), row); got != tt.reachesA {
				t.Errorf("reached the daemon on the abstract name: %v, want %v\n%s", got, tt.reachesA, o.String())
			}
		})
	}
	t.Run("neither answers: the path's error", func(t *testing.T) {
		var o, e bytes.Buffer
		code := Run(nil, Options{Socket: "/nonexistent/rpcbind.sock", AbstractSocket: nowhere, Stdout: &o, Stderr: &e})
		if code != 1 || !strings.Contains(e.String(), "No such file or directory") {
			t.Errorf("exit %d\n%s%s", code, o.String(), e.String())
		}
	})
}
