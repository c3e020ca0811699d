package nftset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/google/nftables"
)

// keyType is the set's type: inet_proto . inet_service, eight bytes, each
// part padded to a four-byte register.
var keyType = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)

// ErrSet is wrapped by every error Open returns about the set itself
// (missing, of another type, unreadable), as opposed to the arguments.
var ErrSet = errors.New("nftables set unusable")

// kernel is the set as the kernel has it.
type kernel struct {
	spec Spec
	set  *nftables.Set
}

// openKernel finds the set and checks that its elements can be what the
// daemon writes. Each netlink exchange opens its own socket, so that a
// failure leaves nothing half-received behind for the next one.
func openKernel(spec Spec) (*kernel, error) {
	fam, ok := families[spec.Family]
	if !ok {
		return nil, fmt.Errorf("nftables family %q unknown", spec.Family)
	}
	conn, err := nftables.New()
	if err != nil {
		return nil, setError(spec, "cannot open a netlink socket to nftables", err)
	}
	set, err := conn.GetSetByName(&nftables.Table{Name: spec.Table, Family: fam}, spec.Set)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return nil, setError(spec, "the set (or its table) does not exist", nil)
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("%w: --nft-set %q: not allowed to read it: nftables needs root or CAP_NET_ADMIN "+
			"(under systemd, a drop-in with CapabilityBoundingSet=CAP_NET_ADMIN): %w", ErrSet, spec.String(), err)
	case errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.EOPNOTSUPP):
		return nil, setError(spec, "this kernel has no nftables (nf_tables: modprobe nf_tables)", err)
	case err != nil:
		return nil, setError(spec, "cannot read it (is nf_tables in the kernel?)", err)
	}
	var why string
	switch {
	case set.KeyType.GetNFTMagic() != keyType.GetNFTMagic() || set.KeyType.Bytes != keyType.Bytes:
		why = fmt.Sprintf("its type is %s, not inet_proto . inet_service", set.KeyType.Name)
	case set.IsMap:
		why = "it is a map, not a set"
	case set.Constant:
		why = "it is constant"
	case set.Interval:
		why = "it has flags interval"
	case set.HasTimeout:
		why = "it has a timeout, which would expire registered services"
	}
	if why != "" {
		return nil, setError(spec, why+" (nft delete set "+spec.String()+", then declare it again)", nil)
	}
	return &kernel{spec: spec, set: set}, nil
}

// setError explains why the set cannot be used and how to make one that
// can.
func setError(spec Spec, why string, err error) error {
	msg := fmt.Sprintf("--nft-set %q: %s; declare it with:\n%s", spec.String(), why, spec.CreateCommands())
	if err != nil {
		return fmt.Errorf("%w: %s\n(%w)", ErrSet, msg, err)
	}
	return fmt.Errorf("%w: %s", ErrSet, msg)
}

func encode(e Elem) nftables.SetElement {
	k := make([]byte, 8)
	k[0] = e.Proto
	binary.BigEndian.PutUint16(k[4:], e.Port)
	return nftables.SetElement{Key: k}
}

func decode(se nftables.SetElement) (Elem, bool) {
	if len(se.Key) != 8 {
		return Elem{}, false
	}
	return Elem{se.Key[0], binary.BigEndian.Uint16(se.Key[4:])}, true
}

// elements reads the set's elements.
func (k *kernel) elements() (map[Elem]struct{}, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, err
	}
	ses, err := conn.GetSetElements(k.set)
	if err != nil {
		return nil, fmt.Errorf("reading nftables set %s: %w", k.spec, err)
	}
	got := make(map[Elem]struct{}, len(ses))
	for _, se := range ses {
		if e, ok := decode(se); ok {
			got[e] = struct{}{}
		}
	}
	return got, nil
}

// chunk is the most elements a netlink message carries.
const chunk = 1024

// apply adds and deletes elements in one netlink batch, which the kernel
// applies as a whole or not at all.
func (k *kernel) apply(add, del []Elem) error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	// At most a chunk of elements a message: a message is one skb, and
	// a table's worth of ports in one would outgrow what the kernel
	// takes; the batch around them still commits as one.
	for c := range slices.Chunk(del, chunk) {
		if err := conn.SetDeleteElements(k.set, encodeAll(c)); err != nil {
			return err
		}
	}
	for c := range slices.Chunk(add, chunk) {
		if err := conn.SetAddElements(k.set, encodeAll(c)); err != nil {
			return err
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("writing nftables set %s: %w", k.spec, err)
	}
	return nil
}

// empty deletes every element.
func (k *kernel) empty() error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	conn.FlushSet(k.set)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("emptying nftables set %s: %w", k.spec, err)
	}
	return nil
}

func encodeAll(es []Elem) []nftables.SetElement {
	out := make([]nftables.SetElement, len(es))
	for i, e := range es {
		out[i] = encode(e)
	}
	return out
}

// Has reports whether the set named by spec holds e: how portmapd probe
// tells a port the set lacks from one a rule drops despite it. Reading a
// set needs root or CAP_NET_ADMIN.
func Has(spec Spec, e Elem) (bool, error) {
	k, err := openKernel(spec)
	if err != nil {
		return false, err
	}
	got, err := k.elements()
	if err != nil {
		return false, err
	}
	_, ok := got[e]
	return ok, nil
}

// ProtoElem is the element of a port on "tcp" or "udp".
func ProtoElem(proto string, port uint16) Elem {
	if proto == "tcp" || proto == "tcp6" {
		return Elem{protoTCP, port}
	}
	return Elem{protoUDP, port}
}
