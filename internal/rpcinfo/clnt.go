package rpcinfo

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

// clnt is a client handle (libtirpc's CLIENT) for one program and
// version at one address. call returns the status of one call and
// geterr its details; the controls are the CLSET_/CLGET_ requests
// rpcinfo and rpcb_clnt use.
type clnt interface {
	call(proc uint32, args []byte, dec func(*xdrReader) bool, timeout time.Duration) Status
	geterr() rpcErr
	setVers(uint32)
	setProg(uint32)
	// setServer moves a datagram client to another address
	// (CLSET_SVC_ADDR); stream clients refuse.
	setServer(taddr) bool
	// setRetry sets a datagram client's retransmit interval
	// (CLSET_RETRY_TIMEOUT).
	setRetry(time.Duration)
	server() taddr
	netid() string
	close()
}

// Size limits of the transports: libtirpc reads a datagram into a buffer
// of UDPMSGSIZE and silently cuts what is longer; a record on a stream
// is capped here (libtirpc has no cap) at what a DUMP of every table
// rpcbind can hold fits in.
const (
	udpMsgSize = 8800
	maxRecord  = 16 << 20
)

// Default intervals of libtirpc: a datagram is retransmitted every 15
// seconds until the call's total timeout.
const retryInterval = 15 * time.Second

var errDecode = errors.New("rpcinfo: results do not decode")

// tliCreate is clnt_tli_create with a fresh socket: a stream client
// connects at once (a refused connection is RPC_SYSTEMERROR), a datagram
// client only opens its socket. An address of another family than the
// transport's is RPC_UNKNOWNHOST, as in libtirpc.
func (r *runner) tliCreate(nc netconf, a taddr, prog, vers uint32) (clnt, bool) {
	family, stream, ok := nc.sockinfo()
	if !ok {
		// __rpc_nconf2fd "returns" descriptor 0 for a transport it does
		// not know, and asking standard input for its socket fails so.
		r.cerr = sysErr(syscall.ENOTSOCK)
		return nil, false
	}
	if family != a.Family {
		r.cerr = createErr{Stat: UnknownHost}
		return nil, false
	}
	if r.transport != nil {
		return r.transport(nc.Netid, a, prog, vers), true
	}
	if stream {
		conn, err := r.dial(a)
		if err != nil {
			r.cerr = sysErr(err)
			return nil, false
		}
		return &vcClient{conn: conn, rr: rpc.NewRecordReader(conn, maxRecord), id: nc.Netid, addr: a,
			prog: prog, vers: vers, xid: rand.Uint32()}, true
	}
	pc, err := r.listenUDP(family)
	if err != nil {
		r.cerr = sysErr(err)
		return nil, false
	}
	return &dgClient{pc: pc, id: nc.Netid, addr: a, prog: prog, vers: vers, xid: rand.Uint32(),
		wait: r.retry()}, true
}

// dial connects a stream. connect(2) has no timeout of its own in
// libtirpc; here it is bounded by the call timeout so that a filtered
// port cannot hold rpcinfo for the two minutes of SYN retries.
func (r *runner) dial(a taddr) (net.Conn, error) {
	d := net.Dialer{Timeout: r.callTimeout(60 * time.Second)}
	var conn net.Conn
	var err error
	if a.Family == syscall.AF_UNIX {
		conn, err = d.Dial("unix", a.Path)
	} else {
		network := "tcp4"
		if a.Family == syscall.AF_INET6 {
			network = "tcp6"
		}
		for _, port := range reservedPorts() {
			d.LocalAddr = &net.TCPAddr{Port: port}
			conn, err = d.Dial(network, a.hostPort())
			if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
				break
			}
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = syscall.ETIMEDOUT
	}
	return conn, err
}

