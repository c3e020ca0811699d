package daemontest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/portmapd/portmapd/internal/activation"
	"github.com/portmapd/portmapd/rpc"
)

// maxHandover bounds the descriptors one handover carries.
const maxHandover = 8

// Handover lends socks to the processes a test starts, as systemd lends
// a socket unit's sockets to every start of its service: each process
// that connects to the returned path (a unix socket in the test's
// temporary directory) receives copies of their descriptors, and takes
// them with TakeSockets. The test keeps the originals, so a daemon that
// is stopped and started again serves the same ports, and none of them
// is ever free for another test to take.
func Handover(tb testing.TB, socks ...interface{ File() (*os.File, error) }) string {
	tb.Helper()
	if len(socks) > maxHandover {
		tb.Fatalf("%d sockets to hand over; at most %d", len(socks), maxHandover)
	}
	var fds []int
	for _, s := range socks {
		f, err := s.File()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { f.Close() })
		fds = append(fds, int(f.Fd()))
	}
	path := filepath.Join(tb.TempDir(), "handover")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rights := unix.UnixRights(fds...)
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return // closed at the end of the test
			}
			// A failed handover fails the spawned daemon's start, which
			// the test sees.
			_, _, _ = c.WriteMsgUnix([]byte{byte(len(fds))}, rights, nil)
			c.Close()
		}
	}()
	tb.Cleanup(func() { l.Close(); <-done })
	return path
}

// TakeSockets is the started process's side of Handover: the sockets
// lent at path, ready for daemon.Config.Sockets. The netid follows the
// socket: tcp or udp (tcp6, udp6 for IPv6), local for a unix socket.
func TakeSockets(path string) ([]activation.Socket, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4*maxHandover))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("handover: %d control messages: %w", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	if n != 1 || int(buf[0]) != len(fds) {
		return nil, fmt.Errorf("handover: %d descriptors, %d announced", len(fds), buf[0])
	}
	var socks []activation.Socket
	for _, fd := range fds {
		s, err := takeSocket(fd)
		if err != nil {
			return nil, errors.Join(err, closeAll(socks))
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// takeSocket wraps one received descriptor, which it closes: the net
// package keeps a copy of its own.
func takeSocket(fd int) (activation.Socket, error) {
	f := os.NewFile(uintptr(fd), "handed-over socket")
	defer f.Close()
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return activation.Socket{}, err
	}
	if typ == unix.SOCK_DGRAM {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return activation.Socket{}, err
		}
		u, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return activation.Socket{}, fmt.Errorf("handover: a %T, not UDP", pc)
		}
		netid := rpc.NetidUDP
		if u.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
			netid = rpc.NetidUDP6
		}
		return activation.Socket{Netid: netid, Addr: u.LocalAddr(), UDP: u}, nil
	}
	l, err := net.FileListener(f)
	if err != nil {
		return activation.Socket{}, err
	}
	netid := rpc.NetidLocal
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		netid = rpc.NetidTCP
		if a.IP.To4() == nil {
			netid = rpc.NetidTCP6
		}
	}
	return activation.Socket{Netid: netid, Addr: l.Addr(), Listener: l}, nil
}

func closeAll(socks []activation.Socket) error {
	var errs []error
	for _, s := range socks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
