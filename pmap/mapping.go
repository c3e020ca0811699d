package pmap

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

// Owner names rpcbind derives for callers it cannot identify by uid.
const (
	OwnerSuperuser = "superuser"
	OwnerUnknown   = "unknown"
)

// MaxMappings bounds the registration table. Real hosts register tens of
// entries; the cap keeps a local process that loops on SET from taking
// the daemon's memory, and every table fits the warm-start file.
const MaxMappings = 1 << 18