// reservedPorts are the source ports to try, as bindresvport does for
// every socket clnt_tli_create makes: as root, a few reserved ports from
// a random start in 600 to 1023 (so a portmapper takes the caller for
// root: it matters to rpcb_unset over TCP), then any port.
func reservedPorts() []int {
	if os.Geteuid() != 0 {
		return []int{0}
	}
	const low, n = 600, 1024 - 600
	start := rand.IntN(n)
	ports := make([]int, 0, 9)
	for i := range 8 {
		ports = append(ports, low+(start+i)%n)
	}
	return append(ports, 0)
}

// listenUDP opens an unconnected datagram socket, as libtirpc does, so
// that a reply from another address of the host still counts. On IPv4
// it asks for ICMP errors (IP_RECVERR), which is how libtirpc turns a
// port unreachable into "Unable to receive; errno = Connection refused"
// at once; libtirpc does not do it for IPv6, which therefore waits for
// the timeout.
func (r *runner) listenUDP(family int) (pc *net.UDPConn, err error) {
	network, ip := "udp4", net.IPv4zero
	if family == syscall.AF_INET6 {
		network, ip = "udp6", net.IPv6unspecified
	}
	for _, port := range reservedPorts() {
		if pc, err = net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port}); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if family == syscall.AF_INET {
		if sc, err := pc.SyscallConn(); err == nil {
			_ = sc.Control(func(fd uintptr) { // best effort, as libtirpc
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_RECVERR, 1)
			})
		}
	}
	return pc, nil
}

// vcClient is clnt_vc: calls on a connected stream in records.
type vcClient struct {
	conn            net.Conn
	rr              *rpc.RecordReader
	id              string
	addr            taddr
	prog, vers, xid uint32
	err             rpcErr
	buf             []byte
}

func (c *vcClient) geterr() rpcErr         { return c.err }
func (c *vcClient) setVers(v uint32)       { c.vers = v }
func (c *vcClient) setProg(p uint32)       { c.prog = p }
func (c *vcClient) setServer(taddr) bool   { return false }
func (c *vcClient) setRetry(time.Duration) {}
func (c *vcClient) server() taddr          { return c.addr }
func (c *vcClient) netid() string          { return c.id }
func (c *vcClient) close()                 { c.conn.Close() }

