package activation

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// sockSpec describes a socket the tests create with plain system calls,
// the way systemd does, rather than through the net package.
type sockSpec struct {
	family, sotype, proto int
	sa                    syscall.Sockaddr
	v6only                int // -1: leave the kernel default
	listen                bool
}

func makeSocket(t *testing.T, s sockSpec) int {
	t.Helper()
	fd, err := syscall.Socket(s.family, s.sotype|syscall.SOCK_CLOEXEC, s.proto)
	if err != nil {
		if s.family == syscall.AF_INET6 && errors.Is(err, syscall.EAFNOSUPPORT) {
			t.Skip("IPv6 is not available here")
		}
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if s.v6only >= 0 && s.family == syscall.AF_INET6 {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, s.v6only); err != nil {
			t.Fatalf("IPV6_V6ONLY: %v", err)
		}
	}
	if s.sa != nil {
		if err := syscall.Bind(fd, s.sa); err != nil {
			if s.family == syscall.AF_INET6 && errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Skip("no IPv6 loopback address here")
			}
			t.Fatalf("bind: %v", err)
		}
	}
	if s.listen {
		if err := syscall.Listen(fd, 8); err != nil {
			t.Fatalf("listen: %v", err)
		}
	}
	return fd
}

// Addresses on loopback only: lo6 is ::1, mapped4 is ::ffff:127.0.0.1,
// which an IPv6 socket may bind only when it is not IPV6_V6ONLY and which
// then receives IPv4 traffic for 127.0.0.1 (what dual-stack means,
// without binding a wildcard address on the host).
var (
	lo4     = &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	lo6     = &syscall.SockaddrInet6{Addr: [16]byte{15: 1}}
	mapped4 = &syscall.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}}
)

const noV6only = 0

func TestClassifyNamesTheNetidFromTheKernel(t *testing.T) {
	dir := t.TempDir()
	unixAddr := func(name string) syscall.Sockaddr {
		return &syscall.SockaddrUnix{Name: filepath.Join(dir, name)}
	}
	tests := []struct {
		name      string
		spec      sockSpec
		netid     string
		dualStack bool
	}{
		{"IPv4 TCP listener serves tcp",
			sockSpec{syscall.AF_INET, syscall.SOCK_STREAM, 0, lo4, -1, true}, NetidTCP, false},
		{"IPv4 UDP socket serves udp",
			sockSpec{syscall.AF_INET, syscall.SOCK_DGRAM, 0, lo4, -1, false}, NetidUDP, false},
		{"IPv6-only TCP listener serves tcp6 alone",
			sockSpec{syscall.AF_INET6, syscall.SOCK_STREAM, 0, lo6, 1, true}, NetidTCP6, false},
		{"IPv6-only UDP socket serves udp6 alone",
			sockSpec{syscall.AF_INET6, syscall.SOCK_DGRAM, 0, lo6, 1, false}, NetidUDP6, false},
		{"IPv6 TCP listener without V6ONLY is dual-stack",
			sockSpec{syscall.AF_INET6, syscall.SOCK_STREAM, 0, mapped4, noV6only, true}, NetidTCP6, true},
		{"IPv6 UDP socket without V6ONLY is dual-stack",
			sockSpec{syscall.AF_INET6, syscall.SOCK_DGRAM, 0, mapped4, noV6only, false}, NetidUDP6, true},
		{"unix stream listener serves local",
			sockSpec{syscall.AF_UNIX, syscall.SOCK_STREAM, 0, unixAddr("s"), -1, true}, NetidLocal, false},
		{"unbound UDP socket still serves udp",
			sockSpec{syscall.AF_INET, syscall.SOCK_DGRAM, 0, nil, -1, false}, NetidUDP, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := makeSocket(t, tt.spec)
			in, err := classify(fd)
			if err != nil {
				t.Fatalf("classify: %v", err)
			}
			if in.netid != tt.netid || in.dualStack != tt.dualStack {
				t.Errorf("got netid %q dual-stack %v, want %q %v", in.netid, in.dualStack, tt.netid, tt.dualStack)
			}
		})
	}
}

func TestClassifyRefusesWhatThePortmapperCannotServe(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		spec sockSpec
	}{
		{"a TCP socket that is not listening (Accept=yes)",
			sockSpec{syscall.AF_INET, syscall.SOCK_STREAM, 0, lo4, -1, false}},
		{"a unix datagram socket",
			sockSpec{syscall.AF_UNIX, syscall.SOCK_DGRAM, 0, &syscall.SockaddrUnix{Name: filepath.Join(dir, "d")}, -1, false}},
		{"a unix seqpacket listener",
			sockSpec{syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0, &syscall.SockaddrUnix{Name: filepath.Join(dir, "q")}, -1, true}},
		{"a raw IP socket",
			sockSpec{syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP, nil, -1, false}},
		{"a netlink socket",
			sockSpec{syscall.AF_NETLINK, syscall.SOCK_RAW, syscall.NETLINK_ROUTE, nil, -1, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.spec.sotype == syscall.SOCK_RAW && tt.spec.family == syscall.AF_INET && os.Geteuid() != 0 {
				t.Skip("raw sockets need root")
			}
			fd := makeSocket(t, tt.spec)
			_, err := classify(fd)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("classify: got %v, want ErrUnsupported", err)
			}
		})
	}
	t.Run("a pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		if _, err := classify(int(r.Fd())); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("classify: got %v, want ErrUnsupported", err)
		}
	})
}
