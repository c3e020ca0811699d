// Package metrics counts what the portmapper does and serves the counts
// over HTTP in the Prometheus text format: calls by version, procedure,
// transport and outcome; registrations; rejections by reason; remote calls
// in flight; open connections. The listener is off unless configured, and
// refuses addresses other than loopback unless forced: the numbers say
// which RPC services a host runs, which is what port 111 is scanned for.
//
// Recording is on the hot path of every call, so it costs an array index
// and an atomic add, with no allocation and no lock: every counter exists
// from the start, in fixed arrays indexed by the known label values
// (anything unknown lands in "other"), read at scrape time. Outcomes and
// reasons index their arrays by their own numbers (rpc.Outcome and
// rpc.Reason, which the server, the portmapper service and the
// remote-call forwarder report), so nothing maps names back. It reports every (version, procedure,
// transport) success series from the start, so rates work from the first
// scrape, and other outcomes once they occur, which keeps a scrape at a
// few hundred series instead of the three thousand possible ones.
//
// The exposition is the Prometheus text format. The Go runtime and
// process series (memory, goroutines, open descriptors: what an rpcbomb or
// a descriptor exhaustion would show) come from
// github.com/VictoriaMetrics/metrics, a small, well-kept library that
// writes them in that format. It replaced the Prometheus project's
// client_golang, which pulls in protocol buffers and grew the binary by
// 6 MB; since a portmapper's idle memory is mostly its own binary's pages,
// that alone took idle RSS from about 9 MB to about 13 MB.
package metrics