// call sends one record and reads records until the reply with its xid.
// A record that is not a reply libtirpc can decode is skipped, as
// clnt_vc_call does; the timeout bounds the whole wait.
func (c *vcClient) call(proc uint32, args []byte, dec func(*xdrReader) bool, timeout time.Duration) Status {
	c.xid--
	c.buf = rpc.AppendCall(c.buf[:0], c.xid, c.prog, c.vers, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
	c.buf = append(c.buf, args...)
	c.conn.SetDeadline(time.Now().Add(timeout))
	if err := rpc.WriteRecord(c.conn, c.buf); err != nil {
		if isTimeout(err) {
			c.err = rpcErr{Stat: TimedOut}
		} else {
			c.err = errnoErr(CantSend, err)
		}
		return c.err.Stat
	}
	for {
		rec, err := c.rr.Next()
		switch {
		case err == nil:
		case isTimeout(err):
			c.err = rpcErr{Stat: TimedOut}
			return c.err.Stat
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			// read_vc reports a premature end of stream as a reset.
			c.err = rpcErr{Stat: CantRecv, S1: int32(syscall.ECONNRESET)}
			return c.err.Stat
		case errors.Is(err, rpc.ErrRecordTooLarge), errors.Is(err, rpc.ErrTooManyFrags):
			c.err = rpcErr{Stat: CantDecodeRes}
			return c.err.Stat
		default:
			c.err = errnoErr(CantRecv, err)
			return c.err.Stat
		}
		if e, ok := acceptRecord(rec, c.xid, dec); ok {
			c.err = e
			return e.Stat
		}
	}
}

// acceptRecord judges a record read for the call with xid, as clnt_vc
// does: ok is false for a record to skip (not a reply it can decode, or
// another call's); otherwise e is the call's outcome.
func acceptRecord(rec []byte, xid uint32, dec func(*xdrReader) bool) (e rpcErr, ok bool) {
	rd := newReader(rec)
	got, e, ok := parseReply(rd)
	if !ok || got != xid {
		return e, false
	}
	if e.Stat == Success && dec != nil && !dec(rd) {
		e = rpcErr{Stat: CantDecodeRes}
	}
	return e, true
}

// dgClient is clnt_dg: calls in datagrams, retransmitted every wait.
type dgClient struct {
	pc              *net.UDPConn
	id              string
	addr            taddr
	prog, vers, xid uint32
	wait            time.Duration
	err             rpcErr
	buf             []byte
	in              [udpMsgSize]byte
}

func (c *dgClient) geterr() rpcErr   { return c.err }
func (c *dgClient) setVers(v uint32) { c.vers = v }
func (c *dgClient) setProg(p uint32) { c.prog = p }
func (c *dgClient) server() taddr    { return c.addr }
func (c *dgClient) netid() string    { return c.id }
func (c *dgClient) close()           { c.pc.Close() }

func (c *dgClient) setRetry(d time.Duration) { c.wait = d }

func (c *dgClient) setServer(a taddr) bool {
	c.addr = a
	return true
}

// call follows clnt_dg_call, including its accounting of time: every
// wake-up without the reply (a stray datagram, a wrong xid) costs the
// whole retransmit interval and sends the call again. So a flood of
// junk ends the call early instead of prolonging it, and the number of
// rounds is bounded by timeout/wait whatever arrives.
func (c *dgClient) call(proc uint32, args []byte, dec func(*xdrReader) bool, timeout time.Duration) Status {
	c.xid++
	c.buf = rpc.AppendCall(c.buf[:0], c.xid, c.prog, c.vers, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
	c.buf = append(c.buf, args...)
	total := timeout
	to := c.addr.netAddr().(*net.UDPAddr)
	for {
		if total <= 0 {
			c.err = rpcErr{Stat: TimedOut}
			return c.err.Stat
		}
		if _, err := c.pc.WriteToUDP(c.buf, to); err != nil {
			c.err = errnoErr(CantSend, err)
			return c.err.Stat
		}
		tv := min(total, c.wait)
		c.pc.SetReadDeadline(time.Now().Add(tv))
		n, _, err := c.pc.ReadFromUDP(c.in[:])
		if err != nil {
			if isTimeout(err) {
				total -= tv
				continue
			}
			c.err = errnoErr(CantRecv, err)
			return c.err.Stat
		}
		e, ok := acceptDatagram(c.in[:n], c.xid, dec)
		if !ok {
			total -= tv
			continue
		}
		c.err = e
		return e.Stat
	}
}

// acceptDatagram judges a datagram received for the call with xid, as
// clnt_dg does: ok is false for one of another call (or too short to
// say), which costs a retransmission; a reply it cannot decode ends the
// call with CANTDECODERES.
func acceptDatagram(in []byte, xid uint32, dec func(*xdrReader) bool) (e rpcErr, ok bool) {
	if len(in) < 4 || uint32(in[0])<<24|uint32(in[1])<<16|uint32(in[2])<<8|uint32(in[3]) != xid {
		return e, false
	}
	rd := newReader(in)
	_, e, ok = parseReply(rd)
	switch {
	case !ok:
		e = rpcErr{Stat: CantDecodeRes}
	case e.Stat == Success && dec != nil && !dec(rd):
		e = rpcErr{Stat: CantDecodeRes}
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
	err  rpcErr
}

// dialLocal connects to the local portmapper (libtirpc's clnt_vc_create
// on AF_LOCAL): as rpcinfo 1.2.7 and libtirpc 1.3.5 do, first to the
// abstract name, which is this network namespace's portmapper, then, if
// nothing listens there, to the socket path; failing both, rpc_createerr
// says why the path failed.
func (r *runner) dialLocal(vers uint32) (clnt, bool) {
	if r.transport != nil {
		return r.transport("local", taddr{Family: syscall.AF_UNIX, Path: r.socket}, pmap.Program, vers), true
	}
	if r.abstract != "" {
		// A miss on the abstract name leaves rpc_createerr as it was when
		// the path answers: what rpcinfo prints later from a stale error
		// is then what it printed before abstract names were tried.
		saved := r.cerr
		if c, ok := r.dialUnix(vers, "@"+strings.TrimPrefix(r.abstract, "@")); ok || r.socket == "" {
			return c, ok
		}
		r.cerr = saved
	}
	return r.dialUnix(vers, r.socket)
}

// dialUnix connects to one local socket, a path or an abstract name
// written with a leading "@".
func (r *runner) dialUnix(vers uint32, addr string) (clnt, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), r.callTimeout(60*time.Second))
	defer cancel()
	c, err := client.Dial(ctx, "unix", addr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			err = syscall.ETIMEDOUT
		}
		r.cerr = sysErr(err)
		return nil, false
	}
	return &pkgClient{c: c, path: addr, vers: vers}, true
}

