package rpcinfo

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client/tirpc"
)

// options are a run's configuration: the databases, the command line's
// options and the resolvers. They are filled once, while the command
// line is parsed, and then only read: every --host's runner shares them.
type options struct {
	// Config is libtirpc's part: netconfig, the local socket and its
	// abstract name, -n's port (0: /etc/services), --timeout (0:
	// rpcinfo's own), the resolver and the tests' transport.
	tirpc.Config
	rpc        rpcDB
	portRange  *pmap.PortRange // --port-range LOW-HIGH; nil: none
	lookupAddr func(context.Context, string) ([]string, error)
}

// runner is one run of rpcinfo against one host: the shared options,
// its libtirpc session, what it printed and the result for JSON.
type runner struct {
	*options
	// broadcast, when set, stands in for rpc_broadcast (tests).
	broadcast func(prog, vers uint32) ([]bcastReply, tirpc.Status)

	session *tirpc.Session
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	result  any
}

// lib is the run's libtirpc: one thread's, as in rpcinfo.
func (r *runner) lib() *tirpc.Session {
	if r.session == nil {
		r.session = tirpc.NewSession(&r.Config)
	}
	return r.session
}

// service is the name getrpcbynumber gives prog, if any.
func (r *runner) service(prog uint32) (string, bool) { return r.rpc.byNumber(prog) }

func (r *runner) serviceOr(prog uint32, dash string) string {
	if s, ok := r.service(prog); ok {
		return s
	}
	return dash
}

const usageText = `Usage: rpcinfo [-m | -s] [host]
       rpcinfo -p [host]
       rpcinfo -T netid host prognum [versnum]
       rpcinfo -l host prognum versnum
       rpcinfo [-n portnum] -u | -t host prognum [versnum]
       rpcinfo -a serv_address -T netid prognum [version]
       rpcinfo -b prognum versnum
       rpcinfo -d [-T netid] prognum versnum
`

// getprognum is rpcinfo's (an error where rpcinfo exits with 1): all digits is a number for strtol, anything
// else (including a number followed by a letter) a name for
// getrpcbyname. The result is C's long, so ip_ping prints numbers
// above 2^32 as given while the call carries their low 32 bits.
func (r *runner) getprognum(arg string) (uint64, error) {
	i := 0
	for i < len(arg) && isDigit(arg[i]) {
		i++
	}
	// C's loop also steps over the first character that is not a digit,
	// and then looks at the one after it, or at that character itself
	// when it ended the string.
	rest := ""
	var last byte
	if i < len(arg) {
		rest, last = arg[i+1:], arg[i]
	} else if i > 0 {
		last = arg[i-1]
	}
	if rest != "" || isAlpha(last) {
		n, ok := r.rpc.byName(arg)
		if !ok {
			return 0, unknownService{arg}
		}
		return uint64(n), nil
	}
	v, ok := strtol(arg)
	if !ok {
		return 0, numberError{"program", arg}
	}
	return uint64(v), nil
}

// getvers is rpcinfo's (an error where rpcinfo exits with 1): strtol cast to int, then to unsigned long, so
// "-1" is 2^64-1 where printed as unsigned long and 2^32-1 on the wire.
func getvers(arg string) (uint64, error) {
	v, ok := strtol(arg)
	if !ok {
		return 0, numberError{"version", arg}
	}
	return uint64(int64(int32(v))), nil
}

// progAndVers reads a program and a version as they go on the wire, in
// the order rpcinfo reads them (-d reads the version first), so that the
// first bad one is the one named.
func (r *runner) progAndVers(progArg, versArg string, versFirst bool) (prog, vers uint32, err error) {
	var p, v uint64
	if versFirst {
		if v, err = getvers(versArg); err != nil {
			return 0, 0, err
		}
	}
	if p, err = r.getprognum(progArg); err != nil {
		return 0, 0, err
	}
	if !versFirst {
		if v, err = getvers(versArg); err != nil {
			return 0, 0, err
		}
	}
	return uint32(p), uint32(v), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// strtol is C's strtol(s, &end, 10) with the check rpcinfo makes: some
// digits and nothing after them. Leading blanks and a sign are allowed;
// a value out of range saturates as strtol does.
func strtol(s string) (int64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" {
		return 0, false
	}
	var n uint64
	const limit = 1 << 63
	for i := 0; i < len(t); i++ {
		if !isDigit(t[i]) {
			return 0, false
		}
		if d := uint64(t[i] - '0'); n > (limit-d)/10 {
			n = limit
		} else {
			n = n*10 + d
		}
	}
	switch {
	case neg && n >= limit:
		return -1 << 63, true
	case neg:
		return -int64(n), true
	case n >= limit:
		return 1<<63 - 1, true
	}
	return int64(n), true
}

// lookupNetid is getnetconfigent as the user's -T reaches it, with
// libtirpc's warning about the netid "unix", noted in c.
func (r *runner) lookupNetid(c *Common, netid string) (tirpc.Netconf, bool) {
	if netid == "" {
		return tirpc.Netconf{}, false
	}
	if netid == "unix" {
		c.note(unixNetid{})
	}
	return r.Netconfig.Lookup(netid)
}

