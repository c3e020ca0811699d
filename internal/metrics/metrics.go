package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcomes of a call, for Call. They follow the reply the caller got.
const (
	OutcomeSuccess      = "success"
	OutcomeProgUnavail  = "prog_unavail"
	OutcomeProgMismatch = "prog_mismatch"
	OutcomeProcUnavail  = "proc_unavail"
	OutcomeGarbageArgs  = "garbage_args"
	OutcomeSystemErr    = "system_err"
	// OutcomeAuthError is a refused call: AUTH_ERROR (AUTH_TOOWEAK for a
	// SET or UNSET from a host that may not make it).
	OutcomeAuthError   = "auth_error"
	OutcomeRPCMismatch = "rpc_mismatch"
	// OutcomeNoReply is a call answered with silence: a failed CALLIT or
	// BCAST, or a remote call over a stream.
	OutcomeNoReply = "no_reply"
)

// Reasons for Reject: traffic refused or dropped before, or instead of, a
// reply.
const (
	// RejectNotLocal: SET or UNSET from a host other than this one.
	RejectNotLocal = "not_local"
	// RejectNotOwner: UNSET of an entry another user registered.
	RejectNotOwner = "not_owner"
	// RejectUndecodable: a message that is not a decodable call, dropped
	// without a reply (a reply to garbage could be used to amplify).
	RejectUndecodable = "undecodable"
	// RejectTooLarge: a record or argument over its size limit.
	RejectTooLarge = "too_large"
	// RejectRateLimited: a source over its rate.
	RejectRateLimited = "rate_limited"
	// RejectForwardDenied: a remote call to a program never forwarded
	// (NFS, MOUNT, YP and the like).
	RejectForwardDenied = "forward_denied"
	// RejectForwardDisabled: a remote call while remote calls are off.
	RejectForwardDisabled = "forward_disabled"
	// RejectForwardsFull: the oldest forward dropped to make room.
	RejectForwardsFull = "forwards_full"
	// RejectTooManyConns: a connection refused at the connection limit.
	RejectTooManyConns = "too_many_connections"
	// RejectIdle: a connection closed for idling.
	RejectIdle = "idle_timeout"
	// RejectAmplification: a datagram reply to a non-local source larger
	// than the allowed multiple of its request.
	RejectAmplification = "amplification"
	// RejectAccess: a host refused by the access lists.
	RejectAccess = "access_denied"
	// RejectEvicted: an idle connection closed to make room for a new one.
	RejectEvicted = "evicted"
	// RejectPrivilegedPort: a privileged port from an unprivileged caller.
	RejectPrivilegedPort = "privileged_port"
	// RejectPortRange: a registration outside the configured port range.
	RejectPortRange = "port_range"
)

// Label values, indexed as the arrays below are. "other" is last in each.
var (
	versionLabels   = [...]string{"2", "3", "4", "other"}
	transportLabels = [...]string{"udp", "tcp", "udp6", "tcp6", "local", "other"}
	outcomeLabels   = [...]string{OutcomeSuccess, OutcomeProgUnavail, OutcomeProgMismatch, OutcomeProcUnavail,
		OutcomeGarbageArgs, OutcomeSystemErr, OutcomeAuthError, OutcomeRPCMismatch, OutcomeNoReply, "other"}
	reasonLabels = [...]string{RejectNotLocal, RejectNotOwner, RejectUndecodable, RejectTooLarge,
		RejectRateLimited, RejectForwardDenied, RejectForwardDisabled, RejectForwardsFull, RejectTooManyConns,
		RejectIdle, RejectAmplification, RejectAccess, RejectEvicted, RejectPrivilegedPort, RejectPortRange, "other"}
	// procedureLabels per version (RFC 1833): PMAP v2, RPCBIND v3, v4.
	procedureLabels = [3][]string{
		{"null", "set", "unset", "getport", "dump", "callit"},
		{"null", "set", "unset", "getaddr", "dump", "callit", "gettime", "uaddr2taddr", "taddr2uaddr"},
		{"null", "set", "unset", "getaddr", "dump", "bcast", "gettime", "uaddr2taddr", "taddr2uaddr",
			"getversaddr", "indirect", "getaddrlist", "getstat"},
	}
)

const (
	nVersions   = len(versionLabels)
	nProcs      = 14 // v4's 13 procedures and "other"
	otherProc   = nProcs - 1
	nTransports = len(transportLabels)
	nOutcomes   = len(outcomeLabels)
	nReasons    = len(reasonLabels)
)

// Metrics holds the counters. A nil *Metrics records nothing, so the
// daemon calls it unconditionally whether or not metrics are enabled.
type Metrics struct {
	calls         [nVersions][nProcs][nTransports][nOutcomes]atomic.Uint64
	rejections    [nReasons]atomic.Uint64
	conns         [nTransports]atomic.Int64
	forwards      atomic.Int64
	registrations atomic.Int64
	regFunc       func() int

	reg *prometheus.Registry
}

// Options configure New.
type Options struct {
	// Registrations, if set, is read at each scrape for the registrations
	// gauge (pmap.Registry.Len), instead of SetRegistrations.
	Registrations func() int
	// NoRuntimeMetrics leaves out the Go runtime and process collectors.
	NoRuntimeMetrics bool
}

