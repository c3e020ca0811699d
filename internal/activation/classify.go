package activation

import (
	"errors"
	"fmt"
	"syscall"
)

// ipprotoMPTCP is IPPROTO_MPTCP: a stream socket that speaks TCP to peers
// that do not know MPTCP (SocketProtocol=mptcp in a socket unit).
const ipprotoMPTCP = 262

// sockInfo is what the kernel says about a passed descriptor.
type sockInfo struct {
	family, sotype, proto int
	netid                 string
	dualStack             bool
}

// classify asks the kernel what fd is. The unit file is not trusted for
// this: an administrator's drop-in may change ListenStream= lines, and
// BindIPv6Only= or the net.ipv6.bindv6only sysctl decide whether an IPv6
// socket is dual-stack.
func classify(fd int) (sockInfo, error) {
	var in sockInfo
	var err error
	in.family, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	if err != nil {
		if errors.Is(err, syscall.ENOTSOCK) || errors.Is(err, syscall.EBADF) {
			return in, fmt.Errorf("not a socket: %w", ErrUnsupported)
		}
		// SO_DOMAIN needs Linux 2.6.32; the bound address carries the
		// family too.
		sa, gerr := syscall.Getsockname(fd)
		if gerr != nil {
			return in, fmt.Errorf("getsockname: %w", gerr)
		}
		switch sa.(type) {
		case *syscall.SockaddrInet4:
			in.family = syscall.AF_INET
		case *syscall.SockaddrInet6:
			in.family = syscall.AF_INET6
		case *syscall.SockaddrUnix:
			in.family = syscall.AF_UNIX
		default:
			return in, fmt.Errorf("socket address %T: %w", sa, ErrUnsupported)
		}
	}
	if in.sotype, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil {
		return in, fmt.Errorf("getsockopt SO_TYPE: %w", err)
	}
	if in.proto, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_PROTOCOL); err != nil {
		return in, fmt.Errorf("getsockopt SO_PROTOCOL: %w", err)
	}
	switch in.family {
	case syscall.AF_INET, syscall.AF_INET6:
		v6 := in.family == syscall.AF_INET6
		switch {
		case in.sotype == syscall.SOCK_STREAM && (in.proto == syscall.IPPROTO_TCP || in.proto == ipprotoMPTCP):
			in.netid = pick(v6, NetidTCP6, NetidTCP)
			if err := mustListen(fd); err != nil {
				return in, err
			}
		case in.sotype == syscall.SOCK_DGRAM && in.proto == syscall.IPPROTO_UDP:
			in.netid = pick(v6, NetidUDP6, NetidUDP)
		default:
			return in, fmt.Errorf("IP socket of type %d, protocol %d: %w", in.sotype, in.proto, ErrUnsupported)
		}
		if v6 {
			only, err := syscall.GetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY)
			if err != nil {
				return in, fmt.Errorf("getsockopt IPV6_V6ONLY: %w", err)
			}
			in.dualStack = only == 0
		}
	case syscall.AF_UNIX:
		// The portmapper's local transport is a stream socket (libtirpc
		// connects to /run/rpcbind.sock with SOCK_STREAM), bound to a path
		// or to a name in the abstract namespace (a leading NUL byte:
		// ListenStream=@/run/rpcbind.sock); both serve netid local.
		if in.sotype != syscall.SOCK_STREAM {
			return in, fmt.Errorf("unix socket of type %d (only stream sockets serve netid local): %w", in.sotype, ErrUnsupported)
		}
		in.netid = NetidLocal
		if err := mustListen(fd); err != nil {
			return in, err
		}
	default:
		return in, fmt.Errorf("address family %d: %w", in.family, ErrUnsupported)
	}
	return in, nil
}

// mustListen refuses a stream socket that is not listening: with
// Accept=yes systemd passes one connection per process, which a daemon
// that keeps a registry in memory cannot work with.
func mustListen(fd int) error {
	on, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	if err != nil {
		return fmt.Errorf("getsockopt SO_ACCEPTCONN: %w", err)
	}
	if on == 0 {
		return fmt.Errorf("stream socket is not listening (Accept=yes is not supported): %w", ErrUnsupported)
	}
	return nil
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}
