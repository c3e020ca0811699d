package lockfile

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// PortUser is a socket bound to the port asked about, and who has it open.
type PortUser struct {
	// Netid is the table the socket was found in: tcp, udp, tcp6 or udp6.
	Netid string
	// Addr is the socket's local address.
	Addr netip.AddrPort
	// Inode identifies the socket.
	Inode uint64
	// PID is a process with the socket open, 0 if none is visible: the
	// socket belongs to the kernel (nfsd, lockd), or to a process whose
	// descriptors we may not read (another user's, without root).
	PID int
	// Command is that process's name.
	Command string
}

// PortUsers lists the sockets bound to port in the given tables (all four
// when none is given) and the processes holding them. A TCP socket counts
// when it is listening or bound but not yet listening: connections the
// port's owner accepted add nothing. The tables are those of the caller's
// network namespace, which is the one a bind would fail in.
func PortUsers(port uint16, netids ...string) ([]PortUser, error) {
	if len(netids) == 0 {
		netids = []string{"tcp", "udp", "tcp6", "udp6"}
	}
	var users []PortUser
	for _, netid := range netids {
		switch netid {
		case "tcp", "udp", "tcp6", "udp6":
		default:
			return nil, fmt.Errorf("port users: unknown netid %q", netid)
		}
		f, err := os.Open("/proc/net/" + netid)
		if err != nil {
			if os.IsNotExist(err) && strings.HasSuffix(netid, "6") {
				continue // IPv6 disabled
			}
			return nil, fmt.Errorf("port users: %w", err)
		}
		found, err := parseSockets(f, netid, port)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("port users: /proc/net/%s: %w", netid, err)
		}
		users = append(users, found...)
	}
	if len(users) == 0 {
		return nil, nil
	}
	owners := socketOwners(users)
	var out []PortUser
	for _, u := range users {
		pids := owners[u.Inode]
		if len(pids) == 0 {
			out = append(out, u)
			continue
		}
		for _, pid := range pids {
			v := u
			v.PID, v.Command = pid, Command(pid)
			out = append(out, v)
		}
	}
	return out, nil
}

// Describe names the processes in users once each, in a form that ends an
// error message: "rpcbind (pid 1234)", "rpcbind (pid 1234), inetd (pid
// 99)", or "a socket no visible process holds" for kernel sockets.
func Describe(users []PortUser) string {
	var parts []string
	seen := map[int]bool{}
	hidden := false
	for _, u := range users {
		if u.PID == 0 {
			hidden = true
			continue
		}
		if seen[u.PID] {
			continue
		}
		seen[u.PID] = true
		name := u.Command
		if name == "" {
			name = "process"
		}
		parts = append(parts, fmt.Sprintf("%s (pid %d)", name, u.PID))
	}
	if hidden && len(parts) == 0 {
		return "a socket no visible process holds (the kernel's, or another user's)"
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// TCP states in /proc/net/tcp (include/net/tcp_states.h).
const (
	tcpClose  = 0x07 // bound, not listening (or closed)
	tcpListen = 0x0A
)

// parseSockets reads a /proc/net/{tcp,udp,tcp6,udp6} table and returns
// the sockets bound to port. Each line reads
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//
// with the address as the kernel's in-memory bytes printed as 32-bit words
// (so in host byte order) and the port in hex.
func parseSockets(r io.Reader, netid string, port uint16) ([]PortUser, error) {
	isTCP := strings.HasPrefix(netid, "tcp")
	var out []PortUser
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 4096)
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		addr, err := parseHexAddrPort(fields[1])
		if err != nil {
			return nil, err
		}
		if addr.Port() != port {
			continue
		}
		st, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", fields[3], err)
		}
		if isTCP && st != tcpListen && st != tcpClose {
			continue
		}
		inode, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", fields[9], err)
		}
		out = append(out, PortUser{Netid: netid, Addr: addr, Inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes "0100007F:006F" or a 32-digit IPv6 form.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: port: %w", s, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 8 or 32 hex digits", s)
	}
	// hex.DecodeString read each word as printed, most significant byte
	// first; the kernel printed the word it read from memory, so its bytes
	// in memory order are the word stored in host order.
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// maxProcs bounds the scan of /proc: far above any real process count,
// but a limit all the same.
const maxProcs = 1 << 20

// socketOwners maps the inodes of users to the pids holding them, by
// reading every /proc/PID/fd link ("socket:[12345]"). Processes that
// vanish or whose descriptors we may not read are skipped.
func socketOwners(users []PortUser) map[uint64][]int {
	want := map[uint64]bool{}
	for _, u := range users {
		want[u.Inode] = true
	}
	owners := map[uint64][]int{}
	d, err := os.Open("/proc")
	if err != nil {
		return owners
	}
	defer d.Close()
	names, err := d.Readdirnames(maxProcs)
	if err != nil && len(names) == 0 {
		return owners
	}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		fds, err := os.ReadDir("/proc/" + name + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink("/proc/" + name + "/fd/" + fd.Name())
			if err != nil {
				continue
			}
			inoStr, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(inoStr, "]"), 10, 64)
			if err != nil || !want[ino] {
				continue
			}
			if !slices.Contains(owners[ino], pid) {
				owners[ino] = append(owners[ino], pid)
			}
		}
	}
	return owners
}
