package tirpc

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"
	"syscall"
)

// Transport semantics of netconfig(5) (nc_semantics).
const (
	SemCLTS    = 1
	SemCOTS    = 2
	SemCOTSOrd = 3
	SemRaw     = 4
)

// Netconf is one row of /etc/netconfig. The order of the rows decides
// which transport rpcinfo tries first, so it is kept as read.
type Netconf struct {
	Netid     string
	Semantics int
	Visible   bool
	Family    string // inet, inet6, loopback or "-"
	Proto     string // udp, tcp or "-"
}

// DefaultNetconfig is Debian's /etc/netconfig, used when the file is
// missing or unreadable.
var DefaultNetconfig = Netconfig{
	{"udp", SemCLTS, true, "inet", "udp"},
	{"tcp", SemCOTSOrd, true, "inet", "tcp"},
	{"udp6", SemCLTS, true, "inet6", "udp"},
	{"tcp6", SemCOTSOrd, true, "inet6", "tcp"},
	{"rawip", SemRaw, false, "inet", "-"},
	{"local", SemCOTSOrd, false, "loopback", "-"},
	{"unix", SemCOTSOrd, false, "loopback", "-"},
}

// maxNetconfigFile bounds what is read of /etc/netconfig.
const maxNetconfigFile = 64 << 10

// LoadNetconfig reads path in netconfig(5) format, falling back to the
// built-in table when it cannot be read or holds no usable row.
func LoadNetconfig(path string) Netconfig {
	data, err := ReadBounded(path, maxNetconfigFile)
	if err != nil {
		return DefaultNetconfig
	}
	var out Netconfig
	EachRow(data, func(f []string) {
		if len(f) < 5 {
			return
		}
		nc := Netconf{Netid: f[0], Visible: strings.Contains(f[2], "v"), Family: f[3], Proto: f[4]}
		switch f[1] {
		case "tpi_clts":
			nc.Semantics = SemCLTS
		case "tpi_cots":
			nc.Semantics = SemCOTS
		case "tpi_cots_ord":
			nc.Semantics = SemCOTSOrd
		case "tpi_raw":
			nc.Semantics = SemRaw
		default:
			return
		}
		out = append(out, nc)
	})
	if len(out) == 0 {
		return DefaultNetconfig
	}
	return out
}

// EachRow calls f with the blank-separated fields of every line of data
// that has some once its '#' comment is cut: the files(5) format in which
// the C libraries read /etc/netconfig and /etc/rpc. A line longer than
// 64 KiB ends the reading.
func EachRow(data []byte, f func(fields []string)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if fields := strings.Fields(line); len(fields) > 0 {
			f(fields)
		}
	}
}

// ReadBounded reads at most max bytes of a system database
// (/etc/netconfig, /etc/rpc): a file that never ends is cut, not
// swallowed.
func ReadBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// Netconfig is the netconfig database, its rows in the file's order.
type Netconfig []Netconf

// Lookup is getnetconfigent.
func (db Netconfig) Lookup(netid string) (Netconf, bool) {
	for _, nc := range db {
		if nc.Netid == netid {
			return nc, true
		}
	}
	return Netconf{}, false
}

// Sockinfo is __rpc_nconf2sockinfo: libtirpc knows the socket of a
// transport by its netid alone ("unix" counting as "local"), and of no
// other netid.
func (nc Netconf) Sockinfo() (family int, stream bool, ok bool) {
	switch nc.Netid {
	case "udp", "tcp":
		family = syscall.AF_INET
	case "udp6", "tcp6":
		family = syscall.AF_INET6
	case "local", "unix":
		family = syscall.AF_UNIX
	default:
		return 0, false, false
	}
	switch nc.Semantics {
	case SemCLTS:
		stream = false
	case SemCOTS, SemCOTSOrd:
		stream = true
	default:
		return 0, false, false
	}
	return family, stream, true
}

// Nettype selects rows as __rpc_setconf/__rpc_getconf do: "circuit_n" and
// "datagram_n" follow NETPATH (unset: the visible rows), the "_v" types
// the visible rows; raw transports never qualify.
func (db Netconfig) Nettype(kind string) []Netconf {
	var out []Netconf
	for _, nc := range db {
		if nc.Semantics == SemRaw || !nc.Visible {
			continue
		}
		switch kind {
		case "circuit":
			if nc.Semantics == SemCLTS {
				continue
			}
		case "datagram":
			if nc.Semantics != SemCLTS {
				continue
			}
		}
		out = append(out, nc)
	}
	return out
}
