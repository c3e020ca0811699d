package nftset

import (
	"cmp"
	"slices"
	"strings"

	"github.com/portmapd/portmapd/pmap"
)

// IP protocol numbers, the inet_proto half of an element.
const (
	protoTCP = 6
	protoUDP = 17
)

// Elem is one element of the set: proto . port.
type Elem struct {
	Proto uint8
	Port  uint16
}

func (e Elem) String() string {
	p := "udp"
	if e.Proto == protoTCP {
		p = "tcp"
	}
	return p + " . " + itoa(e.Port)
}

func itoa(n uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// ElemOf is the element a registration opens, if any: only tcp, udp,
// tcp6 and udp6 rows with a port, and not those bound to a loopback
// address, which no firewall rule is needed for. The address's port is
// read as clients read it (pmap.UaddrPort, rpcbind's lenient way); an
// address that does not parse strictly counts as reachable.
func ElemOf(m *pmap.Mapping) (Elem, bool) {
	var proto uint8
	switch strings.ToLower(m.Netid) {
	case "tcp", "tcp6":
		proto = protoTCP
	case "udp", "udp6":
		proto = protoUDP
	default:
		return Elem{}, false
	}
	port, ok := pmap.UaddrPort(m.Addr)
	if !ok || port == 0 || port > 0xffff {
		return Elem{}, false
	}
	if ap, err := pmap.ParseUaddr(m.Addr); err == nil && ap.Addr().Unmap().IsLoopback() {
		return Elem{}, false
	}
	return Elem{proto, uint16(port)}, true
}

// refs counts, per element, the registrations that use it.
type refs map[Elem]int

// change counts a registration of e in or out and reports whether the
// element itself came or went.
func (r refs) change(e Elem, added bool) bool {
	if added {
		r[e]++
		return r[e] == 1
	}
	n, ok := r[e]
	if !ok {
		return false // never counted in: not ours to take out
	}
	if n <= 1 {
		delete(r, e)
		return true
	}
	r[e] = n - 1
	return false
}

// diff is what turns applied into the elements of want: the elements to
// add and to delete, each in order.
func diff(want refs, applied map[Elem]struct{}) (add, del []Elem) {
	for e := range want {
		if _, ok := applied[e]; !ok {
			add = append(add, e)
		}
	}
	for e := range applied {
		if _, ok := want[e]; !ok {
			del = append(del, e)
		}
	}
	slices.SortFunc(add, compareElem)
	slices.SortFunc(del, compareElem)
	return add, del
}

func compareElem(a, b Elem) int {
	return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
}
