package rpcinfo

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// rpcinfo's text, rendered from the typed results the modes fill (the
// other renderer is --json's encoder in finish). Every byte a mode puts on
// standard output comes from here, and on standard error from diag.go.

// renderResult writes what rpcinfo prints on standard output for a
// mode's result: the pings and the broadcast answers there were, and the
// tables of a mode that succeeded.
func renderResult(w io.Writer, res result, err error) {
	switch res := res.(type) {
	case *PingResult:
		for _, p := range res.Pings {
			renderPing(w, p)
		}
		return
	case *BroadcastResult:
		for _, b := range res.Replies {
			renderReply(w, b)
		}
		return
	}
	if err != nil {
		return
	}
	switch res := res.(type) {
	case *DumpResult:
		renderDump(w, res)
	case *PortsResult:
		renderPorts(w, res)
	case *AddrListResult:
		renderAddrList(w, res)
	case *StatResult:
		renderStats(w, res)
	}
}

// orDash is a service name as rpcinfo's tables print it.
func orDash(name string) string {
	if name == "" {
		return "-"
	}
	return name
}

// renderDump is the default listing, or -s's when res has programs.
func renderDump(w io.Writer, res *DumpResult) {
	switch {
	case len(res.Mappings) == 0:
		fmt.Fprintf(w, "No remote programs registered.\n")
	case len(res.Programs) == 0:
		fmt.Fprintf(w, "   program version netid     address                service    owner\n")
		for _, m := range res.Mappings {
			fmt.Fprintf(w, "%10d%5d    %-9s %-22s %-10s %s\n", m.Prog, m.Vers, m.Netid, m.Addr, orDash(m.Service), m.Owner)
		}
	default:
		fmt.Fprintf(w, "   program version(s) netid(s)                         service     owner\n")
		for _, p := range res.Programs {
			var vl strings.Builder
			for i, v := range p.Versions {
				fmt.Fprint(&vl, v)
				if i < len(p.Versions)-1 {
					vl.WriteString(",")
				}
			}
			// Debian's rpcinfo pads the list to ten characters, and a
			// longer one runs into the netids.
			fmt.Fprintf(w, "%10d  %-10s%-32s %-11s %s\n", p.Prog, vl.String(), joinNetids(p.Netids), orDash(p.Service), p.Owner)
		}
	}
}

// shortPrograms is -s's grouping: one row per program, its versions and
// netids in the order rpcinfo builds its lists (each new one in front).
// The lookups use maps: a hostile list of 65536 programs must not take
// quadratic time.
func (r *runner) shortPrograms(rows []Mapping) []Program {
	type prog struct {
		Program
		seenV map[uint32]bool
		seenN map[string]bool
	}
	var progs []*prog
	byNum := make(map[uint32]*prog)
	for _, m := range rows {
		p := byNum[m.Prog]
		if p == nil {
			p = &prog{Program: Program{Prog: m.Prog, Owner: m.Owner, Service: m.Service, Versions: []int64{}},
				seenV: map[uint32]bool{}, seenN: map[string]bool{}}
			byNum[m.Prog] = p
			progs = append(progs, p)
		}
		// add_version compares the int it stored with the unsigned long
		// it got: versions from 2^31 up never match, so they repeat.
		if m.Vers >= 1<<31 || !p.seenV[m.Vers] {
			p.seenV[m.Vers] = true
			p.Versions = append(p.Versions, int64(int32(m.Vers)))
		}
		if !p.seenN[m.Netid] {
			p.seenN[m.Netid] = true
			p.Netids = append(p.Netids, m.Netid)
		}
	}
	out := make([]Program, len(progs))
	for i, p := range progs {
		slices.Reverse(p.Versions)
		slices.Reverse(p.Netids)
		out[i] = p.Program
	}
	return out
}

