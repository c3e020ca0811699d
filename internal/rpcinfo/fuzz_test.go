package rpcinfo

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portmapd/portmapd/pmap/client/tirpc"
	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// replayClnt answers every call with the same bytes, judged as the real
// clients judge what they receive: as a datagram (AcceptDatagram) or as a
// record on a stream (AcceptRecord), with the call's xid put in front.
type replayClnt struct {
	reply           []byte
	dgram           bool
	id              string
	addr            tirpc.Taddr
	prog, vers, xid uint32
	err             tirpc.RPCErr
}

func (c *replayClnt) Call(_ uint32, _ []byte, dec func(*xdr.Decoder) error, _ time.Duration) tirpc.Status {
	c.xid++
	b := append([]byte(nil), c.reply...)
	if len(b) >= 4 {
		binary.BigEndian.PutUint32(b, c.xid)
	}
	var ok bool
	if c.dgram {
		c.err, ok = tirpc.AcceptDatagram(b, c.xid, dec)
	} else {
		c.err, ok = tirpc.AcceptRecord(b, c.xid, dec)
	}
	if !ok {
		// The real clients would wait for another reply until the
		// timeout.
		c.err = tirpc.RPCErr{Stat: tirpc.TimedOut}
	}
	return c.err.Stat
}

func (c *replayClnt) Geterr() tirpc.RPCErr         { return c.err }
func (c *replayClnt) SetVers(v uint32)             { c.vers = v }
func (c *replayClnt) SetProg(p uint32)             { c.prog = p }
func (c *replayClnt) SetServer(a tirpc.Taddr) bool { c.addr = a; return c.dgram }
func (c *replayClnt) SetRetry(time.Duration)       {}
func (c *replayClnt) Server() tirpc.Taddr          { return c.addr }
func (c *replayClnt) Netid() string                { return c.id }
func (c *replayClnt) Close()                       {}

// replayRunner is a runner whose every client handle answers reply.
func replayRunner(reply []byte, dgram bool) *runner {
	notFound := &net.DNSError{Err: "no such host", IsNotFound: true}
	r := &runner{options: &options{Config: tirpc.Config{Netconfig: tirpc.DefaultNetconfig, Socket: DefaultSocket,
		LookupHost: func(context.Context, string) ([]netip.Addr, error) { return nil, notFound },
		Transport: func(netid string, a tirpc.Taddr, prog, vers uint32) tirpc.Clnt {
			return &replayClnt{reply: reply, dgram: dgram, id: netid, addr: a, prog: prog, vers: vers}
		}},
		rpc:        parseRPC([]byte(defaultRPC)),
		lookupAddr: func(context.Context, string) ([]string, error) { return nil, notFound }}}
	r.broadcast = func(prog, vers uint32) ([]bcastReply, tirpc.Status) {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 111)
		data := append([]byte(nil), reply...)
		var out []bcastReply
		for _, xid := range []uint32{7, 8} {
			if len(data) >= 4 {
				binary.BigEndian.PutUint32(data, xid)
			}
			if a, ok := tirpc.DecodeBroadcastAnswer(tirpc.DefaultNetconfig[0], from, data, 7, true); ok {
				out = append(out, r.bcastReply(a))
			}
		}
		return out, tirpc.TimedOut
	}
	return r
}

// fuzzCommands is a command line of every mode, over every kind of
// transport, so that one reply meets every decoder and every printer.
var fuzzCommands = [][]string{
	{},
	{"-s"},
	{"-p"},
	{"-m"},
	{"127.0.0.1"},
	{"-T", "udp", "127.0.0.1"},
	{"-s", "::1"},
	{"-p", "127.0.0.1"},
	{"-m", "127.0.0.1"},
	{"-l", "127.0.0.1", "100000", "4"},
	{"-u", "127.0.0.1", "100000"},
	{"-t", "127.0.0.1", "100000", "2"},
	{"-T", "udp", "127.0.0.1", "100003"},
	{"-T", "tcp6", "::1", "100003", "3"},
	{"-T", "local", "x", "100000"},
	{"-a", "127.0.0.1.0.111", "-T", "udp", "100000"},
	{"-d", "100000", "2"},
	{"-b", "100000", "2"},
}

