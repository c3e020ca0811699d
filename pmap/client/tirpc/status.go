package tirpc

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Status is libtirpc's enum clnt_stat: rpcinfo's messages are chosen by
// it, so the numbers are kept.
type Status int

// The statuses rpcinfo can meet.
const (
	Success          Status = 0
	CantEncodeArgs   Status = 1
	CantDecodeRes    Status = 2
	CantSend         Status = 3
	CantRecv         Status = 4
	TimedOut         Status = 5
	VersMismatch     Status = 6
	AuthError        Status = 7
	ProgUnavail      Status = 8
	ProgVersMismatch Status = 9
	ProcUnavail      Status = 10
	CantDecodeArgs   Status = 11
	SystemError      Status = 12
	UnknownHost      Status = 13
	PmapFailure      Status = 14
	ProgNotReg       Status = 15
	Failed           Status = 16
	UnknownProto     Status = 17
	UnknownAddr      Status = 19
	N2AXlateFailure  Status = 22
)

// statusText is libtirpc's rpc_errlist; statuses past its end print as
// an unknown code (RPC_N2AXLATEFAILURE among them, which is how rpcinfo
// reports a host name that does not resolve).
var statusText = [...]string{
	"RPC: Success",
	"RPC: Can't encode arguments",
	"RPC: Can't decode result",
	"RPC: Unable to send",
	"RPC: Unable to receive",
	"RPC: Timed out",
	"RPC: Incompatible versions of RPC",
	"RPC: Authentication error",
	"RPC: Program unavailable",
	"RPC: Program/version mismatch",
	"RPC: Procedure unavailable",
	"RPC: Server can't decode arguments",
	"RPC: Remote system error",
	"RPC: Unknown host",
	"RPC: Port mapper failure",
	"RPC: Program not registered",
	"RPC: Failed (unspecified error)",
	"RPC: Unknown protocol",
}

// String is clnt_sperrno.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusText) {
		return statusText[s]
	}
	return "RPC: (unknown error code)"
}

var authText = [...]string{
	"Authentication OK",
	"Invalid client credential",
	"Server rejected credential",
	"Invalid client verifier",
	"Server rejected verifier",
	"Client credential too weak",
	"Invalid server verifier",
	"Failed (unspecified error)",
}

// RPCErr is libtirpc's struct rpc_err. Its detail is a C union: errno,
// the auth_stat, the version range and two longs share storage, so a
// field set as one is read back as another exactly as in C.
type RPCErr struct {
	Stat   Status
	S1, S2 int32
}

// Errno, Low and High read the detail as the errno of CANTSEND and
// CANTRECV, and as the version range of a mismatch.
func (e RPCErr) Errno() syscall.Errno { return syscall.Errno(uint32(e.S1)) }
func (e RPCErr) Low() uint32          { return uint32(e.S1) }
func (e RPCErr) High() uint32         { return uint32(e.S2) }

func errnoErr(stat Status, err error) RPCErr {
	return RPCErr{Stat: stat, S1: int32(errnoOf(err))}
}

// errnoOf digs the errno out of a Go network error; errors without one
// (a closed connection seen as io.EOF, say) map to what the C library
// would have seen.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// Sperror is clnt_sperror: the prefix, the status and its detail.
func (e RPCErr) Sperror(prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(": ")
	b.WriteString(e.Stat.String())
	switch e.Stat {
	case Success, CantEncodeArgs, CantDecodeRes, TimedOut, ProgUnavail, ProcUnavail, CantDecodeArgs,
		SystemError, UnknownHost, UnknownProto, PmapFailure, ProgNotReg, Failed:
	case CantSend, CantRecv:
		b.WriteString("; errno = " + strerror(e.Errno()))
	case VersMismatch, ProgVersMismatch:
		fmt.Fprintf(&b, "; low version = %d, high version = %d", e.Low(), e.High())
	case AuthError:
		b.WriteString("; why = ")
		if w := uint32(e.S1); w < uint32(len(authText)) {
			b.WriteString(authText[w])
		} else {
			fmt.Fprintf(&b, "(unknown authentication error - %d)", e.S1)
		}
	default:
		fmt.Fprintf(&b, "; s1 = %d, s2 = %d", uint32(e.S1), uint32(e.S2))
	}
	return truncate(b.String())
}

// CreateErr is libtirpc's rpc_createerr: why a client handle could not
// be made, with the error of the call that failed inside (cf_error).
type CreateErr struct {
	Stat   Status
	Detail RPCErr
}

// Error is clnt_spcreateerror with libtirpc's own prefix.
func (c CreateErr) Error() string { return c.Spcreateerror("rpc") }

func sysErr(err error) CreateErr {
	return CreateErr{Stat: SystemError, Detail: RPCErr{S1: int32(errnoOf(err))}}
}

// Spcreateerror is clnt_spcreateerror.
func (c CreateErr) Spcreateerror(prefix string) string {
	s := prefix + ": " + c.Stat.String()
	switch c.Stat {
	case PmapFailure:
		s += " - " + strings.TrimPrefix(c.Detail.Stat.String(), "RPC: ")
		if c.Detail.Stat == CantSend || c.Detail.Stat == CantRecv {
			s += fmt.Sprintf(": errno %d (%s)", c.Detail.S1, strerror(c.Detail.Errno()))
		}
	case SystemError:
		s += " - " + strerror(c.Detail.Errno())
	}
	return truncate(s)
}

// truncate keeps a message within libtirpc's 256-byte error buffer.
func truncate(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}

// strerror is glibc's text for errno; Go's own table has the same words
// but lower-case, and a few names differ.
func strerror(en syscall.Errno) string {
	switch en {
	case 0:
		return "Success"
	case syscall.EAGAIN:
		return "Resource temporarily unavailable"
	case syscall.ECONNREFUSED:
		return "Connection refused"
	case syscall.ECONNRESET:
		return "Connection reset by peer"
	case syscall.ENOENT:
		return "No such file or directory"
	case syscall.ETIMEDOUT:
		return "Connection timed out"
	case syscall.EHOSTUNREACH:
		return "No route to host"
	case syscall.ENETUNREACH:
		return "Network is unreachable"
	case syscall.EACCES:
		return "Permission denied"
	case syscall.EPERM:
		return "Operation not permitted"
	case syscall.EINVAL:
		return "Invalid argument"
	case syscall.EAFNOSUPPORT:
		return "Address family not supported by protocol"
	case syscall.EADDRNOTAVAIL:
		return "Cannot assign requested address"
	case syscall.EPIPE:
		return "Broken pipe"
	case syscall.EMSGSIZE:
		return "Message too long"
	case syscall.EIO:
		return "Input/output error"
	case syscall.ENOTCONN:
		return "Transport endpoint is not connected"
	case syscall.EPROTO:
		return "Protocol error"
	}
	s := en.Error()
	if s == "" || strings.HasPrefix(s, "errno ") {
		return fmt.Sprintf("Unknown error %d", int32(en))
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
