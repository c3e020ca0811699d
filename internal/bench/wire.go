package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// Program numbers the benchmark registers and asks about. They sit in the
// range RFC 5531 leaves to users (0x20000000-0x3fffffff), apart from each
// other, so no real service and no two kinds of traffic ever collide.
const (
	progRegistered   = 0x30000000 // + i: the i-th registration
	progUnregistered = 0x38000000 // + i < unregisteredPool: never registered
	progFresh        = 0x3a000000 // + n: a new program for every lookup
	progChurn        = 0x3c000000 // + client<<16 + k: SET, then UNSET
	benchVers        = 1

	// unregisteredPool is how many distinct unregistered programs the mixes
	// ask about. It is small and fixed on purpose: rpcbind keeps a
	// statistics entry per distinct program looked up and walks that list
	// on every lookup, so an endless supply of new ones would measure that
	// list (the fresh-lookups stream does, separately) instead of lookups.
	unregisteredPool = 100
)

// Errors a check of an answer reports.
var (
	errWrongAnswer = errors.New("wrong answer")
	errRefused     = errors.New("SET or UNSET answered FALSE")
)

// maxReply bounds one reply on a stream: a v2 DUMP of 100,000 entries is
// 2 MB, and the bound keeps a confused peer from making the client allocate
// without limit.
const maxReply = 64 << 20

// portOf is the port the i-th registration maps to.
func portOf(i int) uint32 { return 2000 + uint32(i%60000) }

// uaddrOf is the universal address of port on the IPv4 wildcard, as
// pmap_set stores it.
func uaddrOf(port uint32) string {
	return pmap.FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)))
}

// uaddrPort is the strict port of a universal address an answer carries.
func uaddrPort(s []byte) (uint32, bool) { return pmap.StrictUaddrPort(s) }

// transport carries one call and returns its reply. req starts with
// rpc.RecordHeaderLen bytes reserved for a record mark, which datagram
// transports skip.
type transport interface {
	roundTrip(req []byte, xid uint32) ([]byte, error)
	close()
}

// udpTransport is a connected UDP socket: the kernel filters replies from
// other addresses, and one socket per client keeps replies apart. A call
// is sent once: a lost datagram is a timeout, which the table counts.
type udpTransport struct {
	d       *client.Datagram
	timeout time.Duration
}

func dialUDP(addr string, timeout time.Duration) (*udpTransport, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	return &udpTransport{d: client.NewDatagram(conn, netip.AddrPort{}, 65536), timeout: timeout}, nil
}

// roundTrip skips a reply to an earlier call that timed out rather than
// take it for this call's answer.
func (t *udpTransport) roundTrip(req []byte, xid uint32) ([]byte, error) {
	return t.d.RoundTrip(context.Background(), req, client.Retry{Total: t.timeout, Wait: t.timeout}, client.ReplyTo(xid))
}

func (t *udpTransport) close() { t.d.Conn().Close() }

// streamTransport is a persistent TCP or local-socket connection, redialled
// after any error: after a timeout its stream position is unknown.
type streamTransport struct {
	network, addr string
	timeout       time.Duration
	s             *client.Stream
}

func newStreamTransport(network, addr string, timeout time.Duration) *streamTransport {
	return &streamTransport{network: network, addr: addr, timeout: timeout}
}

func (t *streamTransport) dial() error {
	if t.s != nil {
		return nil
	}
	conn, err := net.DialTimeout(t.network, t.addr, t.timeout)
	if err != nil {
		return err
	}
	t.s = client.NewStream(conn, maxReply)
	t.s.RecordReader().Keep = maxReply // one DUMP's buffer serves the next: the client stays cheap
	return nil
}

// anyRecord takes every record as the reply: replies on a stream come in
// order, and roundTrip checks the xid itself.
func anyRecord([]byte) bool { return true }

func (t *streamTransport) roundTrip(req []byte, xid uint32) ([]byte, error) {
	if err := t.dial(); err != nil {
		return nil, err
	}
	t.s.Conn().SetDeadline(time.Now().Add(t.timeout))
	msg, err := t.s.RoundTrip(req, anyRecord)
	if err != nil {
		t.close()
		return nil, err
	}
	if len(msg) < 4 || uint32(msg[0])<<24|uint32(msg[1])<<16|uint32(msg[2])<<8|uint32(msg[3]) != xid {
		// Anything else means the stream is out of step.
		t.close()
		return nil, fmt.Errorf("reply out of order on %s", t.network)
	}
	return msg, nil
}

