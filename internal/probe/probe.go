package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/pmap/client/tirpc"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Config says what to probe and how patiently.
type Config struct {
	Host string
	// Prog and Vers are the program to look for; without HasProg only
	// the portmapper is probed, without HasVers the highest version the
	// portmapper has for the program.
	Prog, Vers       uint32
	HasProg, HasVers bool
	// Port is the portmapper's port (111).
	Port int
	// Protos are the transports to walk, "tcp" and/or "udp", in order.
	Protos []string
	// Timeout bounds each step.
	Timeout time.Duration
	// Lookup resolves the host; nil means the system resolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Ports, when set, is the range a firewall opens besides 111; a
	// registration outside it is named in the report.
	Ports *pmap.PortRange
	// NFTSet, "FAMILY TABLE SET", is the nftables set the local
	// portmapd keeps (serve --nft-set), if it keeps one. When the
	// probed host is this one and a registered port is filtered, the
	// verdict names the set and, if it can be read, says whether the
	// port is in it.
	NFTSet string
}

// Step statuses.
const (
	StatusOK   = "ok"
	StatusFail = "fail"
)

// Step is one stage of the path, on one transport.
type Step struct {
	Name      string        `json:"name"`
	Transport string        `json:"transport,omitempty"`
	Target    string        `json:"target,omitempty"`
	Status    string        `json:"status"`
	Detail    string        `json:"detail"`
	Took      time.Duration `json:"-"`
	Millis    float64       `json:"ms"`
	class     Class
}

// Report is the outcome of a probe.
type Report struct {
	Host    string  `json:"host"`
	Address string  `json:"address,omitempty"`
	Prog    *uint32 `json:"prog,omitempty"`
	Vers    *uint32 `json:"vers,omitempty"`
	Steps   []Step  `json:"steps"`
	Verdict Verdict `json:"verdict"`
}

