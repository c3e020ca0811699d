package tirpc

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Clnt is a client handle (libtirpc's CLIENT) for one program and
// version at one address. Call returns the status of one call and
// Geterr its details; the controls are the CLSET_/CLGET_ requests
// rpcinfo and rpcb_clnt use.
type Clnt interface {
	Call(proc uint32, args []byte, dec func(*xdr.Decoder) error, timeout time.Duration) Status
	Geterr() RPCErr
	SetVers(uint32)
	SetProg(uint32)
	// SetServer moves a datagram client to another address
	// (CLSET_SVC_ADDR); stream clients refuse.
	SetServer(Taddr) bool
	// SetRetry sets a datagram client's retransmit interval
	// (CLSET_RETRY_TIMEOUT).
	SetRetry(time.Duration)
	Server() Taddr
	Netid() string
	Close()
}

// Size limits of the transports: libtirpc reads a datagram into a buffer
// of UDPMSGSIZE and silently cuts what is longer; a record on a stream
// is capped here (libtirpc has no cap) at what a DUMP of every table
// rpcbind can hold fits in.
const (
	UDPMsgSize = 8800
	maxRecord  = 16 << 20
)

// Default intervals of libtirpc: a datagram is retransmitted every 15
// seconds until the call's total timeout.
const retryInterval = 15 * time.Second

var errDecode = errors.New("tirpc: results do not decode")

// TliCreate is clnt_tli_create with a fresh socket: a stream client
// connects at once (a refused connection is RPC_SYSTEMERROR), a datagram
// client only opens its socket. An address of another family than the
// transport's is RPC_UNKNOWNHOST, as in libtirpc.
func (s *Session) TliCreate(nc Netconf, a Taddr, prog, vers uint32) (Clnt, error) {
	family, stream, ok := nc.Sockinfo()
	if !ok {
		// __rpc_nconf2fd "returns" descriptor 0 for a transport it does
		// not know, and asking standard input for its socket fails so.
		return nil, s.fail(sysErr(syscall.ENOTSOCK))
	}
	if family != a.Family {
		return nil, s.fail(CreateErr{Stat: UnknownHost})
	}
	if s.Transport != nil {
		return s.Transport(nc.Netid, a, prog, vers), nil
	}
	if stream {
		conn, err := s.dial(a)
		if err != nil {
			return nil, s.fail(sysErr(err))
		}
		return &vcClient{s: client.NewStream(conn, maxRecord), id: nc.Netid, addr: a,
			prog: prog, vers: vers, xid: rand.Uint32()}, nil
	}
	pc, err := client.ListenReserved(family == syscall.AF_INET6)
	if err != nil {
		return nil, s.fail(sysErr(err))
	}
	return &dgClient{d: client.NewDatagram(pc, a.IP, UDPMsgSize), id: nc.Netid, addr: a, prog: prog, vers: vers,
		xid: rand.Uint32(), wait: s.Retry()}, nil
}

// dial connects a stream: the local socket, or TCP as libtirpc does
// (client.DialReserved), bounded by the call timeout.
func (s *Session) dial(a Taddr) (net.Conn, error) {
	timeout := s.CallTimeout(60 * time.Second)
	var conn net.Conn
	var err error
	if a.Family == syscall.AF_UNIX {
		conn, err = net.DialTimeout("unix", a.Path, timeout)
	} else {
		conn, err = client.DialReserved(a.IP, timeout)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = syscall.ETIMEDOUT
	}
	return conn, err
}

// vcClient is clnt_vc: calls on a connected stream in records.
type vcClient struct {
	s               *client.Stream
	id              string
	addr            Taddr
	prog, vers, xid uint32
	err             RPCErr
	buf             []byte
}

func (c *vcClient) Geterr() RPCErr         { return c.err }
func (c *vcClient) SetVers(v uint32)       { c.vers = v }
func (c *vcClient) SetProg(p uint32)       { c.prog = p }
func (c *vcClient) SetServer(Taddr) bool   { return false }
func (c *vcClient) SetRetry(time.Duration) {}
func (c *vcClient) Server() Taddr          { return c.addr }
func (c *vcClient) Netid() string          { return c.id }
func (c *vcClient) Close()                 { c.s.Conn().Close() }

// appendCall builds a call after the record mark's room.
func appendCall(b []byte, xid, prog, vers, proc uint32, args []byte) []byte {
	b = append(b[:0], make([]byte, rpc.RecordHeaderLen)...)
	b = rpc.AppendCall(b, xid, prog, vers, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
	return append(b, args...)
}

// call sends one record and reads records until the reply with its xid.
// A record that is not a reply libtirpc can decode is skipped, as
// clnt_vc_call does; the timeout bounds the whole wait.
func (c *vcClient) Call(proc uint32, args []byte, dec func(*xdr.Decoder) error, timeout time.Duration) Status {
	c.xid--
	c.buf = appendCall(c.buf, c.xid, c.prog, c.vers, proc, args)
	c.s.Conn().SetDeadline(time.Now().Add(timeout))
	_, err := c.s.RoundTrip(c.buf, func(rec []byte) bool {
		var ok bool
		c.err, ok = AcceptRecord(rec, c.xid, dec)
		return ok
	})
	switch {
	case err == nil:
	case errors.Is(err, client.ErrSend) && isTimeout(err):
		c.err = RPCErr{Stat: TimedOut}
	case errors.Is(err, client.ErrSend):
		c.err = errnoErr(CantSend, err)
	case isTimeout(err):
		c.err = RPCErr{Stat: TimedOut}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// read_vc reports a premature end of stream as a reset.
		c.err = RPCErr{Stat: CantRecv, S1: int32(syscall.ECONNRESET)}
	case errors.Is(err, rpc.ErrRecordTooLarge), errors.Is(err, rpc.ErrTooManyFrags):
		c.err = RPCErr{Stat: CantDecodeRes}
	default:
		c.err = errnoErr(CantRecv, err)
	}
	return c.err.Stat
}

// AcceptRecord judges a record read for the call with xid, as clnt_vc
// does: ok is false for a record to skip (not a reply it can decode, or
// another call's); otherwise e is the call's outcome.
func AcceptRecord(rec []byte, xid uint32, dec func(*xdr.Decoder) error) (e RPCErr, ok bool) {
	d := xdr.NewDecoder(rec)
	got, e, ok := ParseReply(d)
	if !ok || got != xid {
		return e, false
	}
	if e.Stat == Success && dec != nil && dec(d) != nil {
		e = RPCErr{Stat: CantDecodeRes}
	}
	return e, true
}

// dgClient is clnt_dg: calls in datagrams, retransmitted every wait.
type dgClient struct {
	d               *client.Datagram
	id              string
	addr            Taddr
	prog, vers, xid uint32
	wait            time.Duration
	err             RPCErr
	buf             []byte
}

func (c *dgClient) Geterr() RPCErr   { return c.err }
func (c *dgClient) SetVers(v uint32) { c.vers = v }
func (c *dgClient) SetProg(p uint32) { c.prog = p }
func (c *dgClient) Server() Taddr    { return c.addr }
func (c *dgClient) Netid() string    { return c.id }
func (c *dgClient) Close()           { c.d.Conn().Close() }

func (c *dgClient) SetRetry(d time.Duration) { c.wait = d }

func (c *dgClient) SetServer(a Taddr) bool {
	c.addr = a
	c.d.SetPeer(a.IP)
	return true
}

// call follows clnt_dg_call, including its accounting of time: every
// wake-up without the reply (a stray datagram, a wrong xid) costs the
// whole retransmit interval and sends the call again. So a flood of
// junk ends the call early instead of prolonging it, and the number of
// rounds is bounded by timeout/wait whatever arrives.
func (c *dgClient) Call(proc uint32, args []byte, dec func(*xdr.Decoder) error, timeout time.Duration) Status {
	c.xid++
	c.buf = appendCall(c.buf, c.xid, c.prog, c.vers, proc, args)
	_, err := c.d.RoundTrip(context.Background(), c.buf, client.Retry{Total: timeout, Wait: c.wait, StrayCosts: true},
		func(in []byte) bool {
			var ok bool
			c.err, ok = AcceptDatagram(in, c.xid, dec)
			return ok
		})
	switch {
	case err == nil:
	case errors.Is(err, client.ErrSend):
		c.err = errnoErr(CantSend, err)
	case isTimeout(err):
		c.err = RPCErr{Stat: TimedOut}
	default:
		c.err = errnoErr(CantRecv, err)
	}
	return c.err.Stat
}

// AcceptDatagram judges a datagram received for the call with xid, as
// clnt_dg does: ok is false for one of another call (or too short to
// say), which costs a retransmission; a reply it cannot decode ends the
// call with CANTDECODERES.
func AcceptDatagram(in []byte, xid uint32, dec func(*xdr.Decoder) error) (e RPCErr, ok bool) {
	if len(in) < 4 || uint32(in[0])<<24|uint32(in[1])<<16|uint32(in[2])<<8|uint32(in[3]) != xid {
		return e, false
	}
	d := xdr.NewDecoder(in)
	_, e, ok = ParseReply(d)
	switch {
	case !ok:
		e = RPCErr{Stat: CantDecodeRes}
	case e.Stat == Success && dec != nil && dec(d) != nil:
		e = RPCErr{Stat: CantDecodeRes}
	}
	return e, true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// pkgClient runs rpcinfo's calls over the local socket through the Go
// client package: the socket is the daemon's own, owned by root, so
// libtirpc's tolerance of junk records buys nothing there, and the
// package is what Go programs use to talk to the portmapper.
type pkgClient struct {
	c    *client.Client
	path string
	vers uint32
	err  RPCErr
}

// DialLocal connects to the local portmapper (libtirpc's clnt_vc_create
// on AF_LOCAL): as rpcinfo 1.2.7 and libtirpc 1.3.5 do, first to the
// abstract name, which is this network namespace's portmapper, then, if
// nothing listens there, to the socket path; failing both, rpc_createerr
// says why the path failed.
func (s *Session) DialLocal(vers uint32) (Clnt, error) {
	if s.Transport != nil {
		return s.Transport("local", Taddr{Family: syscall.AF_UNIX, Path: s.Socket}, pmap.Program, vers), nil
	}
	if s.Abstract != "" {
		// A miss on the abstract name leaves rpc_createerr as it was when
		// the path answers: what rpcinfo prints later from a stale error
		// is then what it printed before abstract names were tried.
		saved := s.cerr
		if c, err := s.dialUnix(vers, "@"+strings.TrimPrefix(s.Abstract, "@")); err == nil || s.Socket == "" {
			return c, err
		}
		s.cerr = saved
	}
	return s.dialUnix(vers, s.Socket)
}

// dialUnix connects to one local socket, a path or an abstract name
// written with a leading "@".
func (s *Session) dialUnix(vers uint32, addr string) (Clnt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.CallTimeout(60*time.Second))
	defer cancel()
	c, err := client.Dial(ctx, "unix", addr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			err = syscall.ETIMEDOUT
		}
		return nil, s.fail(sysErr(err))
	}
	return &pkgClient{c: c, path: addr, vers: vers}, nil
}

func (p *pkgClient) Geterr() RPCErr         { return p.err }
func (p *pkgClient) SetVers(v uint32)       { p.vers = v }
func (p *pkgClient) SetProg(uint32)         {}
func (p *pkgClient) SetServer(Taddr) bool   { return false }
func (p *pkgClient) SetRetry(time.Duration) {}
func (p *pkgClient) Server() Taddr          { return Taddr{Family: syscall.AF_UNIX, Path: p.path} }
func (p *pkgClient) Netid() string          { return "local" }
func (p *pkgClient) Close()                 { p.c.Close() }

func (p *pkgClient) Call(proc uint32, args []byte, dec func(*xdr.Decoder) error, timeout time.Duration) Status {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := p.c.CallProgram(ctx, pmap.Program, p.vers, proc, args, func(d *xdr.Decoder) error {
		if dec != nil && dec(d) != nil {
			return errDecode
		}
		return nil
	})
	p.err = StatusOf(err)
	return p.err.Stat
}

// StatusOf maps an error of the client package to the clnt_stat
// libtirpc would have reported for the same event.
func StatusOf(err error) RPCErr {
	var re *rpc.ReplyError
	switch {
	case err == nil:
		return RPCErr{}
	case errors.As(err, &re):
		if re.Denied {
			switch re.Reject {
			case rpc.RPCMismatch:
				return RPCErr{Stat: VersMismatch, S1: int32(re.Low), S2: int32(re.High)}
			case rpc.AuthError:
				return RPCErr{Stat: AuthError, S1: int32(re.Auth)}
			}
			return RPCErr{Stat: Failed, S1: msgDenied, S2: int32(re.Reject)}
		}
		switch re.Accept {
		case rpc.ProgUnavail:
			return RPCErr{Stat: ProgUnavail}
		case rpc.ProgMismatch:
			return RPCErr{Stat: ProgVersMismatch, S1: int32(re.Low), S2: int32(re.High)}
		case rpc.ProcUnavail:
			return RPCErr{Stat: ProcUnavail}
		case rpc.GarbageArgs:
			return RPCErr{Stat: CantDecodeArgs}
		case rpc.SystemErr:
			return RPCErr{Stat: SystemError}
		}
		return RPCErr{Stat: Failed, S1: msgAccepted, S2: int32(re.Accept)}
	case errors.Is(err, errDecode):
		return RPCErr{Stat: CantDecodeRes}
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return RPCErr{Stat: TimedOut}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return RPCErr{Stat: CantRecv, S1: int32(syscall.ECONNRESET)}
	case errors.Is(err, syscall.EPIPE):
		return RPCErr{Stat: CantSend, S1: int32(syscall.EPIPE)}
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return RPCErr{Stat: CantRecv, S1: int32(en)}
	}
	return RPCErr{Stat: CantDecodeRes}
}
