package rpc

// Observer learns what happens to calls and connections, for metrics. Its
// methods are called on the serving goroutines and must be cheap.
type Observer interface {
	// Call reports a call that got the given outcome.
	Call(vers, proc uint32, netid string, outcome Outcome)
	// Reject reports traffic refused or dropped.
	Reject(reason Reason)
	// ConnOpened and ConnClosed track stream connections.
	ConnOpened(netid string)
	ConnClosed(netid string)
}

// PaddingObserver is an Observer that also counts calls whose padding was
// not zero; the server serves them and tells it.
type PaddingObserver interface {
	NonZeroPadding()
}

// Outcome is what became of a call, as an Observer sees it. It is a small
// number so that a metrics table can be indexed by it without mapping
// names back; String is its label.
type Outcome uint8

// Outcomes of a call. AUTH_ERROR covers refusals (AUTH_TOOWEAK for a SET
// from a host that may not make it); no_reply is an answer of silence (a
// failed CALLIT or BCAST, a remote call over a stream).
const (
	OutcomeSuccess Outcome = iota
	OutcomeProgUnavail
	OutcomeProgMismatch
	OutcomeProcUnavail
	OutcomeGarbageArgs
	OutcomeSystemErr
	OutcomeAuthError
	OutcomeRPCMismatch
	OutcomeNoReply
	// NumOutcomes is the number of outcomes, for tables indexed by them.
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"success", "prog_unavail", "prog_mismatch", "proc_unavail",
	"garbage_args", "system_err", "auth_error", "rpc_mismatch", "no_reply"}

// String is the outcome's metrics label; "other" for a value beyond the
// known ones.
func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "other"
}

// Reason says why traffic was refused or dropped. One list serves every
// layer that refuses something (this server, the portmapper service and
// the remote-call forwarder), so that metrics count them by number; the
// comment of each says who reports it.
type Reason uint8

// Reasons for refusing or dropping traffic, in the order metrics list
// them.
const (
	// RefusedNotLocal: SET or UNSET from a host other than this one (pmap).
	RefusedNotLocal Reason = iota
	// RefusedNotOwner: UNSET of an entry another user registered (pmap).
	RefusedNotOwner
	// RefusedUndecodable: a message that is not a decodable call, dropped
	// without a reply, since a reply to garbage could be used to amplify
	// (rpc).
	RefusedUndecodable
	// RefusedTooLarge: a record or argument over its size limit (rpc).
	RefusedTooLarge
	// RefusedRateLimited: a datagram source over its reply rate (rpc).
	RefusedRateLimited
	// RefusedForwardDenied: a remote call to a program never forwarded,
	// such as NFS, MOUNT or YP (pmap).
	RefusedForwardDenied
	// RefusedForwardDisabled: a remote call to a registered program while
	// remote calls are off (pmap).
	RefusedForwardDisabled
	// RefusedForwardsFull: the oldest forward dropped to make room
	// (forwarder).
	RefusedForwardsFull
	// RefusedTooManyConns: a connection refused at the connection limit
	// (rpc).
	RefusedTooManyConns
	// RefusedAmplification: a datagram reply to a non-local source larger
	// than the allowed multiple of its request (rpc).
	RefusedAmplification
	// RefusedAccess: a host refused by the access lists (pmap).
	RefusedAccess
	// RefusedEvicted: an idle connection closed to make room for a new one
	// (rpc).
	RefusedEvicted
	// RefusedPrivilegedPort: a privileged port registered by an
	// unprivileged caller (pmap).
	RefusedPrivilegedPort
	// RefusedPortRange: a registration outside the configured port range
	// (pmap).
	RefusedPortRange
	// RefusedForwardRateLimited: a remote call over its source's rate
	// (forwarder).
	RefusedForwardRateLimited
	// RefusedForwardExpired: a forward whose service did not answer in
	// time (forwarder).
	RefusedForwardExpired
	// NumReasons is the number of reasons, for tables indexed by them.
	NumReasons
)

var reasonNames = [NumReasons]string{"not_local", "not_owner", "undecodable", "too_large", "rate_limited",
	"forward_denied", "forward_disabled", "forwards_full", "too_many_connections", "amplification",
	"access_denied", "evicted", "privileged_port", "port_range", "forward_rate_limited", "forward_expired"}

// String is the reason's metrics label; "other" for a value beyond the
// known ones.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "other"
}

func (s *Server) observeCall(c *Call, outcome Outcome) {
	if s.Observer != nil {
		s.Observer.Call(c.Vers, c.Proc, c.Netid, outcome)
	}
}

func (s *Server) observeReject(reason Reason) {
	if s.Observer != nil {
		s.Observer.Reject(reason)
	}
}