// New creates the counters and a registry serving them.
func New(opts Options) *Metrics {
	m := &Metrics{regFunc: opts.Registrations, reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collector{m})
	if !opts.NoRuntimeMetrics {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry is where the metrics are registered, for serving them with
// another handler or adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Call counts one call of procedure proc of version vers of the
// portmapper, arriving on netid, that ended with outcome (Outcome*).
// Unknown values are counted under "other".
func (m *Metrics) Call(vers, proc uint32, netid, outcome string) {
	if m == nil {
		return
	}
	v := versionIndex(vers)
	p := otherProc
	if v < len(procedureLabels) && proc < uint32(len(procedureLabels[v])) {
		p = int(proc)
	}
	m.calls[v][p][transportIndex(netid)][outcomeIndex(outcome)].Add(1)
}

// Reject counts traffic refused for reason (Reject*).
func (m *Metrics) Reject(reason string) {
	if m == nil {
		return
	}
	m.rejections[reasonIndex(reason)].Add(1)
}

// ConnOpened and ConnClosed track the open connections of a stream
// transport (tcp, tcp6, local).
func (m *Metrics) ConnOpened(netid string) {
	if m != nil {
		m.conns[transportIndex(netid)].Add(1)
	}
}

// ConnClosed is ConnOpened's counterpart.
func (m *Metrics) ConnClosed(netid string) {
	if m != nil {
		m.conns[transportIndex(netid)].Add(-1)
	}
}

// ForwardStarted and ForwardDone track remote calls (CALLIT, BCAST,
// INDIRECT) forwarded and not yet answered or expired.
func (m *Metrics) ForwardStarted() {
	if m != nil {
		m.forwards.Add(1)
	}
}

// ForwardDone is ForwardStarted's counterpart.
func (m *Metrics) ForwardDone() {
	if m != nil {
		m.forwards.Add(-1)
	}
}

// SetRegistrations sets the registrations gauge, for a daemon that keeps
// the count itself rather than passing Options.Registrations.
func (m *Metrics) SetRegistrations(n int) {
	if m != nil {
		m.registrations.Store(int64(n))
	}
}

func versionIndex(vers uint32) int {
	if vers >= 2 && vers <= 4 {
		return int(vers - 2)
	}
	return nVersions - 1
}

// transportIndex and the others compare strings with a switch, which the
// compiler turns into length and content checks: no hashing, no
// allocation.
func transportIndex(netid string) int {
	switch netid {
	case "udp":
		return 0
	case "tcp":
		return 1
	case "udp6":
		return 2
	case "tcp6":
		return 3
	case "local", "unix":
		return 4
	}
	return nTransports - 1
}

func outcomeIndex(o string) int {
	switch o {
	case OutcomeSuccess:
		return 0
	case OutcomeProgUnavail:
		return 1
	case OutcomeProgMismatch:
		return 2
	case OutcomeProcUnavail:
		return 3
	case OutcomeGarbageArgs:
		return 4
	case OutcomeSystemErr:
		return 5
	case OutcomeAuthError:
		return 6
	case OutcomeRPCMismatch:
		return 7
	case OutcomeNoReply:
		return 8
	}
	return nOutcomes - 1
}

func reasonIndex(r string) int {
	for i, l := range reasonLabels[:nReasons-1] {
		if l == r {
			return i
		}
	}
	return nReasons - 1
}

var (
	callsDesc = prometheus.NewDesc("portmapd_calls_total",
		"Calls to the portmapper by version, procedure, transport and outcome.",
		[]string{"version", "procedure", "transport", "outcome"}, nil)
	registrationsDesc = prometheus.NewDesc("portmapd_registrations",
		"Entries in the registry (program, version, netid), the portmapper's own rows included.", nil, nil)
	rejectionsDesc = prometheus.NewDesc("portmapd_rejections_total",
		"Calls or traffic refused or dropped, by reason.", []string{"reason"}, nil)
	forwardsDesc = prometheus.NewDesc("portmapd_forwards_in_flight",
		"Remote calls (CALLIT, BCAST, INDIRECT) forwarded and awaiting an answer.", nil, nil)
	connsDesc = prometheus.NewDesc("portmapd_open_connections",
		"Open connections on the stream transports.", []string{"transport"}, nil)
)

// collector exposes Metrics' arrays to the registry.
type collector struct{ m *Metrics }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- callsDesc
	ch <- registrationsDesc
	ch <- rejectionsDesc
	ch <- forwardsDesc
	ch <- connsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	for v := range nVersions {
		for p := range nProcs {
			proc, known := procLabel(v, p)
			for t := range nTransports {
				for o := range nOutcomes {
					n := m.calls[v][p][t][o].Load()
					always := known && o == 0 && t != nTransports-1
					if n == 0 && !always {
						continue
					}
					ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(n),
						versionLabels[v], proc, transportLabels[t], outcomeLabels[o])
				}
			}
		}
	}
	regs := m.registrations.Load()
	if m.regFunc != nil {
		regs = int64(m.regFunc())
	}
	ch <- prometheus.MustNewConstMetric(registrationsDesc, prometheus.GaugeValue, float64(regs))
	for r := range nReasons {
		ch <- prometheus.MustNewConstMetric(rejectionsDesc, prometheus.CounterValue, float64(m.rejections[r].Load()), reasonLabels[r])
	}
	ch <- prometheus.MustNewConstMetric(forwardsDesc, prometheus.GaugeValue, float64(m.forwards.Load()))
	for _, t := range []int{1, 3, 4} { // the stream transports
		ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(m.conns[t].Load()), transportLabels[t])
	}
}

// procLabel names procedure index p of version index v; known is false for
// the "other" rows and for numbers beyond the version's last procedure.
func procLabel(v, p int) (string, bool) {
	if v < len(procedureLabels) && p < len(procedureLabels[v]) {
		return procedureLabels[v][p], true
	}
	if p == otherProc {
		return "other", false
	}
	return strconv.Itoa(p), false // never counted: Call maps these to other
}
