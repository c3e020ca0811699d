package activation_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/portmapd/portmapd/internal/activation"
	"github.com/portmapd/portmapd/internal/lockfile"
	"github.com/portmapd/portmapd/internal/metrics"
	"github.com/portmapd/portmapd/internal/netwatch"
	"github.com/portmapd/portmapd/rpc"
)

// Example shows a daemon's start-up with these packages: the lock first,
// then the sockets (systemd's, or its own), metrics, the address watcher,
// and readiness and the watchdog once everything is served. (Compiled, not
// run: it would take port 111.)
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	lock, err := lockfile.Acquire(lockfile.DefaultPath)
	if err != nil {
		log.Fatal(err) // "another portmapd is already running: portmapd (pid 812) holds ..."
	}
	defer lock.Release()

	socks, err := activation.Sockets(true)
	if err != nil {
		log.Fatal(err)
	}
	if socks == nil { // not socket activated: bind our own
		if _, err := net.ListenPacket("udp4", "0.0.0.0:111"); err != nil {
			if users, _ := lockfile.PortUsers(111, "udp"); users != nil {
				err = fmt.Errorf("%w (port 111 is in use by %s)", err, lockfile.Describe(users))
			}
			log.Fatal(err)
		}
	}
	for _, s := range socks {
		for _, netid := range s.Netids() { // a dual-stack socket serves two
			fmt.Println("serving", netid, "on", s.Addr)
		}
		// s.UDP or s.Listener goes to the RPC server under s.Netid.
	}

	m := metrics.New(metrics.Options{Registrations: func() int { return 0 }})
	if l, err := metrics.Listen("127.0.0.1:9111", false); err == nil {
		go m.Serve(ctx, l)
	}
	m.Call(2, 3, "udp", rpc.OutcomeSuccess) // in the RPC server, after each reply

	if w, err := netwatch.Watch(ctx); err == nil {
		go func() {
			for e := range w.Events() {
				fmt.Println(e) // bind or close the socket for e.Addr if --host names it
			}
		}()
	}

	notify, _ := activation.NewNotifier(true)
	interval, _ := activation.WatchdogInterval(true)
	notify.Ready()
	notify.Status("serving")
	go notify.RunWatchdog(ctx, interval, func() error {
		return nil // an error here when a serving loop has died
	})

	<-ctx.Done()
	notify.Stopping()
}