// localInfo is rpcinfo's local_rpcb: the local socket only. With -n the
// portmapper is asked on that port of the loopback address instead.
func (r *runner) localInfo(vers uint32) (tirpc.Clnt, error) {
	if r.Port > 0 {
		nc, ok := r.Netconfig.Lookup("tcp")
		if !ok {
			return nil, tirpc.CreateErr{Stat: tirpc.UnknownProto}
		}
		return r.lib().TliCreate(nc, tirpc.IPTaddr(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(r.Port))),
			pmap.Program, vers)
	}
	return r.lib().DialLocal(vers)
}

// infoHandle is rpcinfo's own getclnthandle: the first address
// getaddrinfo gives for the host and service "rpcbind" (else
// "portmapper"), whatever its family, on transport nc.
func (r *runner) infoHandle(host string, nc tirpc.Netconf, vers uint32) (tirpc.Clnt, tirpc.Taddr, error) {
	addrs, ok := r.Getaddrinfo(host, 0)
	port, okPort := r.ServicePort("rpcbind", "portmapper")
	if !ok || !okPort {
		return nil, tirpc.Taddr{}, tirpc.CreateErr{Stat: tirpc.N2AXlateFailure}
	}
	a := tirpc.IPTaddr(netip.AddrPortFrom(addrs[0], uint16(port)))
	c, err := r.lib().TliCreate(nc, a, pmap.Program, vers)
	return c, a, err
}

// rpcbindCreate is clnt_rpcbind_create: the first transport that gives a
// client, trying the stream transports (twice, as circuit_n and
// circuit_v) before the datagram ones.
func (r *runner) rpcbindCreate(host string, vers uint32) (tirpc.Clnt, tirpc.Taddr, error) {
	var last tirpc.CreateErr
	for _, kind := range []string{"circuit", "circuit", "datagram"} {
		for _, nc := range r.Netconfig.Nettype(kind) {
			c, a, err := r.infoHandle(host, nc, vers)
			if err == nil {
				return c, a, nil
			}
			last = createErrOf(err)
		}
		if last.Stat == tirpc.Success {
			last.Stat = tirpc.UnknownProto
		}
	}
	return nil, tirpc.Taddr{}, last
}

// createErrOf is the rpc_createerr a failed creation returned.
func createErrOf(err error) tirpc.CreateErr {
	var ce tirpc.CreateErr
	if !errors.As(err, &ce) {
		ce = tirpc.CreateErr{Stat: tirpc.Failed}
	}
	return ce
}

// ipGetclient is rpcinfo's ip_getclient: the first transport of proto in
// the netconfig database through which the portmapper knows the program,
// then a client for it; or what rpcinfo says before it ends the run.
func (r *runner) ipGetclient(host string, prog, vers uint32, proto string) (tirpc.Clnt, error) {
	saved := tirpc.Success
	var result *tirpc.Netconf
	var addr tirpc.Taddr
	if r.Port > 0 {
		// -n PORT with -u or -t is rpcinfo(8)'s documented meaning, which
		// rpcinfo 1.2.x parses and then ignores: call the service at that
		// port and ask no portmapper.
		result, addr = r.directAddr(host, proto)
		if result == nil {
			return nil, createFailed{host, tirpc.CreateErr{Stat: tirpc.UnknownHost}}
		}
	}
	var last tirpc.CreateErr
	for i, nc := range r.Netconfig {
		if result != nil {
			break
		}
		if nc.Proto != proto {
			continue
		}
		a, err := r.lib().RpcbGetaddr(prog, vers, nc, host)
		if err == nil {
			result, addr = &r.Netconfig[i], a
			break
		}
		last = createErrOf(err)
		if last.Stat != tirpc.UnknownHost {
			return nil, createFailed{host, last}
		}
		saved = last.Stat
	}
	if result == nil {
		if saved != tirpc.Success {
			last.Stat = saved
			return nil, createFailed{host, last}
		}
		return nil, noTransport{proto}
	}
	c, err := r.lib().TliCreate(*result, addr, prog, vers)
	if err != nil {
		return nil, createFailure(host, err)
	}
	return c, nil
}

// directAddr is host at -n's port over the first transport of proto whose
// family the host has an address in.
func (r *runner) directAddr(host, proto string) (*tirpc.Netconf, tirpc.Taddr) {
	for i, nc := range r.Netconfig {
		if nc.Proto != proto || (nc.Family != "inet" && nc.Family != "inet6") {
			continue
		}
		fam := syscall.AF_INET
		if nc.Family == "inet6" {
			fam = syscall.AF_INET6
		}
		if addrs, ok := r.Getaddrinfo(host, fam); ok {
			return &r.Netconfig[i], tirpc.IPTaddr(netip.AddrPortFrom(addrs[0], uint16(r.Port)))
		}
	}
	return nil, tirpc.Taddr{}
}
