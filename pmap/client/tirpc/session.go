package tirpc

import (
	"context"
	"net/netip"
	"time"
)

// Config is what libtirpc finds in its environment: the netconfig
// database, where the local portmapper listens, how long calls may take
// and how names resolve. It is read, never written, so that several
// Sessions may share one.
type Config struct {
	Netconfig Netconfig
	// Socket is the local socket's path; Abstract its abstract name,
	// tried first ("": none).
	Socket, Abstract string
	// Port is the portmapper's port (0: /etc/services' "sunrpc").
	Port int
	// Timeout replaces every call's timeout when positive.
	Timeout    time.Duration
	LookupHost func(context.Context, string) ([]netip.Addr, error)
	// Transport, when set, stands in for the sockets: tests give every
	// client handle a fake that answers from memory.
	Transport func(netid string, a Taddr, prog, vers uint32) Clnt
}

// Session is one thread of libtirpc: a Config and the thread's
// rpc_createerr. A function that fails returns that error as it stands
// when the C function returns NULL, which is not always a fresh one:
// where libtirpc leaves rpc_createerr alone, the error is the last one
// set, as a C caller would read it. A Session is not for concurrent use.
type Session struct {
	*Config
	cerr CreateErr
}

// NewSession starts a Session with no error.
func NewSession(c *Config) *Session { return &Session{Config: c} }

// fail sets rpc_createerr and returns it.
func (s *Session) fail(e CreateErr) error {
	s.cerr = e
	return e
}

// stale returns rpc_createerr unchanged, for the failures where libtirpc
// does not set it.
func (s *Session) stale() error { return s.cerr }

// CallTimeout is a call's timeout: def unless Timeout replaces it.
func (c *Config) CallTimeout(def time.Duration) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return def
}

// Retry is the datagram retransmit interval: libtirpc's 15 seconds, or
// a quarter of a shorter Timeout so that a lost datagram is resent.
func (c *Config) Retry() time.Duration {
	if c.Timeout > 0 && c.Timeout < 4*retryInterval {
		return max(c.Timeout/4, 10*time.Millisecond)
	}
	return retryInterval
}
