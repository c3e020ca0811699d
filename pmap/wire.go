package pmap

import (
	"errors"
	"fmt"

	"github.com/portmapd/portmapd/xdr"
)

// The RFC 1833 structures a portmapper returns, encoded once for the
// daemon and decoded once for every client (the Go client, info, probe,
// bench). Decoders read as libtirpc's xdrmem does, since that decides
// what rpcinfo prints for an odd reply: a boolean is anything but zero,
// a string ends at its first NUL. Every string is held to MaxWireString
// and every list to the caller's maxRows: C would follow a hostile
// server's list until malloc failed.

// ErrTooManyRows means a list in a reply is longer than its caller allows.
var ErrTooManyRows = errors.New("pmap: list longer than allowed")

// MaxWrapString bounds a string that libtirpc reads with xdr_wrapstring
// (GETADDR's and a remote call's universal address), which has no limit
// in C: the largest datagram is one.
const MaxWrapString = 65535

// DecodeUaddr decodes GETADDR's reply, a universal address ("": not
// registered), as xdr_wrapstring reads it.
func DecodeUaddr(d *xdr.Decoder) (string, error) { return d.CString(MaxWrapString) }

// DecodeRpcb decodes RFC 1833's struct rpcb (the encoder is AppendRpcb).
func DecodeRpcb(d *xdr.Decoder) (Mapping, error) {
	var m Mapping
	var err error
	if m.Prog, err = d.Uint32(); err != nil {
		return m, err
	}
	if m.Vers, err = d.Uint32(); err != nil {
		return m, err
	}
	for _, s := range []*string{&m.Netid, &m.Addr, &m.Owner} {
		if *s, err = d.CString(MaxWireString); err != nil {
			return m, err
		}
	}
	return m, nil
}

// more reads the optional-data flag of a list's next entry and checks
// that rows may take one more.
func more(d *xdr.Decoder, rows, maxRows int) (bool, error) {
	next, err := d.AnyBool()
	if err != nil || !next {
		return false, err
	}
	if rows >= maxRows {
		return false, fmt.Errorf("%w: more than %d rows", ErrTooManyRows, maxRows)
	}
	return true, nil
}

// DecodePmapList decodes a PMAP DUMP's pmaplist, appending to rows.
func DecodePmapList(d *xdr.Decoder, rows []PortMapping, maxRows int) ([]PortMapping, error) {
	for {
		next, err := more(d, len(rows), maxRows)
		if err != nil || !next {
			return rows, err
		}
		m, err := DecodePortMapping(d)
		if err != nil {
			return rows, err
		}
		rows = append(rows, m)
	}
}

// DecodeRpcbList decodes an RPCBIND DUMP's rpcblist, appending to rows.
func DecodeRpcbList(d *xdr.Decoder, rows []Mapping, maxRows int) ([]Mapping, error) {
	for {
		next, err := more(d, len(rows), maxRows)
		if err != nil || !next {
			return rows, err
		}
		m, err := DecodeRpcb(d)
		if err != nil {
			return rows, err
		}
		rows = append(rows, m)
	}
}

// AddrEntry is struct rpcb_entry, one address of GETADDRLIST's reply.
type AddrEntry struct {
	Addr, Netid   string
	Semantics     uint32
	Family, Proto string
}

// AppendAddrEntry appends e as XDR.
func AppendAddrEntry(b []byte, e *AddrEntry) []byte {
	b = xdr.AppendString(b, e.Addr)
	b = xdr.AppendString(b, e.Netid)
	b = xdr.AppendUint32(b, e.Semantics)
	b = xdr.AppendString(b, e.Family)
	return xdr.AppendString(b, e.Proto)
}

// DecodeAddrList decodes an rpcb_entry_list, appending to rows.
func DecodeAddrList(d *xdr.Decoder, rows []AddrEntry, maxRows int) ([]AddrEntry, error) {
	for {
		next, err := more(d, len(rows), maxRows)
		if err != nil || !next {
			return rows, err
		}
		var e AddrEntry
		if e.Addr, err = d.CString(MaxWireString); err == nil {
			e.Netid, err = d.CString(MaxWireString)
		}
		if err == nil {
			e.Semantics, err = d.Uint32()
		}
		if err == nil {
			e.Family, err = d.CString(MaxWireString)
		}
		if err == nil {
			e.Proto, err = d.CString(MaxWireString)
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, e)
	}
}

// AddrStat is one GETPORT/GETADDR lookup of GETSTAT (rpcbs_addrlist).
type AddrStat struct {
	Prog, Vers       uint32
	Success, Failure int32
	Netid            string
}

// RmtStat is one remote call of GETSTAT (rpcbs_rmtcalllist).
type RmtStat struct {
	Prog, Vers, Proc           uint32
	Success, Failure, Indirect int32
	Netid                      string
}

// VersStat is struct rpcb_stat: the statistics of one portmapper version.
type VersStat struct {
	Info       [highProc]int32 // calls per procedure
	Set, Unset int32
	Addrs      []AddrStat
	Rmts       []RmtStat
}