// joinNetids is rpcinfo's strncat loop into a 256-byte buffer.
func joinNetids(netids []string) string {
	var buf strings.Builder
	netidmax := 255
	for i, n := range netids {
		buf.WriteString(n[:min(len(n), netidmax)])
		if len(n) < netidmax {
			netidmax -= len(n)
		} else {
			break
		}
		if i < len(netids)-1 && netidmax > 1 {
			buf.WriteString(",")
			netidmax--
		}
	}
	return buf.String()
}

// renderPorts is -p's table.
func renderPorts(w io.Writer, res *PortsResult) {
	if len(res.Ports) == 0 {
		fmt.Fprintf(w, "No remote programs registered.\n")
		return
	}
	fmt.Fprintf(w, "   program vers proto   port  service\n")
	for _, p := range res.Ports {
		fmt.Fprintf(w, "%10d%5d%6s%7d", p.Prog, p.Vers, p.Proto, p.Port)
		if p.Service != "" {
			fmt.Fprintf(w, "  %s\n", p.Service)
		} else {
			fmt.Fprintf(w, "\n")
		}
	}
}

// renderPing is a ping's line.
func renderPing(w io.Writer, p Ping) {
	if p.Ready {
		fmt.Fprintf(w, "program %d version %d ready and waiting\n", p.Prog, p.Vers)
	} else {
		fmt.Fprintf(w, "program %d version %d is not available\n", p.Prog, p.Vers)
	}
}

// renderAddrList is -l's table.
func renderAddrList(w io.Writer, res *AddrListResult) {
	if len(res.Entries) == 0 {
		fmt.Fprintf(w, "No remote programs registered.\n")
		return
	}
	fmt.Fprintf(w, "   program vers  tp_family/name/class    address\t\t  service\n")
	for _, e := range res.Entries {
		buf := fmt.Sprintf("%s/%s/%s ", e.Family, e.Proto, e.Class)
		if len(buf) > 127 {
			buf = buf[:127]
		}
		fmt.Fprintf(w, "%10d%3d    %-24s%-24s %-13s\n", res.Prog, res.Vers, buf, e.Addr, orDash(e.Service))
	}
}

// renderReply is one answer to -b.
func renderReply(w io.Writer, b bcastReply) { fmt.Fprintf(w, "%s\t%s\n", b.Addr, b.Host) }

var (
	pmapHdr  = []string{"NULL", "SET", "UNSET", "GETPORT", "DUMP", "CALLIT"}
	rpcb3Hdr = []string{"NULL", "SET", "UNSET", "GETADDR", "DUMP", "CALLIT", "TIME", "U2T", "T2U"}
	rpcb4Hdr = []string{"NULL", "SET", "UNSET", "GETADDR", "DUMP", "CALLIT", "TIME", "U2T", "T2U", "VERADDR", "INDRECT", "GETLIST", "GETSTAT"}
)

// spaces is rpcinfo's: nothing for a count out of 1..65.
func spaces(n int) string {
	if n <= 0 || n > 64 {
		return ""
	}
	return strings.Repeat(" ", n)
}

// statLines renders the header and value lines of procedures lo..hi of
// one version, each column a tab stop wider than its value.
func statLines(s *StatVersion, hdr []string, lo, hi int, getaddrPlusList bool) (head, values string) {
	var h, line strings.Builder
	for i := lo; i <= hi; i++ {
		field := ""
		switch i {
		case 1:
			field = fmt.Sprintf("%d/", s.Set)
		case 2:
			field = fmt.Sprintf("%d/", s.Unset)
		case 3:
			var cnt int32
			for _, a := range s.Lookups {
				cnt += a.Success
			}
			field = fmt.Sprintf("%d/", cnt)
		case 5:
			var cnt int32
			for _, m := range s.Remote {
				cnt += m.Success
			}
			field = fmt.Sprintf("%d/", cnt)
		}
		v := s.Calls[hdr[i]]
		// rpcbind counts GETADDRLIST's successes as GETADDR's, and
		// rpcinfo adds its calls to match.
		if getaddrPlusList && i == 3 {
			v += s.Calls[hdr[11]]
		}
		field += fmt.Sprint(v)
		flen := len(field)
		width := 8 * (1 + flen/8)
		h.WriteString(hdr[i] + spaces(width-len(hdr[i])))
		line.WriteString(field + spaces(width-flen))
	}
	return h.String(), line.String()
}