// Run walks the path a client takes to (prog, vers) on the host and says
// where it breaks: the host's name, the portmapper over each transport,
// the program's registration, the registered port, and a NULL call.
func Run(ctx context.Context, cfg Config) Report {
	if cfg.Port == 0 {
		cfg.Port = 111
	}
	if len(cfg.Protos) == 0 {
		cfg.Protos = []string{"tcp", "udp"}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Lookup == nil {
		cfg.Lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	p := &prober{cfg: cfg, rep: Report{Host: cfg.Host}}
	if cfg.HasProg {
		p.rep.Prog = &cfg.Prog
		if cfg.HasVers {
			p.rep.Vers = &cfg.Vers
		}
	}
	p.run(ctx)
	return p.rep
}

type prober struct {
	cfg  Config
	rep  Report
	addr netip.Addr
}

// step runs f as a step, timing it, and records its outcome.
func (p *prober) step(name, transport, target string, f func() (Class, string)) Step {
	start := time.Now()
	class, detail := f()
	s := Step{Name: name, Transport: transport, Target: target, Status: StatusOK, Detail: detail,
		Took: time.Since(start), class: class}
	s.Millis = float64(s.Took.Microseconds()) / 1000
	if class != OK {
		s.Status = StatusFail
	}
	p.rep.Steps = append(p.rep.Steps, s)
	return s
}

func (p *prober) run(ctx context.Context) {
	resolved := p.step("resolve", "", p.cfg.Host, func() (Class, string) {
		if a, err := netip.ParseAddr(p.cfg.Host); err == nil {
			p.addr = a.Unmap()
			return OK, "an address"
		}
		rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
		addrs, err := p.cfg.Lookup(rctx, p.cfg.Host)
		if err != nil || len(addrs) == 0 {
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsTimeout {
				return Unresolved, "no answer from the resolver within " + p.cfg.Timeout.String()
			}
			return Unresolved, "does not resolve"
		}
		p.addr = addrs[0].Unmap()
		var list []string
		for _, a := range addrs {
			list = append(list, a.Unmap().String())
		}
		return OK, strings.Join(list, ", ")
	})
	if resolved.class != OK {
		p.finish()
		return
	}
	p.rep.Address = p.addr.String()
	for _, proto := range p.cfg.Protos {
		p.walk(ctx, proto)
	}
	p.finish()
}

// walk follows one transport from the portmapper to the service.
func (p *prober) walk(ctx context.Context, proto string) {
	pmAddr := netip.AddrPortFrom(p.addr, uint16(p.cfg.Port))
	var pm *client.Client
	s := p.step("portmapper", proto, pmAddr.String(), func() (Class, string) {
		c, class, detail := p.dial(ctx, proto, pmAddr, PortmapperRefused, PortmapperFiltered)
		if class != OK {
			return class, detail
		}
		cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
		err := c.Null(cctx, pmap.VersPMAP)
		var re *rpc.ReplyError
		switch {
		case err == nil:
		case errors.As(err, &re):
			// A portmapper without version 2 still answered.
		default:
			c.Close()
			return p.callClass(err, proto, PortmapperRefused, PortmapperFiltered, PortmapperFiltered)
		}
		pm = c
		return OK, "answers"
	})
	if s.class != OK {
		return
	}
	defer pm.Close()
	if !p.cfg.HasProg {
		return
	}

	netid := proto
	if p.addr.Is6() {
		netid += "6"
	}
	var svc netip.AddrPort
	vers := p.cfg.Vers
	what := fmt.Sprintf("program %d", p.cfg.Prog)
	if p.cfg.HasVers {
		what = fmt.Sprintf("program %d version %d", p.cfg.Prog, vers)
	}
	s = p.step("registration", proto, what, func() (Class, string) {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
		ua, err := p.lookup(cctx, pm, proto, netid, vers)
		if err != nil {
			return p.callClass(err, proto, PortmapperRefused, PortmapperFiltered, PortmapperFiltered)
		}
		if ua == "" {
			return NotRegistered, p.notRegistered(cctx, pm, proto, netid)
		}
		ap, ok := p.portOf(ua)
		if !ok {
			return RPCError, fmt.Sprintf("registered at %q, which is not an address", ua)
		}
		svc = ap
		outside := ""
		if r := p.cfg.Ports; r != nil && !r.Contains(uint32(ap.Port())) {
			outside = fmt.Sprintf("; outside the port range %d-%d, so a firewall opening only that range drops it",
				r.Low, r.High)
		}
		return OK, fmt.Sprintf("at %s (port %d)%s%s", ua, ap.Port(), p.otherVersion(cctx, pm, proto, netid), outside)
	})
	if s.class != OK {
		return
	}

	// A datagram port shows whether it is open only by answering, so over
	// UDP the port step makes the call and the call step reads its
	// answer; a stream shows it by accepting the connection.
	var svcClient *client.Client
	var callErr error
	s = p.step("port", proto, svc.String(), func() (Class, string) {
		c, class, detail := p.dial(ctx, proto, svc, ServiceRefused, ServiceFiltered)
		if class != OK {
			return class, detail
		}
		svcClient = c
		if proto != "udp" {
			return OK, "accepts connections"
		}
		callErr = p.null(ctx, c, vers)
		var re *rpc.ReplyError
		if callErr != nil && !errors.As(callErr, &re) {
			return p.callClass(callErr, proto, ServiceRefused, ServiceFiltered, ServiceFiltered)
		}
		return OK, "answers"
	})
	if s.class != OK {
		return
	}
	defer svcClient.Close()
	target := fmt.Sprintf("NULL of program %d version %d", p.cfg.Prog, vers)
	if !p.cfg.HasVers {
		target = fmt.Sprintf("NULL of program %d", p.cfg.Prog)
	}
	p.step("call", proto, target, func() (Class, string) {
		err := callErr
		if proto != "udp" {
			err = p.null(ctx, svcClient, vers)
		}
		var re *rpc.ReplyError
		// Without a version, the call to version 0 learns the range, as
		// rpcinfo's does, and the highest version is called.
		if !p.cfg.HasVers && errors.As(err, &re) && !re.Denied && re.Accept == rpc.ProgMismatch {
			if err = p.null(ctx, svcClient, re.High); err == nil {
				return OK, fmt.Sprintf("version %d answers (the service has versions %d to %d)", re.High, re.Low, re.High)
			}
		}
		if err == nil {
			return OK, "answers"
		}
		if errors.As(err, &re) {
			return replyClass(re)
		}
		return p.callClass(err, proto, ServiceRefused, ServiceFiltered, ServiceTimeout)
	})
}

// null calls procedure 0 of the program's version vers.
func (p *prober) null(ctx context.Context, c *client.Client, vers uint32) error {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	return c.CallProgram(cctx, p.cfg.Prog, vers, 0, nil, nil)
}

// lookup asks the portmapper over the transport for the program's
// address as libtirpc's rpcb_getaddr does (tirpc.WalkGetaddr): RPCBIND
// v4 GETADDR, then v3, then for IPv4 PMAP v2 GETPORT (portmap 5 and 6
// have only version 2). Small requests and answers on purpose: portmapd
// drops UDP answers much larger than their question (a DUMP) to hosts
// that are not local.
func (p *prober) lookup(ctx context.Context, c *client.Client, proto, netid string, vers uint32) (string, error) {
	args := pmap.AppendRpcb(nil, &pmap.Mapping{Prog: p.cfg.Prog, Vers: vers, Netid: netid})
	var last error
	ua, _, end := tirpc.WalkGetaddr(func(v uint32) (string, tirpc.RPCErr) {
		var ua string
		last = c.Call(ctx, v, pmap.ProcGetaddr, args, func(d *xdr.Decoder) (err error) {
			ua, err = pmap.DecodeUaddr(d)
			return err
		})
		return ua, tirpc.StatusOf(last)
	})
	switch {
	case end == tirpc.Answered:
		return ua, nil
	case end == tirpc.Stopped || !p.addr.Is4():
		return "", last
	}
	prot := uint32(pmap.ProtoUDP)
	if proto == "tcp" {
		prot = pmap.ProtoTCP
	}
	port, err := c.GetPort(ctx, p.cfg.Prog, vers, prot)
	if err != nil || port == 0 {
		return "", err
	}
	return pmap.FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port))), nil
}

