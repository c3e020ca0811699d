package rpc

import (
	"errors"
	"fmt"

	"github.com/portmapd/portmapd/xdr"
)

// Message types and reply states of RFC 5531, section 9.
const (
	MsgCall  = 0
	MsgReply = 1

	MsgAccepted = 0
	MsgDenied   = 1

	// Version is the only RPC protocol version (rpcvers) there is.
	Version = 2
)

// AcceptStat is the status of a call the server accepted.
type AcceptStat uint32

// Accept statuses.
const (
	Success      AcceptStat = 0
	ProgUnavail  AcceptStat = 1
	ProgMismatch AcceptStat = 2
	ProcUnavail  AcceptStat = 3
	GarbageArgs  AcceptStat = 4
	SystemErr    AcceptStat = 5
)

// RejectStat says why a call was denied.
type RejectStat uint32

// Reject statuses.
const (
	RPCMismatch RejectStat = 0
	AuthError   RejectStat = 1
)

// AuthStat is the reason of an AUTH_ERROR.
type AuthStat uint32

// Authentication statuses.
const (
	AuthOK           AuthStat = 0
	AuthBadCred      AuthStat = 1
	AuthRejectedCred AuthStat = 2
	AuthBadVerf      AuthStat = 3
	AuthRejectedVerf AuthStat = 4
	AuthTooWeak      AuthStat = 5
	AuthInvalidResp  AuthStat = 6
	AuthFailed       AuthStat = 7
)

// Authentication flavours.
const (
	AuthNone  = 0
	AuthSys   = 1
	AuthShort = 2
	AuthDH    = 3 // AUTH_DES
	RPCSecGSS = 6
)

// Limits of RFC 5531: an opaque_auth body holds at most 400 bytes, and
// authsys_parms at most a 255-byte machine name and 16 groups.
const (
	MaxAuthBytes   = 400
	MaxMachineName = 255
	MaxGroups      = 16
)

// Errors from parsing messages.
var (
	ErrNotCall = errors.New("rpc: message is not a call")
	ErrAuthSys = errors.New("rpc: malformed AUTH_SYS credential")
)

// OpaqueAuth is a credential or verifier; Body aliases the message.
type OpaqueAuth struct {
	Flavor uint32
	Body   []byte
}

// CallHeader is the fixed part of a call message, up to its arguments.
type CallHeader struct {
	XID     uint32
	RPCVers uint32
	Prog    uint32
	Vers    uint32
	Proc    uint32
	Cred    OpaqueAuth
	Verf    OpaqueAuth
}

// ParseCall decodes a call header from d, leaving d at the arguments.
// It does not judge RPCVers: a call of another RPC version still has an XID
// worth answering with RPC_MISMATCH, so the caller checks.
func ParseCall(d *xdr.Decoder) (CallHeader, error) {
	var h CallHeader
	var err error
	if h.XID, err = d.Uint32(); err != nil {
		return h, headerError(fieldXID, err)
	}
	mtype, err := d.Uint32()
	if err != nil {
		return h, headerError(fieldMsgType, err)
	}
	if mtype != MsgCall {
		return h, ErrNotCall
	}
	if h.RPCVers, err = d.Uint32(); err != nil {
		return h, headerError(fieldRPCVers, err)
	}
	if h.Prog, err = d.Uint32(); err != nil {
		return h, headerError(fieldProg, err)
	}
	if h.Vers, err = d.Uint32(); err != nil {
		return h, headerError(fieldVers, err)
	}
	if h.Proc, err = d.Uint32(); err != nil {
		return h, headerError(fieldProc, err)
	}
	if h.Cred, err = parseAuth(d); err != nil {
		return h, headerError(fieldCred, err)
	}
	if h.Verf, err = parseAuth(d); err != nil {
		return h, headerError(fieldVerf, err)
	}
	return h, nil
}

func parseAuth(d *xdr.Decoder) (OpaqueAuth, error) {
	var a OpaqueAuth
	var err error
	if a.Flavor, err = d.Uint32(); err != nil {
		return a, err
	}
	a.Body, err = d.Opaque(MaxAuthBytes)
	return a, err
}

// AppendCall appends a call header with the given credential and an
// AUTH_NONE verifier; the arguments follow it.
func AppendCall(b []byte, xid, prog, vers, proc uint32, cred OpaqueAuth) []byte {
	b = xdr.AppendUint32(b, xid)
	b = xdr.AppendUint32(b, MsgCall)
	b = xdr.AppendUint32(b, Version)
	b = xdr.AppendUint32(b, prog)
	b = xdr.AppendUint32(b, vers)
	b = xdr.AppendUint32(b, proc)
	b = xdr.AppendUint32(b, cred.Flavor)
	b = xdr.AppendOpaque(b, cred.Body)
	b = xdr.AppendUint32(b, AuthNone)
	return xdr.AppendUint32(b, 0)
}

// AuthSysParams is a decoded AUTH_SYS credential. MachineName aliases the
// message; the groups live in a fixed array so that parsing never allocates.
type AuthSysParams struct {
	Stamp       uint32
	MachineName []byte
	UID         uint32
	GID         uint32
	NGIDs       int
	GIDs        [MaxGroups]uint32
}

