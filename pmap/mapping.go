package pmap

import (
	"strconv"

	"github.com/portmapd/portmapd/rpc"
)

// Mapping is one row of the registration table: RFC 1833's rpcb structure.
// Addr is a universal address (RFC 5665) and Owner is derived by the daemon
// from the caller's credentials, never taken from the wire.
type Mapping struct {
	Prog  uint32
	Vers  uint32
	Netid string
	Addr  string
	Owner string
}

// Program number and versions of the portmapper itself.
const (
	Program   = 100000
	VersPMAP  = 2
	VersRPCB3 = 3
	VersRPCB4 = 4
)

// IP protocol numbers used by PMAP version 2 in place of netids.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// ProtoNetid is the netid of a PMAP protocol number: tcp for 6, udp for
// 17. ok is false for any other number, which PMAP has no netid for.
func ProtoNetid(prot uint32) (netid string, ok bool) {
	switch prot {
	case ProtoTCP:
		return rpc.NetidTCP, true
	case ProtoUDP:
		return rpc.NetidUDP, true
	}
	return "", false
}

// NetidProto is ProtoNetid's inverse: the PMAP protocol number of netid,
// 0 for the netids PMAP cannot name (tcp6, udp6, local).
func NetidProto(netid string) uint32 {
	switch netid {
	case rpc.NetidTCP:
		return ProtoTCP
	case rpc.NetidUDP:
		return ProtoUDP
	}
	return 0
}

// ProtoName is a PMAP protocol as rpcinfo -p and pmap_dump name it: its
// netid, or else its number in decimal.
func ProtoName(prot uint32) string {
	if netid, ok := ProtoNetid(prot); ok {
		return netid
	}
	return strconv.FormatUint(uint64(prot), 10)
}

// Owner names rpcbind derives for callers it cannot identify by uid.
const (
	OwnerSuperuser = "superuser"
	OwnerUnknown   = "unknown"
)

// MaxMappings bounds the registration table. Real hosts register tens of
// entries; the cap keeps a local process that loops on SET from taking
// the daemon's memory, and every table fits the warm-start file.
const MaxMappings = 1 << 18
