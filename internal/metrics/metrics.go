package metrics

import (
	"fmt"
	"io"
	"strconv"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/portmapd/portmapd/internal/nftset"
	"github.com/portmapd/portmapd/rpc"
)

// Label values, indexed as the arrays below are. "other" is last in each.
var (
	versionLabels   = [...]string{"2", "3", "4", "other"}
	transportLabels = [...]string{"udp", "tcp", "udp6", "tcp6", "local", "other"}
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
	// Outcomes and reasons index their arrays by their own number; the
	// last row, "other", is for a value beyond the known ones.
	nOutcomes = int(rpc.NumOutcomes) + 1
	nReasons  = int(rpc.NumReasons) + 1
)

// Metrics holds the counters. A nil *Metrics records nothing, so the
// daemon calls it unconditionally whether or not metrics are enabled.
type Metrics struct {
	// nftSet, if set (SetNFTSet), is read at each scrape.
	nftSet func() nftset.Stats

	calls         [nVersions][nProcs][nTransports][nOutcomes]atomic.Uint64
	rejections    [nReasons]atomic.Uint64
	conns         [nTransports]atomic.Int64
	forwards      atomic.Int64
	padded        atomic.Uint64
	registrations atomic.Int64
	regFunc       func() int
	stateFailures func() uint64
	runtime       bool
}

// Options configure New.
type Options struct {
	// Registrations, if set, is read at each scrape for the registrations
	// gauge (pmap.Registry.Len), instead of SetRegistrations.
	Registrations func() int
	// StateWriteFailures, if set, is read at each scrape for the counter
	// of warm-start writes that failed (their changes taken back).
	StateWriteFailures func() uint64
	// NoRuntimeMetrics leaves out the Go runtime and process collectors.
	NoRuntimeMetrics bool
}

// New creates the counters.
func New(opts Options) *Metrics {
	return &Metrics{regFunc: opts.Registrations, stateFailures: opts.StateWriteFailures, runtime: !opts.NoRuntimeMetrics}
}

// Call counts one call of procedure proc of version vers of the
// portmapper, arriving on netid, that ended with outcome. Unknown values
// are counted under "other".
func (m *Metrics) Call(vers, proc uint32, netid string, outcome rpc.Outcome) {
	if m == nil {
		return
	}
	v := versionIndex(vers)
	p := otherProc
	if v < len(procedureLabels) && proc < uint32(len(procedureLabels[v])) {
		p = int(proc)
	}
	m.calls[v][p][transportIndex(netid)][min(int(outcome), nOutcomes-1)].Add(1)
}

// Reject counts traffic refused for reason.
func (m *Metrics) Reject(reason rpc.Reason) {
	if m == nil {
		return
	}
	m.rejections[min(int(reason), nReasons-1)].Add(1)
}

// The server tells Metrics about padding through this interface.
var _ rpc.PaddingObserver = (*Metrics)(nil)

// NonZeroPadding counts a call served although its padding was not zero.
func (m *Metrics) NonZeroPadding() {
	if m != nil {
		m.padded.Add(1)
	}
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

// SetNFTSet makes every scrape read f for the nftables set that
// --nft-set keeps: its size, the batches written and the netlink errors.
// Call it before serving.
func (m *Metrics) SetNFTSet(f func() nftset.Stats) {
	if m != nil {
		m.nftSet = f
	}
}

func versionIndex(vers uint32) int {
	if vers >= 2 && vers <= 4 {
		return int(vers - 2)
	}
	return nVersions - 1
}

// transportIndex compares strings with a switch, which the
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

// WritePrometheus writes every series in the Prometheus text format:
// the arrays, then the Go runtime and process metrics (memory,
// goroutines, open descriptors: what an rpcbomb or descriptor exhaustion
// would show). Labels are written in name order, as Prometheus' own
// clients write them.
func (m *Metrics) WritePrometheus(w io.Writer) {
	const calls = "portmapd_calls_total"
	header(w, calls, "counter", "Calls to the portmapper by version, procedure, transport and outcome.")
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
					fmt.Fprintf(w, "%s{outcome=%q,procedure=%q,transport=%q,version=%q} %d\n",
						calls, rpc.Outcome(o), proc, transportLabels[t], versionLabels[v], n)
				}
			}
		}
	}
	regs := m.registrations.Load()
	if m.regFunc != nil {
		regs = int64(m.regFunc())
	}
	header(w, "portmapd_registrations", "gauge", "Entries in the registry (program, version, netid), the portmapper's own rows included.")
	vm.WriteGaugeUint64(w, "portmapd_registrations", uint64(max(regs, 0)))
	const rejections = "portmapd_rejections_total"
	header(w, rejections, "counter", "Calls or traffic refused or dropped, by reason.")
	for r := range nReasons {
		fmt.Fprintf(w, "%s{reason=%q} %d\n", rejections, rpc.Reason(r), m.rejections[r].Load())
	}
	if m.stateFailures != nil {
		const failures = "portmapd_state_write_failures_total"
		header(w, failures, "counter", "Warm-start writes that failed (disk full, I/O error, read-only); their changes were taken back and answered SYSTEM_ERR.")
		fmt.Fprintf(w, "%s %d\n", failures, m.stateFailures())
	}
	const padded = "portmapd_nonzero_padding_calls_total"
	header(w, padded, "counter", "Calls whose XDR padding was not zero, served as libtirpc serves them.")
	vm.WriteCounterUint64(w, padded, m.padded.Load())
	header(w, "portmapd_forwards_in_flight", "gauge", "Remote calls (CALLIT, BCAST, INDIRECT) forwarded and awaiting an answer.")
	vm.WriteGaugeUint64(w, "portmapd_forwards_in_flight", uint64(max(m.forwards.Load(), 0)))
	const conns = "portmapd_open_connections"
	header(w, conns, "gauge", "Open connections on the stream transports.")
	for _, t := range []int{4, 1, 3} { // the stream transports, by name
		fmt.Fprintf(w, "%s{transport=%q} %d\n", conns, transportLabels[t], max(m.conns[t].Load(), 0))
	}
	if m.nftSet != nil {
		st := m.nftSet()
		header(w, "portmapd_nft_set_elements", "gauge", "Elements (proto . port) of the --nft-set nftables set as last written.")
		vm.WriteGaugeUint64(w, "portmapd_nft_set_elements", uint64(max(st.Elements, 0)))
		header(w, "portmapd_nft_batches_total", "counter", "Netlink batches written to the --nft-set set.")
		vm.WriteCounterUint64(w, "portmapd_nft_batches_total", st.Batches)
		header(w, "portmapd_nft_errors_total", "counter", "Netlink errors reading or writing the --nft-set set (each is retried).")
		vm.WriteCounterUint64(w, "portmapd_nft_errors_total", st.Errors)
	}
	if m.runtime {
		vm.WriteProcessMetrics(w)
		vm.WriteFDMetrics(w)
	}
}

func header(w io.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
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