// registrations is the portmapper's table, best effort and over a stream
// only (a DUMP answer is large): RPCBIND v3 DUMP, else PMAP v2 DUMP.
func (p *prober) registrations(ctx context.Context, c *client.Client, proto string) []pmap.Mapping {
	if proto != "tcp" {
		return nil
	}
	ms, err := c.Dump(ctx)
	var re *rpc.ReplyError
	if err == nil || !errors.As(err, &re) {
		return ms
	}
	rows, _ := c.DumpPorts(ctx)
	for _, r := range rows {
		netid, ok := pmap.ProtoNetid(r.Prot)
		if !ok {
			netid = rpc.NetidUDP // only the netids matter here; PMAP rows are udp or tcp
		}
		ms = append(ms, pmap.Mapping{Prog: r.Prog, Vers: r.Vers, Netid: netid})
	}
	return ms
}

// notRegistered says where else the program is, if the table tells.
func (p *prober) notRegistered(ctx context.Context, c *client.Client, proto, netid string) string {
	var elsewhere []pmap.Mapping
	for _, m := range p.registrations(ctx, c, proto) {
		if m.Prog == p.cfg.Prog {
			elsewhere = append(elsewhere, m)
		}
	}
	if len(elsewhere) == 0 {
		return "not registered"
	}
	if p.cfg.HasVers && !slices.ContainsFunc(elsewhere, func(m pmap.Mapping) bool { return m.Vers == p.cfg.Vers }) {
		return "not registered (other versions are: " + versions(elsewhere) + ")"
	}
	return "not registered on " + netid + " (only on " + netids(elsewhere) + ")"
}

// otherVersion notes, when the table tells, that the address came from
// another version: rpcbind's lookup falls back to one, and the service
// then answers PROG_MISMATCH.
func (p *prober) otherVersion(ctx context.Context, c *client.Client, proto, netid string) string {
	if !p.cfg.HasVers {
		return ""
	}
	ms := p.registrations(ctx, c, proto)
	var same []pmap.Mapping
	for _, m := range ms {
		if m.Prog == p.cfg.Prog && m.Netid == netid {
			if m.Vers == p.cfg.Vers {
				return ""
			}
			same = append(same, m)
		}
	}
	if len(same) == 0 {
		return ""
	}
	return fmt.Sprintf("; but version %d is not registered (versions %s are): this is another version's address", p.cfg.Vers, versions(same))
}