// renderStats is -m's report of versions 2, 3 and 4.
func renderStats(w io.Writer, res *StatResult) {
	if len(res.Versions) != 3 {
		return
	}
	section := func(s *StatVersion, hdr []string, lo, hi int, plus bool, after string) {
		head, values := statLines(s, hdr, lo, hi, plus)
		fmt.Fprintf(w, "%s\n%s\n%s", head, values, after)
	}
	// Versions 2 and 3: the counts, then the remote calls and lookups
	// where there were any.
	for i, v := range []struct {
		title, rmt, lookup string
		hdr                []string
	}{
		{"PORTMAP (version 2) statistics", "PMAP_RMTCALL call statistics", "PMAP_GETPORT call statistics", pmapHdr},
		{"RPCBIND (version 3) statistics", "RPCB_RMTCALL (version 3) call statistics", "RPCB_GETADDR (version 3) call statistics", rpcb3Hdr},
	} {
		s := &res.Versions[i]
		fmt.Fprintf(w, "%s\n", v.title)
		section(s, v.hdr, 0, len(v.hdr)-1, false, "\n")
		if s.Calls["CALLIT"] != 0 {
			fmt.Fprintf(w, "%s\n", v.rmt)
			renderRmtStat(w, s, false)
			fmt.Fprintf(w, "\n")
		}
		if s.Calls[v.hdr[3]] != 0 {
			fmt.Fprintf(w, "%s\n", v.lookup)
			renderAddrStat(w, s)
			fmt.Fprintf(w, "\n")
		}
	}
	v4 := &res.Versions[2]
	fmt.Fprintf(w, "RPCBIND (version 4) statistics\n")
	section(v4, rpcb4Hdr, 0, 8, true, "")
	section(v4, rpcb4Hdr, 9, 12, true, "")
	if v4.Calls["CALLIT"] != 0 || v4.Calls["INDRECT"] != 0 {
		fmt.Fprintf(w, "\n")
		fmt.Fprintf(w, "RPCB_RMTCALL (version 4) call statistics\n")
		renderRmtStat(w, v4, true)
	}
	if v4.Calls["GETADDR"] != 0 {
		fmt.Fprintf(w, "\n")
		fmt.Fprintf(w, "RPCB_GETADDR (version 4) call statistics\n")
		renderAddrStat(w, v4)
	}
}

// progColumn is a program's name, or its number as C's int.
func progColumn(w io.Writer, prog uint32, service string) {
	if service != "" {
		fmt.Fprintf(w, "%-16s", service)
	} else {
		fmt.Fprintf(w, "%-16d", int32(prog))
	}
}

func renderRmtStat(w io.Writer, s *StatVersion, v4 bool) {
	if v4 {
		fmt.Fprintf(w, "prog\t\tvers\tproc\tnetid\tindirect success failure\n")
	} else {
		fmt.Fprintf(w, "prog\t\tvers\tproc\tnetid\tsuccess\tfailure\n")
	}
	for _, m := range s.Remote {
		progColumn(w, m.Prog, m.Service)
		fmt.Fprintf(w, "%d\t%d\t%s\t", int32(m.Vers), int32(m.Proc), m.Netid)
		if v4 {
			fmt.Fprintf(w, "%d\t ", m.Indirect)
		}
		fmt.Fprintf(w, "%d\t%d\n", m.Success, m.Failure)
	}
}

func renderAddrStat(w io.Writer, s *StatVersion) {
	fmt.Fprintf(w, "prog\t\tvers\tnetid\t  success\tfailure\n")
	for _, a := range s.Lookups {
		progColumn(w, a.Prog, a.Service)
		fmt.Fprintf(w, "%d\t%s\t  %-12d\t%d\n", int32(a.Vers), a.Netid, a.Success, a.Failure)
	}
}
