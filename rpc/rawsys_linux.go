package rpc

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fast accept path's system calls on its non-blocking descriptors are
// made without telling the scheduler (RawSyscall): none of them can block,
// and telling it costs every call two transitions of the runtime and, when
// a call is slow to return under load, a hand-off of the processor to
// another thread.

// The calls return the Errno itself (0 for none), which callers compare
// with the few that matter here (EAGAIN, EINTR).

func rawRead(fd int, b []byte) (int, unix.Errno)  { return rawIO(unix.SYS_READ, fd, b) }
func rawWrite(fd int, b []byte) (int, unix.Errno) { return rawIO(unix.SYS_WRITE, fd, b) }

// rawIO is read or write, as trap says.
func rawIO(trap uintptr, fd int, b []byte) (int, unix.Errno) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// socketPeerUID returns the uid of the process at the other end of local
// socket fd (SO_PEERCRED), or -1 when the kernel does not say. The
// credentials are read into the caller's stack, not into a fresh
// allocation as syscall.GetsockoptUcred would.
func socketPeerUID(fd int) int {
	var cred unix.Ucred
	n := uint32(unsafe.Sizeof(cred))
	_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERCRED,
		uintptr(unsafe.Pointer(&cred)), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 || n != uint32(unsafe.Sizeof(cred)) {
		return -1
	}
	return int(cred.Uid)
}

func rawClose(fd int) {
	// Nothing to do about a failed close of a socket: the descriptor is
	// released either way.
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

func rawEpollCtl(ep, op, fd int, ev *unix.EpollEvent) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(ep), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
