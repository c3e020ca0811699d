package client_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
)

// portmapper runs a portmapper for the examples, made of this module's
// parts: the procedures of pmap.Service on an rpc.Server, serving a local
// socket and TCP and UDP on loopback ports the kernel chose, which it
// returns as udp and tcp addresses. A real one (portmapd or rpcbind)
// listens on port 111 of both and /run/rpcbind.sock, and a program would
// use client.DialLocal to reach it.
func portmapper() (socket, udpAddr, tcpAddr string, stop func()) {
	dir, err := os.MkdirTemp("", "pmap-example-")
	if err != nil {
		panic(err)
	}
	socket = filepath.Join(dir, "rpcbind.sock")
	svc := &pmap.Service{Registry: pmap.NewRegistry()}
	mux := rpc.NewMux()
	svc.Register(mux)
	srv := &rpc.Server{Handler: mux}

	local, err := net.Listen("unix", socket)
	if err != nil {
		panic(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	uaddr := func(port int) string { return fmt.Sprintf("0.0.0.0.%d.%d", port>>8, port&255) }
	svc.AddTransport(rpc.NetidTCP, uaddr(tcp.Addr().(*net.TCPAddr).Port))
	svc.AddTransport(rpc.NetidUDP, uaddr(udp.LocalAddr().(*net.UDPAddr).Port))
	svc.AddTransport(rpc.NetidLocal, socket)
	go srv.ServeStream(local, rpc.NetidLocal)
	go srv.ServeStream(tcp, rpc.NetidTCP)
	go srv.ServeUDP(udp, rpc.NetidUDP)
	return socket, udp.LocalAddr().String(), tcp.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.RemoveAll(dir)
	}
}

// Registering by hand: SET over the local socket, where the portmapper
// learns the caller's uid and records it as the owner.
func ExampleClient_Set() {
	socket, _, _, stop := portmapper()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	// Program 400100 version 1 on UDP port 20048 of every address.
	ok, err := c.Set(ctx, pmap.Mapping{Prog: 400100, Vers: 1, Netid: "udp", Addr: "0.0.0.0.78.80"})
	fmt.Println("registered:", ok, err)
	// SET never overwrites: another address for the same key is refused.
	ok, err = c.Set(ctx, pmap.Mapping{Prog: 400100, Vers: 1, Netid: "udp", Addr: "0.0.0.0.78.81"})
	fmt.Println("again elsewhere:", ok, err)
	// Output:
	// registered: true <nil>
	// again elsewhere: false <nil>
}

// Looking a service up as a remote client does: PMAP version 2 GETPORT,
// here over UDP. Port 0 means not registered.
func ExampleClient_GetPort() {
	socket, udpAddr, _, stop := portmapper()
	defer stop()
	ctx := context.Background()
	local, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer local.Close()
	local.Set(ctx, pmap.Mapping{Prog: 100005, Vers: 3, Netid: "udp", Addr: "0.0.0.0.78.80"})

	udp, err := client.Dial(ctx, "udp", udpAddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer udp.Close()
	p, err := udp.GetPort(ctx, 100005, 3, pmap.ProtoUDP)
	fmt.Println("mountd v3 on udp:", p, err)
	p, err = udp.GetPort(ctx, 100003, 3, pmap.ProtoTCP)
	fmt.Println("nfs v3 on tcp:", p, err)
	// Output:
	// mountd v3 on udp: 20048 <nil>
	// nfs v3 on tcp: 0 <nil>
}

// RPCBIND version 4 GETADDR gives a universal address. For a service
// registered on every address (0.0.0.0) it is the address at which the
// caller reached the portmapper, here the loopback one.
func ExampleClient_GetAddr() {
	socket, _, tcpAddr, stop := portmapper()
	defer stop()
	ctx := context.Background()
	local, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer local.Close()
	local.Set(ctx, pmap.Mapping{Prog: 100005, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.78.80"})

	tcp, err := client.Dial(ctx, "tcp", tcpAddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tcp.Close()
	addr, err := tcp.GetAddr(ctx, 100005, 3, "tcp")
	fmt.Printf("mountd v3 on tcp: %q %v\n", addr, err)
	ap, err := pmap.ParseUaddr(addr)
	fmt.Println("that is", ap, err)
	// Output:
	// mountd v3 on tcp: "127.0.0.1.78.80" <nil>
	// that is 127.0.0.1:20048 <nil>
}

// Listing the table: RPCBIND DUMP gives every netid and owner, PMAP DUMP
// the udp and tcp rows as ports. The portmapper's own rows come first.
func ExampleClient_Dump() {
	socket, _, _, stop := portmapper()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Set(ctx, pmap.Mapping{Prog: 100003, Vers: 4, Netid: "tcp6", Addr: "::.8.1"})
	c.Set(ctx, pmap.Mapping{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1"})

	ms, err := c.Dump(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range ms {
		if m.Prog != pmap.Program {
			fmt.Println(m.Prog, m.Vers, m.Netid, m.Addr)
		}
	}
	rows, err := c.DumpPorts(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rows {
		if r.Prog != pmap.Program {
			fmt.Println(r.Prog, r.Vers, r.Prot, r.Port)
		}
	}
	// Output:
	// 100003 4 tcp6 ::.8.1
	// 100003 3 tcp 0.0.0.0.8.1
	// 100003 3 6 2049
}

// Removing registrations: UNSET with a netid removes that one, with ""
// every netid of the program's version.
func ExampleClient_Unset() {
	socket, _, _, stop := portmapper()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for _, netid := range []string{"udp", "tcp", "udp6"} {
		c.Set(ctx, pmap.Mapping{Prog: 100021, Vers: 4, Netid: netid, Addr: "0.0.0.0.156.65"})
	}
	c.Unset(ctx, 100021, 4, "udp")
	left := func() (n int) {
		ms, _ := c.Dump(ctx)
		for _, m := range ms {
			if m.Prog == 100021 {
				n++
			}
		}
		return n
	}
	fmt.Println("after UNSET udp:", left())
	c.Unset(ctx, 100021, 4, "")
	fmt.Println("after UNSET of every netid:", left())
	// Output:
	// after UNSET udp: 2
	// after UNSET of every netid: 0
}

// A Go RPC service registers itself while it runs: it serves program
// 400123 version 1 over TCP and UDP, registers both addresses when it
// starts and removes them when it stops, as C services do with
// svc_register and svc_unregister.
func ExampleRegister() {
	socket, udpAddr, _, stop := portmapper()
	defer stop()
	ctx := context.Background()

	// The service: a NULL procedure on an ephemeral TCP and UDP port.
	mux := rpc.NewMux()
	mux.Handle(400123, 1, []rpc.Handler{rpc.HandlerFunc(func(*rpc.Reply, *rpc.Call) error { return nil })})
	srv := &rpc.Server{Handler: mux}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ul, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	go srv.ServeStream(tl, rpc.NetidTCP)
	go srv.ServeUDP(ul, rpc.NetidUDP)
	defer srv.Shutdown(ctx)

	pm, err := client.Dial(ctx, "unix", socket)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pm.Close()
	reg, err := client.Register(ctx, pm, 400123, 1, tl.Addr(), ul.LocalAddr())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range reg.Mappings() {
		fmt.Println("registered on", m.Netid)
	}

	// A client finds the service through the portmapper and calls it.
	look, err := client.Dial(ctx, "udp", udpAddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer look.Close()
	p, _ := look.GetPort(ctx, 400123, 1, pmap.ProtoTCP)
	fmt.Println("port is the service's:", int(p) == tl.Addr().(*net.TCPAddr).Port)
	svc, err := client.Dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()
	fmt.Println("NULL call:", svc.CallProgram(ctx, 400123, 1, 0, nil, nil))

	// Stopping, the service unregisters.
	if err := reg.Unregister(ctx); err != nil {
		fmt.Println(err)
	}
	p, _ = look.GetPort(ctx, 400123, 1, pmap.ProtoTCP)
	fmt.Println("port after Unregister:", p)
	// Output:
	// registered on tcp
	// registered on udp
	// port is the service's: true
	// NULL call: <nil>
	// port after Unregister: 0
}
