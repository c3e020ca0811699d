package rpc

// Observer learns what happens to calls and connections, for metrics. Its
// methods are called on the serving goroutines and must be cheap; the
// strings are constants.
type Observer interface {
	// Call reports a call that got the given outcome (Outcome*).
	Call(vers, proc uint32, netid, outcome string)
	// Reject reports traffic refused or dropped (Refused*).
	Reject(reason string)
	// ConnOpened and ConnClosed track stream connections.
	ConnOpened(netid string)
	ConnClosed(netid string)
}

// PaddingObserver is an Observer that also counts calls whose padding was
// not zero; the server serves them and tells it.
type PaddingObserver interface {
	NonZeroPadding()
}

// Outcomes of a call, as an Observer sees them. AUTH_ERROR covers refusals
// (AUTH_TOOWEAK for a SET from a host that may not make it); no_reply is
// an answer of silence (a failed CALLIT or BCAST, a remote call over a
// stream).
const (
	OutcomeSuccess      = "success"
	OutcomeProgUnavail  = "prog_unavail"
	OutcomeProgMismatch = "prog_mismatch"
	OutcomeProcUnavail  = "proc_unavail"
	OutcomeGarbageArgs  = "garbage_args"
	OutcomeSystemErr    = "system_err"
	OutcomeAuthError    = "auth_error"
	OutcomeRPCMismatch  = "rpc_mismatch"
	OutcomeNoReply      = "no_reply"
)

// Reasons the server refuses traffic, as an Observer sees them.
const (
	RefusedUndecodable   = "undecodable"
	RefusedTooLarge      = "too_large"
	RefusedAmplification = "amplification"
	RefusedRateLimited   = "rate_limited"
	RefusedTooManyConns  = "too_many_connections"
	RefusedEvicted       = "evicted"
)

func (s *Server) observeCall(c *Call, outcome string) {
	if s.Observer != nil {
		s.Observer.Call(c.Vers, c.Proc, c.Netid, outcome)
	}
}

func (s *Server) observeReject(reason string) {
	if s.Observer != nil {
		s.Observer.Reject(reason)
	}
}