// runReplay runs one command line against a runner answering reply and
// checks that it ends with a status rpcinfo can have and bounded output.
func runReplay(t testing.TB, reply []byte, dgram bool, args []string) {
	r := replayRunner(reply, dgram)
	cl := parseArgs("rpcinfo", args, r)
	code := r.run(cl, cl.args)
	if code != 0 && code != 1 {
		t.Fatalf("%v: exit %d", args, code)
	}
	// A reply bounded by maxRecord cannot make rpcinfo print without end.
	if n := r.stdout.Len() + r.stderr.Len(); n > 64<<20 {
		t.Fatalf("%v: %d bytes of output", args, n)
	}
}

// FuzzQueries feeds arbitrary bytes, as the reply to every call, to every
// query rpcinfo makes, through the same decoding of replies and results
// the real transports use, and the printing after it.
func FuzzQueries(f *testing.F) {
	for _, seed := range replySeeds() {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, reply []byte, dgram bool) {
		if len(reply) > tirpc.UDPMsgSize && dgram {
			reply = reply[:tirpc.UDPMsgSize] // what recvfrom would have kept
		}
		for _, args := range fuzzCommands {
			runReplay(t, reply, dgram, args)
		}
	})
}

// replySeeds are well-formed replies of each procedure, and the errors.
func replySeeds() [][]byte {
	ok := func(words ...uint32) []byte {
		b := rpc.AppendSuccess(nil, 1)
		for _, w := range words {
			b = xdr.AppendUint32(b, w)
		}
		return b
	}
	str := func(b []byte, s ...string) []byte {
		for _, x := range s {
			b = xdr.AppendString(b, x)
		}
		return b
	}
	dump := ok(1, 100000, 4)
	dump = str(dump, "tcp", "0.0.0.0.0.111", "superuser")
	dump = xdr.AppendUint32(dump, 1)
	dump = xdr.AppendUint32(dump, 100003)
	dump = xdr.AppendUint32(dump, 3)
	dump = str(dump, "udp6", "::.8.1", "1000")
	dump = xdr.AppendUint32(dump, 0)
	list := str(ok(1), "127.0.0.1.0.111", "tcp")
	list = xdr.AppendUint32(list, 3)
	list = str(list, "inet", "tcp")
	list = xdr.AppendUint32(list, 0)
	var stat []byte
	stat = rpc.AppendSuccess(stat, 1)
	for v := 0; v < 3; v++ {
		for i := 0; i < 15; i++ {
			stat = xdr.AppendUint32(stat, uint32(i))
		}
		stat = xdr.AppendUint32(stat, 1)
		stat = xdr.AppendUint32(stat, 100003)
		stat = xdr.AppendUint32(stat, 3)
		stat = xdr.AppendUint32(stat, 5)
		stat = xdr.AppendUint32(stat, 1)
		stat = str(stat, "tcp")
		stat = xdr.AppendUint32(stat, 0)
		stat = xdr.AppendUint32(stat, 1)
		for i := 0; i < 6; i++ {
			stat = xdr.AppendUint32(stat, uint32(i))
		}
		stat = str(stat, "udp")
		stat = xdr.AppendUint32(stat, 0)
	}
	return [][]byte{
		ok(),
		ok(1),
		ok(111),
		ok(1, 100000, 2, 6, 111, 1, 100000, 2, 17, 111, 0),
		str(rpc.AppendSuccess(nil, 1), "127.0.0.1.0.111"),
		str(rpc.AppendSuccess(nil, 1), "::1.0.111", ""),
		str(rpc.AppendSuccess(nil, 1), "/run/rpcbind.sock"),
		dump,
		list,
		stat,
		rpc.AppendProgMismatch(nil, 1, 2, 4),
		rpc.AppendProgMismatch(nil, 1, 0, 4294967295),
		rpc.AppendAccepted(nil, 1, rpc.ProgUnavail),
		rpc.AppendAccepted(nil, 1, rpc.AcceptStat(77)),
		rpc.AppendAuthError(nil, 1, rpc.AuthTooWeak),
		rpc.AppendRPCMismatch(nil, 1, 2, 2),
		ok(1, 100000, 4, 0xffffffff),
		ok(0xfffffff0),
		{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0, 0, 0, 1},
	}
}