// ParseAuthSys decodes an AUTH_SYS credential body, enforcing the limits of
// RFC 5531 and checking every length against the bytes of the body. Bytes
// after the groups are ignored, and padding is not looked at, as libtirpc's
// _svcauth_unix does: clients that send either get their answer from
// rpcbind.
func ParseAuthSys(body []byte) (AuthSysParams, error) {
	p, _, err := parseAuthSys(body)
	return p, err
}

// parseAuthSys is ParseAuthSys that also reports padding that was not zero.
func parseAuthSys(body []byte) (p AuthSysParams, padded bool, err error) {
	d := xdr.NewDecoder(body)
	defer func() { padded = d.NonZeroPadding() }()
	if p.Stamp, err = d.Uint32(); err != nil {
		return p, false, ErrAuthSys
	}
	if p.MachineName, err = d.Opaque(MaxMachineName); err != nil {
		return p, false, ErrAuthSys
	}
	if p.UID, err = d.Uint32(); err != nil {
		return p, false, ErrAuthSys
	}
	if p.GID, err = d.Uint32(); err != nil {
		return p, false, ErrAuthSys
	}
	n, err := d.Uint32()
	if err != nil || n > MaxGroups {
		return p, false, ErrAuthSys
	}
	p.NGIDs = int(n)
	for i := range p.NGIDs {
		if p.GIDs[i], err = d.Uint32(); err != nil {
			return p, false, ErrAuthSys
		}
	}
	return p, false, nil
}

// AppendAuthSys encodes an AUTH_SYS credential body.
func AppendAuthSys(b []byte, p *AuthSysParams) []byte {
	b = xdr.AppendUint32(b, p.Stamp)
	b = xdr.AppendOpaque(b, p.MachineName)
	b = xdr.AppendUint32(b, p.UID)
	b = xdr.AppendUint32(b, p.GID)
	b = xdr.AppendUint32(b, uint32(p.NGIDs))
	for _, g := range p.GIDs[:p.NGIDs] {
		b = xdr.AppendUint32(b, g)
	}
	return b
}

// appendAcceptedHead appends the reply header shared by every accepted
// reply: xid, REPLY, MSG_ACCEPTED, an AUTH_NONE verifier and the status.
func appendAcceptedHead(b []byte, xid uint32, stat AcceptStat) []byte {
	b = xdr.AppendUint32(b, xid)
	b = xdr.AppendUint32(b, MsgReply)
	b = xdr.AppendUint32(b, MsgAccepted)
	b = xdr.AppendUint32(b, AuthNone)
	b = xdr.AppendUint32(b, 0)
	return xdr.AppendUint32(b, uint32(stat))
}

// AppendSuccess appends the header of a successful reply; the results follow.
func AppendSuccess(b []byte, xid uint32) []byte { return appendAcceptedHead(b, xid, Success) }

// AppendAccepted appends an accepted reply with an error status that
// carries no data (PROG_UNAVAIL, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR).
func AppendAccepted(b []byte, xid uint32, stat AcceptStat) []byte {
	return appendAcceptedHead(b, xid, stat)
}

// AppendProgMismatch appends PROG_MISMATCH with the supported version range.
func AppendProgMismatch(b []byte, xid, low, high uint32) []byte {
	b = appendAcceptedHead(b, xid, ProgMismatch)
	b = xdr.AppendUint32(b, low)
	return xdr.AppendUint32(b, high)
}

func appendDeniedHead(b []byte, xid uint32, stat RejectStat) []byte {
	b = xdr.AppendUint32(b, xid)
	b = xdr.AppendUint32(b, MsgReply)
	b = xdr.AppendUint32(b, MsgDenied)
	return xdr.AppendUint32(b, uint32(stat))
}

// AppendRPCMismatch appends a denial for a call of another RPC version.
func AppendRPCMismatch(b []byte, xid, low, high uint32) []byte {
	b = appendDeniedHead(b, xid, RPCMismatch)
	b = xdr.AppendUint32(b, low)
	return xdr.AppendUint32(b, high)
}

// AppendAuthError appends an AUTH_ERROR denial.
func AppendAuthError(b []byte, xid uint32, stat AuthStat) []byte {
	b = appendDeniedHead(b, xid, AuthError)
	return xdr.AppendUint32(b, uint32(stat))
}

// Header fields, for errors that name them.
const (
	fieldXID = iota
	fieldMsgType
	fieldRPCVers
	fieldProg
	fieldVers
	fieldProc
	fieldCred
	fieldVerf
	numHeaderFields
)

var headerFieldNames = [numHeaderFields]string{"xid", "msg_type", "rpcvers", "prog", "vers", "proc", "cred", "verf"}

// headerErrors holds every error ParseCall can return, wrapped with the
// field's name in advance: a flood of garbage datagrams must not allocate.
var headerErrors = func() (t [numHeaderFields][2]error) {
	for f, name := range headerFieldNames {
		for k, err := range []error{xdr.ErrShort, xdr.ErrTooLong} {
			t[f][k] = fmt.Errorf("decode %s: %w", name, err)
		}
	}
	return t
}()

func headerError(field int, err error) error {
	switch {
	case errors.Is(err, xdr.ErrShort):
		return headerErrors[field][0]
	case errors.Is(err, xdr.ErrTooLong):
		return headerErrors[field][1]
	}
	return fmt.Errorf("decode %s: %w", headerFieldNames[field], err)
}