func (p *pkgClient) geterr() rpcErr         { return p.err }
func (p *pkgClient) setVers(v uint32)       { p.vers = v }
func (p *pkgClient) setProg(uint32)         {}
func (p *pkgClient) setServer(taddr) bool   { return false }
func (p *pkgClient) setRetry(time.Duration) {}
func (p *pkgClient) server() taddr          { return taddr{Family: syscall.AF_UNIX, Path: p.path} }
func (p *pkgClient) netid() string          { return "local" }
func (p *pkgClient) close()                 { p.c.Close() }

func (p *pkgClient) call(proc uint32, args []byte, dec func(*xdrReader) bool, timeout time.Duration) Status {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := p.c.CallProgram(ctx, pmap.Program, p.vers, proc, args, func(d *xdr.Decoder) error {
		if dec != nil && !dec(newReader(d.Rest())) {
			return errDecode
		}
		return nil
	})
	p.err = statusOf(err)
	return p.err.Stat
}

// statusOf maps an error of the client package to the clnt_stat
// libtirpc would have reported for the same event.
func statusOf(err error) rpcErr {
	var re *rpc.ReplyError
	switch {
	case err == nil:
		return rpcErr{}
	case errors.As(err, &re):
		if re.Denied {
			switch re.Reject {
			case rpc.RPCMismatch:
				return rpcErr{Stat: VersMismatch, S1: int32(re.Low), S2: int32(re.High)}
			case rpc.AuthError:
				return rpcErr{Stat: AuthError, S1: int32(re.Auth)}
			}
			return rpcErr{Stat: Failed, S1: msgDenied, S2: int32(re.Reject)}
		}
		switch re.Accept {
		case rpc.ProgUnavail:
			return rpcErr{Stat: ProgUnavail}
		case rpc.ProgMismatch:
			return rpcErr{Stat: ProgVersMismatch, S1: int32(re.Low), S2: int32(re.High)}
		case rpc.ProcUnavail:
			return rpcErr{Stat: ProcUnavail}
		case rpc.GarbageArgs:
			return rpcErr{Stat: CantDecodeArgs}
		case rpc.SystemErr:
			return rpcErr{Stat: SystemError}
		}
		return rpcErr{Stat: Failed, S1: msgAccepted, S2: int32(re.Accept)}
	case errors.Is(err, errDecode):
		return rpcErr{Stat: CantDecodeRes}
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return rpcErr{Stat: TimedOut}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return rpcErr{Stat: CantRecv, S1: int32(syscall.ECONNRESET)}
	case errors.Is(err, syscall.EPIPE):
		return rpcErr{Stat: CantSend, S1: int32(syscall.EPIPE)}
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return rpcErr{Stat: CantRecv, S1: int32(en)}
	}
	return rpcErr{Stat: CantDecodeRes}
}