func versions(ms []pmap.Mapping) string {
	var vs []string
	for _, m := range ms {
		if v := strconv.Itoa(int(m.Vers)); !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	return strings.Join(vs, ", ")
}

// portOf is where a client goes for a registered universal address: its
// port at the address probed when the address is a wildcard (rpcbind
// merges those per caller), else the address itself.
func (p *prober) portOf(uaddr string) (netip.AddrPort, bool) {
	ap, err := pmap.ParseUaddr(uaddr)
	if err != nil {
		return netip.AddrPort{}, false
	}
	if ap.Addr().IsUnspecified() {
		return netip.AddrPortFrom(p.addr, ap.Port()), true
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

func netids(ms []pmap.Mapping) string {
	var ids []string
	for _, m := range ms {
		if !slices.Contains(ids, m.Netid) {
			ids = append(ids, m.Netid)
		}
	}
	return strings.Join(ids, ", ")
}

// dial opens a client to ap over proto. A stream connects now, so its
// failure is classed here; a datagram socket only learns at the first
// call.
func (p *prober) dial(ctx context.Context, proto string, ap netip.AddrPort, refused, filtered Class) (*client.Client, Class, string) {
	dctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	c, err := client.Dial(dctx, proto, ap.String())
	if err != nil {
		class, detail := p.netClass(err, refused, filtered)
		return nil, class, detail
	}
	c.Timeout = p.cfg.Timeout
	return c, OK, ""
}

// callClass classes the failure of a call: a timeout over UDP is a
// datagram dropped (filtered), over a connected stream the timeout
// class; otherwise as netClass.
func (p *prober) callClass(err error, proto string, refused, filtered, timeout Class) (Class, string) {
	if isTimeout(err) {
		if proto == "udp" {
			return filtered, "no answer within " + p.cfg.Timeout.String() + " (dropped: filtered, or nothing there answers)"
		}
		return timeout, "connected, but no answer within " + p.cfg.Timeout.String()
	}
	return p.netClass(err, refused, filtered)
}

// netClass classes a failure to reach a port: refused (a reset, or an
// ICMP port unreachable), unreachable (ICMP host or network unreachable,
// as a firewall's reject may send) and no answer at all are told apart.
func (p *prober) netClass(err error, refused, filtered Class) (Class, string) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return refused, "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return refused, "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES),
		errors.Is(err, syscall.EPERM):
		return filtered, "unreachable (" + errText(err) + ")"
	case isTimeout(err):
		return filtered, "no answer within " + p.cfg.Timeout.String() + " (dropped: filtered, or nothing there answers)"
	}
	return RPCError, errText(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func errText(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return err.Error()
}

// replyClass classes a reply that is not SUCCESS.
func replyClass(re *rpc.ReplyError) (Class, string) {
	switch {
	case !re.Denied && re.Accept == rpc.ProgMismatch:
		return VersionMismatch, "version mismatch: the service has versions " + strconv.Itoa(int(re.Low)) + " to " + strconv.Itoa(int(re.High))
	case re.Denied && re.Reject == rpc.AuthError:
		return AuthFailed, "authentication error: " + authText(re.Auth)
	case re.Denied && re.Reject == rpc.RPCMismatch:
		return RPCError, "the service speaks RPC versions " + strconv.Itoa(int(re.Low)) + " to " + strconv.Itoa(int(re.High))
	case !re.Denied && re.Accept == rpc.ProgUnavail:
		return RPCError, "the program is not served at this port (PROG_UNAVAIL): the registration is stale"
	}
	return RPCError, strings.TrimPrefix(re.Error(), "rpc: ")
}

func authText(a rpc.AuthStat) string {
	switch a {
	case rpc.AuthBadCred:
		return "bad credential"
	case rpc.AuthRejectedCred:
		return "credential rejected"
	case rpc.AuthBadVerf:
		return "bad verifier"
	case rpc.AuthRejectedVerf:
		return "verifier rejected"
	case rpc.AuthTooWeak:
		return "credential too weak"
	}
	return "auth status " + strconv.Itoa(int(a))
}

// finish sets the verdict from the first step that failed.
func (p *prober) finish() {
	for _, s := range p.rep.Steps {
		if s.Status == StatusFail {
			p.rep.Verdict = verdict(s, p)
			return
		}
	}
	p.rep.Verdict = verdict(Step{class: OK}, p)
}
