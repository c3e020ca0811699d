package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// ErrNotLoopback is wrapped by CheckAddr's error for an address that
// would expose the metrics beyond this host.
var ErrNotLoopback = errors.New("not a loopback address")

// CheckAddr accepts a listen address ("host:port") only on loopback,
// unless force is set. The host must be an IP literal or "localhost": a
// name that resolves elsewhere, or an empty host (every interface), is
// refused, since what is registered with a portmapper tells an attacker
// which services to try.
func CheckAddr(addr string, force bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if force {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().IsLoopback() {
		what := "host " + host
		if host == "" {
			what = "every interface"
		}
		return fmt.Errorf("metrics address %q (%s): %w; use 127.0.0.1 or [::1], or force it", addr, what, ErrNotLoopback)
	}
	return nil
}

// Listen checks addr (see CheckAddr) and listens on it over TCP. Listening
// is kept apart from serving so the daemon can open the port before it
// drops privileges and fail at start-up rather than later.
func Listen(addr string, force bool) (net.Listener, error) {
	if err := CheckAddr(addr, force); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return l, nil
}

// Handler serves the metrics at /metrics, and a pointer to it at /.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	// Scrapes are cheap but not free; a few at a time is plenty for
	// Prometheus and bounds what a flood of requests can cost.
	slots := make(chan struct{}, 4)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			http.Error(w, "too many scrapes at once", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WritePrometheus(w)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "portmapd: metrics at /metrics")
	})
	return mux
}

// Serve answers HTTP on l until ctx ends, then shuts down, giving
// requests in progress a few seconds. It returns nil after a shutdown
// caused by ctx.
func (m *Metrics) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler: m.Handler(),
		// Timeouts everywhere: a client that opens a connection and goes
		// quiet must not hold it (and a descriptor) forever.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	return err
}
