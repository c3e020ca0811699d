package access

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// List is an ordered set of rules; the zero value lets everyone in.
type List struct {
	allow, deny []Rule
	// Skipped lists the patterns that were not understood, for logging.
	Skipped []string
}

// Rule matches client addresses: a list of patterns with optional
// EXCEPT patterns, as in tcp_wrappers.
type Rule struct {
	match, except []pattern
}

type pattern struct {
	all    bool
	local  bool // LOCAL: loopback here, since there are no host names
	prefix netip.Prefix
}

// Allowed reports whether host may make calls other than NULL.
func (l *List) Allowed(host netip.Addr) bool {
	host = host.Unmap()
	for _, r := range l.allow {
		if r.matches(host) {
			return true
		}
	}
	for _, r := range l.deny {
		if r.matches(host) {
			return false
		}
	}
	return true
}

// Empty reports whether the list has no rules at all.
func (l *List) Empty() bool { return len(l.allow) == 0 && len(l.deny) == 0 }

func (r Rule) matches(a netip.Addr) bool {
	return anyMatch(r.match, a) && !anyMatch(r.except, a)
}

func anyMatch(ps []pattern, a netip.Addr) bool {
	for _, p := range ps {
		switch {
		case p.all:
			return true
		case p.local && a.IsLoopback():
			return true
		case p.prefix.IsValid() && p.prefix.Contains(a):
			return true
		}
	}
	return false
}

// AddAllow and AddDeny add command-line entries: an address or a prefix
// in CIDR form.
func (l *List) AddAllow(s string) error { return l.add(&l.allow, s) }

// AddDeny adds a refused address or network.
func (l *List) AddDeny(s string) error { return l.add(&l.deny, s) }

func (l *List) add(to *[]Rule, s string) error {
	p, ok := parsePattern(s)
	if !ok {
		return fmt.Errorf("%q is neither an address nor a network in CIDR form", s)
	}
	*to = append(*to, Rule{match: []pattern{p}})
	return nil
}

// parsePattern understands the address forms tcp_wrappers has: ALL,
// LOCAL, an address, a network as a.b.c.d/len or a.b.c.d/mask, a prefix
// "10.1." ending in a dot, and IPv6 in brackets with an optional /len.
func parsePattern(s string) (pattern, bool) {
	switch strings.ToUpper(s) {
	case "ALL":
		return pattern{all: true}, true
	case "LOCAL":
		return pattern{local: true}, true
	}
	s = strings.TrimPrefix(s, "[")
	s = strings.Replace(s, "]", "", 1)
	if strings.HasSuffix(s, ".") && !strings.Contains(s, ":") {
		parts := strings.Split(strings.TrimSuffix(s, "."), ".")
		if len(parts) == 0 || len(parts) > 3 {
			return pattern{}, false
		}
		var b [4]byte
		for i, p := range parts {
			var n int
			if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 0 || n > 255 || fmt.Sprint(n) != p {
				return pattern{}, false
			}
			b[i] = byte(n)
		}
		return pattern{prefix: netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts))}, true
	}
	if addr, mask, ok := strings.Cut(s, "/"); ok {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return pattern{}, false
		}
		if m, err := netip.ParseAddr(mask); err == nil && m.Is4() && a.Is4() {
			bits, ok := maskBits(m.As4())
			if !ok {
				return pattern{}, false
			}
			return pattern{prefix: netip.PrefixFrom(a, bits).Masked()}, true
		}
		p, err := netip.ParsePrefix(a.String() + "/" + mask)
		if err != nil {
			return pattern{}, false
		}
		return pattern{prefix: p.Masked()}, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return pattern{}, false
	}
	a = a.Unmap()
	return pattern{prefix: netip.PrefixFrom(a, a.BitLen())}, true
}

func maskBits(m [4]byte) (int, bool) {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := 0
	for v&(1<<31) != 0 {
		n++
		v <<= 1
	}
	return n, v == 0
}

// Daemon names whose hosts.allow/hosts.deny entries apply to portmapd.
var daemonNames = []string{"rpcbind", "portmap", "portmapd", "ALL"}

// LoadHostsFiles adds the rules of hosts.allow and hosts.deny that name
// rpcbind, portmap, portmapd or ALL. A missing file has no rules.
func (l *List) LoadHostsFiles(allowPath, denyPath string) error {
	for _, f := range []struct {
		path string
		to   *[]Rule
	}{{allowPath, &l.allow}, {denyPath, &l.deny}} {
		r, err := os.Open(f.path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		err = l.parseHosts(r, f.to)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	return nil
}

// parseHosts reads "daemon_list : client_list [: options]" lines, with
// backslash continuations and # comments.
func (l *List) parseHosts(r io.Reader, to *[]Rule) error {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	var line strings.Builder
	for sc.Scan() {
		text := sc.Text()
		if strings.HasSuffix(text, "\\") {
			line.WriteString(strings.TrimSuffix(text, "\\") + " ")
			continue
		}
		line.WriteString(text)
		full := line.String()
		line.Reset()
		if i := strings.IndexByte(full, '#'); i >= 0 {
			full = full[:i]
		}
		fields := strings.SplitN(full, ":", 3)
		// IPv6 addresses contain colons: they must be in brackets, which
		// SplitN does not respect, so rejoin bracketed parts.
		fields = rejoinBrackets(full, fields)
		if len(fields) < 2 || !namesUs(fields[0]) {
			continue
		}
		*to = append(*to, l.parseClients(fields[1]))
	}
	return sc.Err()
}

func rejoinBrackets(full string, fields []string) []string {
	if !strings.Contains(full, "[") {
		return fields
	}
	// Split on colons outside brackets.
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(full); i++ {
		switch full[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				out = append(out, full[start:i])
				start = i + 1
			}
		}
	}
	return append(out, full[start:])
}

func namesUs(list string) bool {
	for _, d := range splitList(list) {
		d, _, _ = strings.Cut(d, "@")
		for _, n := range daemonNames {
			if strings.EqualFold(d, n) {
				return true
			}
		}
	}
	return false
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

func (l *List) parseClients(s string) Rule {
	var r Rule
	dst := &r.match
	for _, tok := range splitList(s) {
		if strings.EqualFold(tok, "EXCEPT") {
			dst = &r.except
			continue
		}
		p, ok := parsePattern(tok)
		if !ok {
			l.Skipped = append(l.Skipped, tok)
			continue
		}
		*dst = append(*dst, p)
	}
	return r
}