// TestReplaySeeds runs the seeds (and some junk) through every query
// without fuzzing, so that a plain "go test" covers the decoders.
func TestReplaySeeds(t *testing.T) {
	seeds := append(replySeeds(), nil, []byte{1, 2, 3}, []byte(strings.Repeat("\xff", 64)))
	for _, seed := range seeds {
		for _, dgram := range []bool{true, false} {
			for _, args := range fuzzCommands {
				runReplay(t, seed, dgram, args)
			}
		}
	}
}

// TestReplayListing checks the printing of a decoded DUMP through the
// replay path, so that a passing fuzz run is known to reach the printers.
func TestReplayListing(t *testing.T) {
	seeds := replySeeds()
	r := replayRunner(seeds[7], false)
	cl := parseArgs("rpcinfo", []string{"127.0.0.1"}, r)
	if code := r.run(cl, cl.args); code != 0 {
		t.Fatalf("exit %d: %s", code, r.stderr.String())
	}
	want := "   program version netid     address                service    owner\n" +
		"    100000    4    tcp       0.0.0.0.0.111          portmapper superuser\n" +
		"    100003    3    udp6      ::.8.1                 nfs        1000\n"
	if got := r.stdout.String(); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

// largestDump is a DUMP reply with the longest list a reply may hold,
// whatever its content: programs all different, versions from 2^31 up,
// which -s never merges.
func largestDump() []byte {
	b := rpc.AppendSuccess(nil, 1)
	for i := range uint32(tirpc.MaxRows) {
		for _, w := range []uint32{1, 400000 + i, 1<<31 + i%7} {
			b = xdr.AppendUint32(b, w)
		}
		b = xdr.AppendString(b, "tcp")
		b = xdr.AppendString(b, "0.0.0.0.1.1")
		b = xdr.AppendString(b, "x")
	}
	return xdr.AppendUint32(b, 0)
}

// TestLargeReplies: the longest lists a reply may hold are printed whole;
// one row more does not decode. (BenchmarkLargeReplies shows the time
// they take, which grows with their length.)
func TestLargeReplies(t *testing.T) {
	b := largestDump()
	for _, args := range [][]string{{"-s", "127.0.0.1"}, {"127.0.0.1"}} {
		r := replayRunner(b, false)
		cl := parseArgs("rpcinfo", args, r)
		if code := r.run(cl, cl.args); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, r.stderr.String())
		}
		if n := strings.Count(r.stdout.String(), "\n"); n != tirpc.MaxRows+1 {
			t.Errorf("%v: %d lines", args, n)
		}
	}
	// One row more than a list may hold does not decode.
	b = append(b[:len(b)-4], xdr.AppendUint32(xdr.AppendUint32(xdr.AppendUint32(nil, 1), 1), 1)...)
	b = xdr.AppendString(xdr.AppendString(xdr.AppendString(b, "u"), "a"), "o")
	b = xdr.AppendUint32(b, 0)
	r := replayRunner(b, false)
	cl := parseArgs("rpcinfo", []string{"127.0.0.1"}, r)
	if code := r.run(cl, cl.args); code != 1 || r.stderr.String() != "rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n" {
		t.Errorf("exit %d %q", code, r.stderr.String())
	}
}

// BenchmarkLargeReplies prints the longest DUMP a reply may hold, with and
// without -s.
func BenchmarkLargeReplies(b *testing.B) {
	reply := largestDump()
	for name, args := range map[string][]string{"-s": {"-s", "127.0.0.1"}, "plain": {"127.0.0.1"}} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r := replayRunner(reply, false)
				cl := parseArgs("rpcinfo", args, r)
				if code := r.run(cl, cl.args); code != 0 {
					b.Fatalf("%v: exit %d", args, code)
				}
			}
		})
	}
}