func (t *streamTransport) close() {
	if t.s != nil {
		t.s.Conn().Close()
		t.s = nil
	}
}

// caller builds calls to the portmapper in a reused buffer and decodes the
// replies, so that a client's steady state allocates nothing.
type caller struct {
	t    transport
	xid  uint32
	req  []byte
	dec  xdr.Decoder
	rows []pmap.PortMapping // DUMP's, reused
}

// maxDumpRows bounds a DUMP reply's rows: more than any table the
// benchmark builds (a maxReply record holds fewer).
const maxDumpRows = 1 << 22

// begin starts a call to procedure proc of portmapper version vers; the
// caller appends the arguments and passes the result to finish.
func (c *caller) begin(vers, proc uint32) []byte {
	c.xid++
	b := append(c.req[:0], 0, 0, 0, 0) // room for the record mark
	return rpc.AppendCall(b, c.xid, pmap.Program, vers, proc, rpc.OpaqueAuth{Flavor: rpc.AuthNone})
}

// finish sends the call and returns a decoder positioned at the results.
func (c *caller) finish(b []byte) (*xdr.Decoder, error) {
	c.req = b
	reply, err := c.t.roundTrip(b, c.xid)
	if err != nil {
		return nil, err
	}
	c.dec.Reset(reply)
	if _, err := rpc.ParseReply(&c.dec); err != nil {
		return nil, err
	}
	return &c.dec, nil
}

// appendRpcb appends RFC 1833's rpcb structure (SET, UNSET and GETADDR
// arguments) with pmap's encoder. The owner is left empty: daemons derive
// it themselves.
func appendRpcb(b []byte, prog, vers uint32, netid, addr string) []byte {
	return pmap.AppendRpcb(b, &pmap.Mapping{Prog: prog, Vers: vers, Netid: netid, Addr: addr})
}

// null makes a NULL call.
func (c *caller) null() error {
	_, err := c.finish(c.begin(pmap.VersPMAP, pmap.ProcNull))
	return err
}

// getport asks PMAP v2 GETPORT for prog over UDP's protocol number.
func (c *caller) getport(prog uint32) (uint32, error) {
	b := c.begin(pmap.VersPMAP, pmap.ProcGetport)
	b = pmap.AppendPortMapping(b, &pmap.PortMapping{Prog: prog, Vers: benchVers, Prot: pmap.ProtoUDP})
	d, err := c.finish(b)
	if err != nil {
		return 0, err
	}
	return d.Uint32()
}

// getaddr asks RPCBIND v4 GETADDR for prog on netid "udp" and returns the
// port of the answer, 0 for the empty string that means not registered.
func (c *caller) getaddr(prog uint32) (uint32, error) {
	b := c.begin(pmap.VersRPCB4, pmap.ProcGetaddr)
	b = appendRpcb(b, prog, benchVers, rpc.NetidUDP, "")
	d, err := c.finish(b)
	if err != nil {
		return 0, err
	}
	ua, err := d.StringBytes(pmap.MaxWireString)
	if err != nil || len(ua) == 0 {
		return 0, err
	}
	port, ok := uaddrPort(ua)
	if !ok {
		return 0, fmt.Errorf("%w: malformed address %q", errWrongAnswer, ua)
	}
	return port, nil
}

// dump asks PMAP v2 DUMP and counts the rows of programs the benchmark
// registered. The rows are decoded into the caller's reused slice.
func (c *caller) dump() (rows, ours int, err error) {
	d, err := c.finish(c.begin(pmap.VersPMAP, pmap.ProcDump))
	if err != nil {
		return 0, 0, err
	}
	c.rows, err = pmap.DecodePmapList(d, c.rows[:0], maxDumpRows)
	if err != nil {
		return len(c.rows), 0, fmt.Errorf("decode DUMP: %w", err)
	}
	for _, m := range c.rows {
		if m.Prog >= progRegistered && m.Prog < progUnregistered {
			ours++
		}
	}
	return len(c.rows), ours, nil
}

// change makes an RPCBIND v3 SET or UNSET of prog on netid "udp" and
// reports an error unless the answer is TRUE.
func (c *caller) change(proc, prog uint32, addr string) error {
	b := c.begin(pmap.VersRPCB3, proc)
	b = appendRpcb(b, prog, benchVers, rpc.NetidUDP, addr)
	d, err := c.finish(b)
	if err != nil {
		return err
	}
	ok, err := d.Bool()
	if err != nil {
		return err
	}
	if !ok {
		return errRefused
	}
	return nil
}