// AppendAddrStat appends a as an rpcbs_addrlist entry (without the
// optional-data flag before it).
func AppendAddrStat(b []byte, a *AddrStat) []byte {
	b = xdr.AppendUint32(b, a.Prog)
	b = xdr.AppendUint32(b, a.Vers)
	b = xdr.AppendInt32(b, a.Success)
	b = xdr.AppendInt32(b, a.Failure)
	return xdr.AppendString(b, a.Netid)
}

// AppendRmtStat appends r as an rpcbs_rmtcalllist entry (without the
// optional-data flag before it).
func AppendRmtStat(b []byte, r *RmtStat) []byte {
	b = xdr.AppendUint32(b, r.Prog)
	b = xdr.AppendUint32(b, r.Vers)
	b = xdr.AppendUint32(b, r.Proc)
	b = xdr.AppendInt32(b, r.Success)
	b = xdr.AppendInt32(b, r.Failure)
	b = xdr.AppendInt32(b, r.Indirect)
	return xdr.AppendString(b, r.Netid)
}

// DecodeStatByVers decodes rpcb_stat_byvers: the statistics of versions
// 2, 3 and 4 in that order (the encoder is Stats.AppendXDR). Each list
// holds at most maxRows entries.
func DecodeStatByVers(d *xdr.Decoder, maxRows int) ([3]VersStat, error) {
	var out [3]VersStat
	for i := range out {
		if err := decodeVersStat(d, &out[i], maxRows); err != nil {
			return out, err
		}
	}
	return out, nil
}

func decodeVersStat(d *xdr.Decoder, s *VersStat, maxRows int) error {
	for j := range s.Info {
		v, err := d.Int32()
		if err != nil {
			return err
		}
		s.Info[j] = v
	}
	var err error
	if s.Set, err = d.Int32(); err != nil {
		return err
	}
	if s.Unset, err = d.Int32(); err != nil {
		return err
	}
	for {
		next, err := more(d, len(s.Addrs), maxRows)
		if err != nil {
			return err
		}
		if !next {
			break
		}
		var a AddrStat
		for _, f := range []*uint32{&a.Prog, &a.Vers} {
			if *f, err = d.Uint32(); err != nil {
				return err
			}
		}
		for _, f := range []*int32{&a.Success, &a.Failure} {
			if *f, err = d.Int32(); err != nil {
				return err
			}
		}
		if a.Netid, err = d.CString(MaxWireString); err != nil {
			return err
		}
		s.Addrs = append(s.Addrs, a)
	}
	for {
		next, err := more(d, len(s.Rmts), maxRows)
		if err != nil || !next {
			return err
		}
		var r RmtStat
		for _, f := range []*uint32{&r.Prog, &r.Vers, &r.Proc} {
			if *f, err = d.Uint32(); err != nil {
				return err
			}
		}
		for _, f := range []*int32{&r.Success, &r.Failure, &r.Indirect} {
			if *f, err = d.Int32(); err != nil {
				return err
			}
		}
		if r.Netid, err = d.CString(MaxWireString); err != nil {
			return err
		}
		s.Rmts = append(s.Rmts, r)
	}
}

// RmtcallResult is struct rpcb_rmtcallres, the reply of RPCBIND's CALLIT,
// BCAST and INDIRECT: the service's universal address and its results.
type RmtcallResult struct {
	Addr    string
	Results []byte
}

// AppendRmtcallResult appends r as XDR.
func AppendRmtcallResult(b []byte, r *RmtcallResult) []byte {
	return xdr.AppendOpaque(xdr.AppendString(b, r.Addr), r.Results)
}

// DecodeRmtcallResult decodes an rpcb_rmtcallres whose results are at
// most maxResults bytes; Results aliases d's buffer.
func DecodeRmtcallResult(d *xdr.Decoder, maxResults int) (RmtcallResult, error) {
	var r RmtcallResult
	var err error
	if r.Addr, err = d.CString(MaxWrapString); err != nil {
		return r, err
	}
	r.Results, err = d.Opaque(maxResults)
	return r, err
}

// PortCallResult is PMAP's struct rmtcallres, the reply of its CALLIT:
// the service's port and its results.
type PortCallResult struct {
	Port    uint32
	Results []byte
}

// AppendPortCallResult appends r as XDR.
func AppendPortCallResult(b []byte, r *PortCallResult) []byte {
	return xdr.AppendOpaque(xdr.AppendUint32(b, r.Port), r.Results)
}

// DecodePortCallResult decodes a PMAP rmtcallres whose results are at
// most maxResults bytes; Results aliases d's buffer.
func DecodePortCallResult(d *xdr.Decoder, maxResults int) (PortCallResult, error) {
	var r PortCallResult
	var err error
	if r.Port, err = d.Uint32(); err != nil {
		return r, err
	}
	r.Results, err = d.Opaque(maxResults)
	return r, err
}
