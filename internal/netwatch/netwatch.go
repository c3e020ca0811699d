package netwatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Multicast groups of rtnetlink (linux/rtnetlink.h), missing from the
// syscall package.
const (
	rtmgrpIPv4IfAddr = 0x10
	rtmgrpIPv6IfAddr = 0x100
)

// ifaFlags is the IFA_FLAGS attribute: the address flags in 32 bits, where
// ifaddrmsg has room for only the low 8.
const ifaFlags = 8

// recvBuffer is asked for so that a burst (an interface going down takes
// all its addresses with it) is not lost; the kernel caps it at
// net.core.rmem_max. A loss is reported as an Event with Lost set.
const recvBuffer = 1 << 20

// Event is one address change.
type Event struct {
	// Added is true for an address that appeared (or changed: the kernel
	// announces a change, such as the end of duplicate address
	// detection, as another RTM_NEWADDR), false for one that went away.
	Added bool
	// Addr is the interface's own address (IFA_LOCAL, which differs from
	// IFA_ADDRESS on point-to-point links), without a zone. A link-local
	// IPv6 address needs Index as its zone to be bound.
	Addr netip.Addr
	// Index is the interface index (net.InterfaceByIndex).
	Index int
	// PrefixLen is the length of the address's prefix.
	PrefixLen int
	// Tentative is set for an IPv6 address whose duplicate address
	// detection has not finished (or failed): binding it fails with
	// EADDRNOTAVAIL until an Event for it arrives without Tentative.
	Tentative bool
	// Lost reports that the kernel dropped messages (the socket's buffer
	// overflowed): the other fields are empty, and the daemon should
	// list the interfaces' addresses again.
	Lost bool
}

func (e Event) String() string {
	switch {
	case e.Lost:
		return "events lost"
	case e.Added && e.Tentative:
		return fmt.Sprintf("added %s/%d (tentative) on interface %d", e.Addr, e.PrefixLen, e.Index)
	case e.Added:
		return fmt.Sprintf("added %s/%d on interface %d", e.Addr, e.PrefixLen, e.Index)
	}
	return fmt.Sprintf("removed %s/%d from interface %d", e.Addr, e.PrefixLen, e.Index)
}

// Watcher delivers address changes.
type Watcher struct {
	events chan Event
	err    error
}

// Watch subscribes to address changes in the caller's network namespace.
// The subscription is in place when Watch returns, so a daemon that lists
// the current addresses (net.Interfaces) after calling it misses nothing:
// an address added in between is both listed and announced, and handling
// an Event must therefore be idempotent. Events flow until ctx ends.
func Watch(ctx context.Context) (*Watcher, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netwatch: %w", os.NewSyscallError("socket", err))
	}
	sa := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: rtmgrpIPv4IfAddr | rtmgrpIPv6IfAddr}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netwatch: %w", os.NewSyscallError("bind", err))
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, recvBuffer) // best effort
	// A non-blocking descriptor in an os.File is served by the runtime's
	// poller, so the read below parks the goroutine rather than a thread,
	// and a deadline can interrupt it when ctx ends.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	w := &Watcher{events: make(chan Event, 64)}
	go w.run(ctx, f)
	return w, nil
}

// Events is closed when the context ends or reading fails (see Err).
func (w *Watcher) Events() <-chan Event { return w.events }

// Err returns why Events was closed: nil when the context ended. Call it
// only after Events is closed.
func (w *Watcher) Err() error { return w.err }

func (w *Watcher) run(ctx context.Context, f *os.File) {
	defer close(w.events)
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		w.err = fmt.Errorf("netwatch: %w", err)
		return
	}
	buf := make([]byte, 64<<10) // larger than any one datagram rtnetlink sends
	for {
		var n int
		var from syscall.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = syscall.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, syscall.EAGAIN)
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = rerr
		}
		switch {
		case errors.Is(err, syscall.ENOBUFS):
			if !w.send(ctx, Event{Lost: true}) {
				return
			}
			continue
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			w.err = fmt.Errorf("netwatch: receive: %w", err)
			return
		}
		if nl, ok := from.(*syscall.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not from the kernel
		}
		events, err := parseMessages(buf[:n])
		if err != nil {
			continue // a malformed datagram is dropped, not fatal
		}
		for _, e := range events {
			if !w.send(ctx, e) {
				return
			}
		}
	}
}

func (w *Watcher) send(ctx context.Context, e Event) bool {
	select {
	case w.events <- e:
		return true
	case <-ctx.Done():
		return false
	}
}

// parseMessages turns one rtnetlink datagram into Events, skipping
// messages of other types and addresses of other families.
func parseMessages(b []byte) ([]Event, error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, err
	}
	var out []Event
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWADDR && m.Header.Type != syscall.RTM_DELADDR {
			continue
		}
		if len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		// struct ifaddrmsg: family, prefixlen, flags, scope (one byte
		// each), then the interface index in host order.
		family, prefixLen, flags := m.Data[0], m.Data[1], uint32(m.Data[2])
		index := binary.NativeEndian.Uint32(m.Data[4:8])
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			continue
		}
		var local, address []byte
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.IFA_LOCAL:
				local = a.Value
			case syscall.IFA_ADDRESS:
				address = a.Value
			case ifaFlags:
				if len(a.Value) == 4 {
					flags = binary.NativeEndian.Uint32(a.Value)
				}
			}
		}
		raw := local
		if raw == nil {
			raw = address // IPv6 sends IFA_ADDRESS alone
		}
		addr, ok := netip.AddrFromSlice(raw)
		if !ok || (family == syscall.AF_INET) != addr.Is4() || (family != syscall.AF_INET && family != syscall.AF_INET6) {
			continue
		}
		out = append(out, Event{
			Added:     m.Header.Type == syscall.RTM_NEWADDR,
			Addr:      addr,
			Index:     int(index),
			PrefixLen: int(prefixLen),
			Tentative: flags&(syscall.IFA_F_TENTATIVE|syscall.IFA_F_DADFAILED) != 0,
		})
	}
	return out, nil
}
