package rpc

import (
	"errors"
	"fmt"

	"github.com/portmapd/portmapd/xdr"
)

// ReplyError is a reply that carries no results: an accepted reply with a
// status other than SUCCESS, or a denied one.
type ReplyError struct {
	Denied    bool
	Accept    AcceptStat // when !Denied
	Reject    RejectStat // when Denied
	Auth      AuthStat   // when Reject is AUTH_ERROR
	Low, High uint32     // PROG_MISMATCH and RPC_MISMATCH
}

var acceptNames = [...]string{"SUCCESS", "PROG_UNAVAIL", "PROG_MISMATCH", "PROC_UNAVAIL", "GARBAGE_ARGS", "SYSTEM_ERR"}

func (e *ReplyError) Error() string {
	switch {
	case !e.Denied && e.Accept == ProgMismatch:
		return fmt.Sprintf("rpc: PROG_MISMATCH (versions %d to %d)", e.Low, e.High)
	case !e.Denied && int(e.Accept) < len(acceptNames):
		return "rpc: " + acceptNames[e.Accept]
	case !e.Denied:
		return fmt.Sprintf("rpc: accept status %d", e.Accept)
	case e.Reject == RPCMismatch:
		return fmt.Sprintf("rpc: RPC_MISMATCH (versions %d to %d)", e.Low, e.High)
	case e.Reject == AuthError:
		return fmt.Sprintf("rpc: AUTH_ERROR (auth status %d)", e.Auth)
	}
	return fmt.Sprintf("rpc: rejected, status %d", e.Reject)
}

// ErrNotReply means a message is not a reply.
var ErrNotReply = errors.New("rpc: message is not a reply")

// ParseReply decodes a reply header from d. For a successful reply it
// returns the xid and leaves d at the results; otherwise it returns the
// xid and a *ReplyError, or a decoding error.
func ParseReply(d *xdr.Decoder) (uint32, error) {
	xid, err := d.Uint32()
	if err != nil {
		return 0, fmt.Errorf("decode xid: %w", err)
	}
	mtype, err := d.Uint32()
	if err != nil {
		return xid, fmt.Errorf("decode msg_type: %w", err)
	}
	if mtype != MsgReply {
		return xid, ErrNotReply
	}
	stat, err := d.Uint32()
	if err != nil {
		return xid, fmt.Errorf("decode reply_stat: %w", err)
	}
	switch stat {
	case MsgAccepted:
		if _, err := parseAuth(d); err != nil {
			return xid, fmt.Errorf("decode verf: %w", err)
		}
		as, err := d.Uint32()
		if err != nil {
			return xid, fmt.Errorf("decode accept_stat: %w", err)
		}
		if AcceptStat(as) == Success {
			return xid, nil
		}
		re := &ReplyError{Accept: AcceptStat(as)}
		if re.Accept == ProgMismatch {
			if re.Low, err = d.Uint32(); err == nil {
				re.High, err = d.Uint32()
			}
			if err != nil {
				return xid, fmt.Errorf("decode mismatch_info: %w", err)
			}
		}
		return xid, re
	case MsgDenied:
		rs, err := d.Uint32()
		if err != nil {
			return xid, fmt.Errorf("decode reject_stat: %w", err)
		}
		re := &ReplyError{Denied: true, Reject: RejectStat(rs)}
		switch re.Reject {
		case RPCMismatch:
			if re.Low, err = d.Uint32(); err == nil {
				re.High, err = d.Uint32()
			}
		case AuthError:
			var a uint32
			a, err = d.Uint32()
			re.Auth = AuthStat(a)
		}
		if err != nil {
			return xid, fmt.Errorf("decode rejected_reply: %w", err)
		}
		return xid, re
	}
	return xid, fmt.Errorf("rpc: reply_stat %d", stat)
}
