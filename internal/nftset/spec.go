package nftset

import (
	"fmt"
	"strings"

	"github.com/google/nftables"
)

// Spec names a set: its table's family, the table and the set, as nft
// writes them ("inet filter rpc_services").
type Spec struct {
	Family, Table, Set string
}

// families are the table families a set of inet_proto . inet_service
// makes sense in.
var families = map[string]nftables.TableFamily{
	"inet":   nftables.TableFamilyINet,
	"ip":     nftables.TableFamilyIPv4,
	"ip6":    nftables.TableFamilyIPv6,
	"bridge": nftables.TableFamilyBridge,
	"netdev": nftables.TableFamilyNetdev,
}

// ParseSpec reads "FAMILY TABLE SET".
func ParseSpec(s string) (Spec, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Spec{}, fmt.Errorf("%q: want FAMILY TABLE SET, e.g. \"inet filter rpc_services\"", s)
	}
	if _, ok := families[f[0]]; !ok {
		return Spec{}, fmt.Errorf("%q: family %q is none of inet, ip, ip6, bridge, netdev", s, f[0])
	}
	for _, name := range f[1:] {
		if len(name) > 255 || strings.ContainsRune(name, 0) {
			return Spec{}, fmt.Errorf("%q: %q is not an nftables name", s, name)
		}
	}
	return Spec{Family: f[0], Table: f[1], Set: f[2]}, nil
}

func (s Spec) String() string { return s.Family + " " + s.Table + " " + s.Set }

// CreateCommands are the nft commands that declare the set and admit its
// elements, for error messages and documentation. The rule goes in the
// administrator's own input chain; "input" is the usual name.
func (s Spec) CreateCommands() string {
	return fmt.Sprintf("nft add table %[1]s %[2]s\n"+
		"nft add set %[1]s %[2]s %[3]s '{ type inet_proto . inet_service; }'\n"+
		"nft add rule %[1]s %[2]s input meta l4proto . th dport @%[3]s accept",
		s.Family, s.Table, s.Set)
}
