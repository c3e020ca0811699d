package probe

import (
	"fmt"
	"strings"
)

// Class is a kind of failure; each has its own exit status, so scripts
// can branch on where the path broke.
type Class int

// Classes, in the order of the path; the numbers are exit statuses (1 is
// left to errors of the program itself, 2 to usage).
const (
	OK                 Class = 0
	Unresolved         Class = 3
	PortmapperRefused  Class = 4
	PortmapperFiltered Class = 5
	NotRegistered      Class = 6
	ServiceRefused     Class = 7
	ServiceFiltered    Class = 8
	VersionMismatch    Class = 9
	AuthFailed         Class = 10
	ServiceTimeout     Class = 11
	RPCError           Class = 12
)

var classNames = map[Class]string{
	OK:                 "ok",
	Unresolved:         "unresolved",
	PortmapperRefused:  "portmapper-refused",
	PortmapperFiltered: "portmapper-filtered",
	NotRegistered:      "not-registered",
	ServiceRefused:     "service-refused",
	ServiceFiltered:    "service-filtered",
	VersionMismatch:    "version-mismatch",
	AuthFailed:         "auth-error",
	ServiceTimeout:     "service-timeout",
	RPCError:           "rpc-error",
}

func (c Class) String() string { return classNames[c] }

// Verdict is the conclusion of a probe: what broke first and what to do.
type Verdict struct {
	Code    int    `json:"code"`
	Name    string `json:"name"`
	Summary string `json:"summary"`
	Remedy  string `json:"remedy,omitempty"`
}

// verdict turns the first failed step (or success) into a verdict.
func verdict(s Step, p *prober) Verdict {
	v := Verdict{Code: int(s.class), Name: s.class.String()}
	host := p.cfg.Host
	port := ""
	if i := strings.LastIndexByte(s.Target, ':'); i >= 0 {
		port = s.Target[i+1:]
	}
	switch s.class {
	case OK:
		if p.cfg.HasProg {
			v.Summary = fmt.Sprintf("program %d answers on %s over %s", p.cfg.Prog, host, strings.Join(p.cfg.Protos, " and "))
		} else {
			v.Summary = fmt.Sprintf("the portmapper of %s answers over %s", host, strings.Join(p.cfg.Protos, " and "))
		}
	case Unresolved:
		v.Summary = fmt.Sprintf("%s does not resolve to an address", host)
		v.Remedy = "check the name (DNS, /etc/hosts) or give the address"
	case PortmapperRefused:
		v.Summary = fmt.Sprintf("nothing listens on %s port %d of %s: the portmapper is not running", s.Transport, p.cfg.Port, host)
		v.Remedy = "start the portmapper on " + host + " (systemctl start rpcbind, or portmapd serve)"
	case PortmapperFiltered:
		v.Summary = fmt.Sprintf("%s to port %d of %s gets no answer (%s): a firewall drops it, or the host is down", s.Transport, p.cfg.Port, host, s.Detail)
		v.Remedy = fmt.Sprintf("let %s/%d through the firewalls between here and %s (nft add rule inet filter input %s dport %d accept)",
			s.Transport, p.cfg.Port, host, s.Transport, p.cfg.Port)
	case NotRegistered:
		v.Summary = fmt.Sprintf("program %d is %s with the portmapper of %s over %s", p.cfg.Prog, s.Detail, host, s.Transport)
		v.Remedy = "start the service on " + host + "; it registers itself with the portmapper when it starts (see portmapd info -p " + host + ")"
	case ServiceRefused:
		v.Summary = fmt.Sprintf("program %d is registered at %s port %s, but nothing listens there: the service is down", p.cfg.Prog, s.Transport, port)
		v.Remedy = "restart the service; it stopped without removing its registration (portmapd serve --prune-dead drops such entries)"
	case ServiceFiltered:
		v.Summary = fmt.Sprintf("program %d is registered at %s port %s, which gets no answer: a firewall drops it, or the service hangs", p.cfg.Prog, s.Transport, port)
		v.Remedy = p.filteredRemedy(s.Transport, port)
	case VersionMismatch:
		v.Summary = fmt.Sprintf("program %d on %s: %s", p.cfg.Prog, host, s.Detail)
		v.Remedy = "ask for a version the service has (e.g. mount -o vers=N), or start the service with the version enabled"
	case AuthFailed:
		v.Summary = fmt.Sprintf("program %d on %s refused the call: %s", p.cfg.Prog, host, s.Detail)
		v.Remedy = "check the service's access rules (exports, hosts.allow) for this client"
	case ServiceTimeout:
		v.Summary = fmt.Sprintf("program %d on %s accepts connections but does not answer", p.cfg.Prog, host)
		v.Remedy = "the service hangs: restart it"
	default:
		v.Summary = fmt.Sprintf("%s of %s over %s failed: %s", s.Name, host, s.Transport, s.Detail)
		v.Remedy = "see the service's logs"
	}
	return v
}
