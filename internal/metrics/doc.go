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
// (anything unknown lands in "other"). A custom prometheus.Collector reads
// the arrays at scrape time. It reports every (version, procedure,
// transport) success series from the start, so rates work from the first
// scrape, and other outcomes once they occur, which keeps a scrape at a
// few hundred series instead of the three thousand possible ones.
//
// The format comes from github.com/prometheus/client_golang, the
// reference implementation of the exposition format maintained by the
// Prometheus project: it gets escaping, content negotiation (text and
// OpenMetrics), and the Go runtime and process collectors (memory,
// goroutines, open descriptors: what an rpcbomb or a descriptor
// exhaustion would show) right, which a hand-written exporter would have
// to relearn. Its vectors (CounterVec.WithLabelValues) hash label values
// on every call, hence the arrays in front of it.
package metrics
