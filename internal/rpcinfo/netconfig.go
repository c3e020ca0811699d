package rpcinfo

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"
	"syscall"
)

// Transport semantics of netconfig(5).
const (
	semCLTS    = 1
	semCOTS    = 2
	semCOTSOrd = 3
	semRaw     = 4
)

// netconf is one row of /etc/netconfig. The order of the rows decides
// which transport rpcinfo tries first, so it is kept as read.
type netconf struct {
	Netid     string
	Semantics int
	Visible   bool
	Family    string // inet, inet6, loopback or "-"
	Proto     string // udp, tcp or "-"
}

// defaultNetconfig is Debian's /etc/netconfig, used when the file is
// missing or unreadable.
var defaultNetconfig = []netconf{
	{"udp", semCLTS, true, "inet", "udp"},
	{"tcp", semCOTSOrd, true, "inet", "tcp"},
	{"udp6", semCLTS, true, "inet6", "udp"},
	{"tcp6", semCOTSOrd, true, "inet6", "tcp"},
	{"rawip", semRaw, false, "inet", "-"},
	{"local", semCOTSOrd, false, "loopback", "-"},
	{"unix", semCOTSOrd, false, "loopback", "-"},
}

// maxNetconfigFile bounds what is read of /etc/netconfig.
const maxNetconfigFile = 64 << 10

// loadNetconfig reads path in netconfig(5) format, falling back to the
// built-in table when it cannot be read or holds no usable row.
func loadNetconfig(path string) []netconf {
	data, err := readBounded(path, maxNetconfigFile)
	if err != nil {
		return defaultNetconfig
	}
	var out []netconf
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		nc := netconf{Netid: f[0], Visible: strings.Contains(f[2], "v"), Family: f[3], Proto: f[4]}
		switch f[1] {
		case "tpi_clts":
			nc.Semantics = semCLTS
		case "tpi_cots":
			nc.Semantics = semCOTS
		case "tpi_cots_ord":
			nc.Semantics = semCOTSOrd
		case "tpi_raw":
			nc.Semantics = semRaw
		default:
			continue
		}
		out = append(out, nc)
	}
	if len(out) == 0 {
		return defaultNetconfig
	}
	return out
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// lookup is getnetconfigent.
func (r *runner) lookup(netid string) (netconf, bool) {
	for _, nc := range r.netconfig {
		if nc.Netid == netid {
			return nc, true
		}
	}
	return netconf{}, false
}

// sockinfo is __rpc_nconf2sockinfo: libtirpc knows the socket of a
// transport by its netid alone ("unix" counting as "local"), and of no
// other netid.
func (nc netconf) sockinfo() (family int, stream bool, ok bool) {
	switch nc.Netid {
	case "udp":
		family = syscall.AF_INET
	case "tcp":
		family = syscall.AF_INET
	case "udp6":
		family = syscall.AF_INET6
	case "tcp6":
		family = syscall.AF_INET6
	case "local", "unix":
		family = syscall.AF_UNIX
	default:
		return 0, false, false
	}
	switch nc.Semantics {
	case semCLTS:
		stream = false
	case semCOTS, semCOTSOrd:
		stream = true
	default:
		return 0, false, false
	}
	return family, stream, true
}

// nettype selects rows as __rpc_setconf/__rpc_getconf do: "circuit_n" and
// "datagram_n" follow NETPATH (unset: the visible rows), the "_v" types
// the visible rows; raw transports never qualify.
func (r *runner) nettype(kind string) []netconf {
	var out []netconf
	for _, nc := range r.netconfig {
		if nc.Semantics == semRaw || !nc.Visible {
			continue
		}
		switch kind {
		case "circuit":
			if nc.Semantics == semCLTS {
				continue
			}
		case "datagram":
			if nc.Semantics != semCLTS {
				continue
			}
		}
		out = append(out, nc)
	}
	return out
}
