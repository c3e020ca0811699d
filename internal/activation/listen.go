package activation

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// listenFDsStart is SD_LISTEN_FDS_START: systemd passes sockets as the
// descriptors right after stdin, stdout and stderr.
const listenFDsStart = 3

// maxListenFDs bounds LISTEN_FDS. A socket unit lists a handful of
// sockets; a value in the thousands is a broken environment, and looping
// over it would poke at descriptors that are not ours.
const maxListenFDs = 1024

// Netids of the transports a passed socket can serve (RFC 5665 names, as
// in package rpc).
const (
	NetidUDP   = "udp"
	NetidTCP   = "tcp"
	NetidUDP6  = "udp6"
	NetidTCP6  = "tcp6"
	NetidLocal = "local"
)

// ErrUnsupported is wrapped by Sockets' error when systemd passed a
// descriptor the portmapper cannot serve on: not a socket, a unix
// datagram or seqpacket socket, a protocol other than TCP or UDP, or a
// connected stream socket (Accept=yes). The unit is then misconfigured,
// and starting half the transports would hide that.
var ErrUnsupported = errors.New("unsupported socket")

// Socket is one descriptor systemd passed, ready to serve.
type Socket struct {
	// Name comes from LISTEN_FDNAMES (FileDescriptorName= in the socket
	// unit; systemd's default is the unit's name); empty if not given.
	Name string
	// FD is the descriptor number the socket arrived as, for log lines.
	// That descriptor is closed: Listener and UDP hold their own copy.
	FD int
	// Netid is the transport served on it: udp, tcp, udp6, tcp6 or local.
	Netid string
	// DualStack is set for an IPv6 socket with IPV6_V6ONLY off: it also
	// receives IPv4 traffic (from v4-mapped addresses), so it serves the
	// IPv4 netid as well and the daemon must not expect, or bind, a
	// separate IPv4 socket on the same port.
	DualStack bool
	// Abstract is set for a local socket bound to a name in the abstract
	// namespace (ListenStream=@/run/rpcbind.sock): it belongs to the
	// network namespace and has no file. Addr then shows the name with
	// "@" for the leading NUL byte, as the net package writes it.
	Abstract bool
	// Addr is the address the socket is bound to (*net.TCPAddr,
	// *net.UDPAddr or *net.UnixAddr). The net package prints an IPv6
	// socket bound to a v4-mapped address (::ffff:a.b.c.d) as IPv4: go by
	// Netid, not by the look of Addr, for the family.
	Addr net.Addr
	// Listener is set for stream sockets (tcp, tcp6, local).
	Listener net.Listener
	// UDP is set for datagram sockets (udp, udp6).
	UDP *net.UDPConn
}

// Netids lists every netid the socket serves: one, or for a dual-stack
// socket the IPv6 netid followed by the IPv4 one.
func (s Socket) Netids() []string {
	if !s.DualStack {
		return []string{s.Netid}
	}
	switch s.Netid {
	case NetidTCP6:
		return []string{NetidTCP6, NetidTCP}
	case NetidUDP6:
		return []string{NetidUDP6, NetidUDP}
	}
	return []string{s.Netid}
}

// AddrPort returns the bound IP address and port, as the daemon needs them
// for universal addresses; it is invalid for the local socket.
func (s Socket) AddrPort() netip.AddrPort {
	switch a := s.Addr.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// Close closes the socket's listener or connection. For a unix socket the
// file stays: systemd created it and removes it.
func (s Socket) Close() error {
	switch {
	case s.Listener != nil:
		return s.Listener.Close()
	case s.UDP != nil:
		return s.UDP.Close()
	}
	return nil
}

// Sockets returns the sockets systemd passed to this process, in the order
// the socket unit lists them, or nothing when the process was not socket
// activated (LISTEN_PID absent, or naming another process: the variables
// were inherited from an activated parent, and the descriptors are not
// ours).
//
// With unsetEnv the LISTEN_* variables are removed whatever the outcome,
// so a program this process starts does not take the sockets for its own.
// Every passed descriptor is marked close-on-exec before anything else
// for the same reason, then replaced by the copy the returned listener or
// connection owns.
//
// If any descriptor cannot be served (see ErrUnsupported) every one is
// closed and an error naming it is returned.
func Sockets(unsetEnv bool) ([]Socket, error) {
	n, names, err := listenEnv(os.Getenv, os.Getpid())
	if unsetEnv {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}
	if err != nil || n == 0 {
		return nil, err
	}
	for i := range n {
		syscall.CloseOnExec(listenFDsStart + i)
	}
	socks := make([]Socket, 0, n)
	for i := range n {
		fd := listenFDsStart + i
		name := ""
		if names != nil {
			name = names[i]
		}
		s, err := wrap(fd, name)
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			for j := i + 1; j < n; j++ {
				syscall.Close(listenFDsStart + j)
			}
			return nil, err
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// listenEnv reads the LISTEN_* protocol for the process pid: how many
// descriptors were passed and their names (nil when absent or when their
// count is not the descriptors' count: the names only label log lines,
// so a broken list is dropped rather than refused).
func listenEnv(getenv func(string) string, pid int) (int, []string, error) {
	pidStr := getenv("LISTEN_PID")
	if pidStr == "" {
		return 0, nil, nil
	}
	p, err := strconv.Atoi(pidStr)
	if err != nil || p <= 0 {
		return 0, nil, fmt.Errorf("socket activation: LISTEN_PID=%q is not a process id", pidStr)
	}
	if p != pid {
		return 0, nil, nil
	}
	fdsStr := getenv("LISTEN_FDS")
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 0 {
		return 0, nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count", fdsStr)
	}
	if n > maxListenFDs {
		return 0, nil, fmt.Errorf("socket activation: LISTEN_FDS=%d is more than %d", n, maxListenFDs)
	}
	var names []string
	if v := getenv("LISTEN_FDNAMES"); v != "" && n > 0 {
		names = strings.Split(v, ":")
		if len(names) != n {
			names = nil
		}
	}
	return n, names, nil
}

// wrap turns the passed descriptor fd into a Socket. It always consumes
// fd: on success the Socket owns a duplicate and fd is closed, on error fd
// is closed too.
func wrap(fd int, name string) (Socket, error) {
	in, err := classify(fd)
	if err != nil {
		syscall.Close(fd)
		return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q): %w", fd, name, err)
	}
	f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
	defer f.Close()
	s := Socket{Name: name, FD: fd, Netid: in.netid, DualStack: in.dualStack}
	switch in.netid {
	case NetidUDP, NetidUDP6:
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q): %w", fd, name, err)
		}
		u, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q) is a %T: %w", fd, name, pc, ErrUnsupported)
		}
		s.UDP, s.Addr = u, u.LocalAddr()
	default:
		l, err := net.FileListener(f)
		if err != nil {
			return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q): %w", fd, name, err)
		}
		s.Listener, s.Addr = l, l.Addr()
		if ua, ok := s.Addr.(*net.UnixAddr); ok {
			// getsockname's leading NUL comes back as "@" (and a path
			// that systemd binds is absolute, so never starts so).
			s.Abstract = strings.HasPrefix(ua.Name, "@")
		}
	}
	return s, nil
}
