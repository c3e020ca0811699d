package pmap

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// FuzzUaddr checks the universal-address codecs: an IP address and port
// survive FormatUaddr and ParseUaddr; no string makes a parser panic;
// whatever ParseUaddr accepts formats to a string that parses to the same
// address and port, and the lenient parsers rpcbind's semantics need agree
// with it; the inet_pton parsers agree with net/netip on every host part.
// Seeds: testdata/fuzz/FuzzUaddr.
func FuzzUaddr(f *testing.F) {
	f.Add("0.0.0.0.0.111", []byte{127, 0, 0, 1}, uint16(111))
	f.Add("::1.8.1", []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(2049))
	f.Fuzz(func(t *testing.T, s string, raw []byte, port uint16) {
		// A round trip from an address.
		var a netip.Addr
		switch {
		case len(raw) >= 16:
			a = netip.AddrFrom16([16]byte(raw))
		case len(raw) >= 4:
			a = netip.AddrFrom4([4]byte(raw))
		}
		if a.IsValid() {
			ap := netip.AddrPortFrom(a, port)
			u := FormatUaddr(ap)
			back, err := ParseUaddr(u)
			if err != nil || back != ap {
				t.Fatalf("%v -> %q -> (%v, %v)", ap, u, back, err)
			}
			if p, ok := UaddrPort(u); !ok || p != uint32(port) {
				t.Fatalf("UaddrPort(%q) = (%d, %v), want %d", u, p, ok, port)
			}
			if l, ok := LenientUaddr(u, familyOf(a)); !ok || l != ap {
				t.Fatalf("LenientUaddr(%q) = (%v, %v), want %v", u, l, ok, ap)
			}
		}

		// Any string.
		ap, err := ParseUaddr(s)
		port32, portOK := UaddrPort(s)
		l4, ok4 := LenientUaddr(s, 4)
		l6, ok6 := LenientUaddr(s, 6)
		if err == nil {
			again := FormatUaddr(ap)
			if back, err := ParseUaddr(again); err != nil || back != ap {
				t.Fatalf("%q -> %v -> %q -> (%v, %v)", s, ap, again, back, err)
			}
			if !portOK || port32 != uint32(ap.Port()) {
				t.Fatalf("UaddrPort(%q) = (%d, %v), ParseUaddr says port %d", s, port32, portOK, ap.Port())
			}
			l, ok := l4, ok4
			if ap.Addr().Is6() {
				l, ok = l6, ok6
			}
			if !ok || l != ap {
				t.Fatalf("LenientUaddr(%q) = (%v, %v), ParseUaddr says %v", s, l, ok, ap)
			}
		}
		if ok4 && !l4.Addr().Is4() || ok6 && !l6.Addr().Is6() {
			t.Fatalf("LenientUaddr(%q) returned the wrong family: %v %v", s, l4, l6)
		}

		// inet_pton and net/netip read host parts alike (zones aside).
		if !strings.Contains(s, "%") {
			na, nerr := netip.ParseAddr(s)
			p4, pok4 := inetPton4(s)
			p6, pok6 := inetPton6(s)
			if (nerr == nil && na.Is4()) != pok4 || pok4 && na.As4() != p4 {
				t.Fatalf("inet_pton4(%q) = (%v, %v), netip says (%v, %v)", s, p4, pok4, na, nerr)
			}
			if (nerr == nil && na.Is6()) != pok6 || pok6 && na.As16() != p6 {
				t.Fatalf("inet_pton6(%q) = (%v, %v), netip says (%v, %v)", s, p6, pok6, na, nerr)
			}
		}
	})
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// fuzzCallers reach each transport as a client might: a loopback caller
// from a privileged port, remote callers, a user on the local socket.
var fuzzCallers = []caller{
	from("tcp6", "[::1]:700"),
	from("udp6", "[2001:db8::2]:1000"),
	from("tcp", "10.0.0.2:5000"),
	from("udp", "127.0.0.1:40000"),
	localUID(1000),
}

// FuzzProcedures sends arbitrary argument bytes to every procedure of
// every version over every transport: nothing panics, every error is one
// the rpc server knows how to answer, and every result decodes as the
// procedure's result type, exactly. Afterwards no triple is registered
// twice. Seeds:
// testdata/fuzz/FuzzProcedures.
func FuzzProcedures(f *testing.F) {
	f.Add(rpcbArg(progA, 1, "udp", "0.0.0.0.8.1", ""))
	f.Fuzz(func(t *testing.T, args []byte) {
		h := newHarness(t)
		for _, c := range fuzzCallers {
			for vers := uint32(VersPMAP); vers <= VersRPCB4; vers++ {
				for proc := uint32(0); proc <= highProc; proc++ {
					res, err := h.call(c, vers, proc, args)
					if err != nil {
						if !knownError(err) {
							t.Fatalf("%s v%d proc %d: unexpected error %v", c, vers, proc, err)
						}
						continue
					}
					if err := checkResult(vers, proc, res); err != nil {
						t.Fatalf("%s v%d proc %d: result %x: %v", c, vers, proc, res, err)
					}
				}
			}
		}
		// A superuser may unset, and set again at the end, even the
		// daemon's own rows, as in rpcbind; but no triple is ever there
		// twice, and the table agrees with the registry.
		dump := h.dump(localRoot, VersRPCB3)
		if d := diffMappings(dump, h.svc.Registry.Mappings()); d != "" {
			t.Fatalf("DUMP and the registry disagree: %s", d)
		}
		seen := map[key]bool{}
		for _, m := range dump {
			k := key{m.Prog, m.Vers, strings.ToLower(m.Netid)}
			if seen[k] {
				t.Fatalf("%v registered twice", k)
			}
			seen[k] = true
		}
	})
}

func knownError(err error) bool {
	switch err {
	case rpc.ErrGarbageArgs, rpc.ErrAuthTooWeak, rpc.ErrNoReply, rpc.ErrProcUnavail, rpc.ErrProgUnavail, rpc.ErrSystem:
		return true
	}
	var pm *rpc.ProgMismatchError
	return errors.As(err, &pm)
}

// checkResult decodes res as the result of (vers, proc).
func checkResult(vers, proc uint32, res []byte) error {
	d := xdr.NewDecoder(res)
	var err error
	switch {
	case proc == ProcNull:
	case proc == ProcSet, proc == ProcUnset:
		_, err = d.Bool()
	case proc == ProcGetport && vers == VersPMAP, proc == ProcGettime:
		_, err = d.Uint32()
	case proc == ProcGetaddr, proc == ProcTaddr2uaddr, proc == ProcGetversaddr:
		_, err = d.String(MaxWireString)
	case proc == ProcDump && vers == VersPMAP:
		_, err = decodePmapList(res)
		return err
	case proc == ProcDump:
		_, err = decodeRpcbList(res)
		return err
	case proc == ProcUaddr2taddr:
		var nb netbuf
		nb, err = decodeNetbuf(res)
		if err == nil && int(nb.maxlen) < len(nb.buf) {
			err = fmt.Errorf("netbuf of %d bytes with maxlen %d", len(nb.buf), nb.maxlen)
		}
		return err
	case proc == ProcGetaddrlist:
		_, err = decodeEntryList(res)
		return err
	case proc == ProcGetstat:
		_, err = decodeStatByVers(res)
		return err
	default:
		return fmt.Errorf("a result from a procedure that has none")
	}
	return done(d, err)
}
