package pmap

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"syscall"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// RPCBIND versions 3 and 4 (RFC 1833, section 2).

// rpcbArgs is struct rpcb, the argument of SET, UNSET, GETADDR,
// GETVERSADDR and GETADDRLIST. Its strings alias the call.
type rpcbArgs struct {
	prog, vers         uint32
	netid, addr, owner []byte
}

// decodeRpcb decodes the call's struct rpcb, noting padding that was not
// zero for the server's count.
func decodeRpcb(c *rpc.Call) (rpcbArgs, error) {
	d := xdr.NewDecoder(c.Args)
	defer c.NotePadding(d)
	var r rpcbArgs
	var err error
	if r.prog, err = d.Uint32(); err != nil {
		return r, rpc.ErrGarbageArgs
	}
	if r.vers, err = d.Uint32(); err != nil {
		return r, rpc.ErrGarbageArgs
	}
	if r.netid, err = d.StringBytes(MaxWireString); err != nil {
		return r, rpc.ErrGarbageArgs
	}
	if r.addr, err = d.StringBytes(MaxWireString); err != nil {
		return r, rpc.ErrGarbageArgs
	}
	if r.owner, err = d.StringBytes(MaxWireString); err != nil {
		return r, rpc.ErrGarbageArgs
	}
	r.netid, r.addr, r.owner = cstring(r.netid), cstring(r.addr), cstring(r.owner)
	return r, nil
}

// cstring cuts b at its first NUL: rpcbind handles the strings it decodes
// as C strings, so "udp\x00junk" registers, and is looked up, as "udp".
func cstring(b []byte) []byte {
	if i := indexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func (s *Service) rpcbProcs(v uint32) []rpc.Handler {
	sv := statVers(v)
	procs := []rpc.Handler{
		ProcNull:        s.counted(sv, ProcNull, null),
		ProcSet:         s.counted(sv, ProcSet, func(w *rpc.Reply, c *rpc.Call) error { return s.rpcbSet(w, c, sv) }),
		ProcUnset:       s.counted(sv, ProcUnset, func(w *rpc.Reply, c *rpc.Call) error { return s.rpcbUnset(w, c, sv) }),
		ProcGetaddr:     s.counted(sv, ProcGetaddr, func(w *rpc.Reply, c *rpc.Call) error { return s.getaddr(w, c, sv, false) }),
		ProcDump:        s.counted(sv, ProcDump, s.rpcbDump),
		ProcCallit:      s.counted(sv, ProcCallit, s.remoteCall(sv, false)),
		ProcGettime:     s.counted(sv, ProcGettime, s.gettime),
		ProcUaddr2taddr: s.counted(sv, ProcUaddr2taddr, s.uaddr2taddr),
		ProcTaddr2uaddr: s.counted(sv, ProcTaddr2uaddr, s.taddr2uaddr),
	}
	if v == VersRPCB4 {
		procs = append(procs,
			s.counted(sv, ProcGetversaddr, func(w *rpc.Reply, c *rpc.Call) error { return s.getaddr(w, c, sv, true) }),
			s.counted(sv, ProcIndirect, s.remoteCall(sv, true)),
			s.counted(sv, ProcGetaddrlist, s.getaddrlist),
			s.counted(sv, ProcGetstat, s.getstat),
		)
	}
	return procs
}

func (s *Service) rpcbSet(w *rpc.Reply, c *rpc.Call, sv int) error {
	r, err := decodeRpcb(c)
	if err != nil {
		return err
	}
	if !s.mayChange(c) {
		return rpc.ErrAuthTooWeak
	}
	ok, gen := false, uint64(0)
	if len(r.netid) <= MaxNetidLen && len(r.addr) <= MaxAddrLen {
		m := Mapping{Prog: r.prog, Vers: r.vers, Netid: string(r.netid), Addr: string(r.addr), Owner: ownerOf(c)}
		if s.admit(c, m) {
			ok, gen = s.Registry.SetAt(m)
		}
	}
	s.Stats.Set(sv, ok)
	if ok {
		s.changed(w, gen)
	}
	w.Body = xdr.AppendBool(w.Body, ok)
	return nil
}

func (s *Service) rpcbUnset(w *rpc.Reply, c *rpc.Call, sv int) error {
	r, err := decodeRpcb(c)
	if err != nil {
		return err
	}
	if !s.mayChange(c) {
		return rpc.ErrAuthTooWeak
	}
	before := s.Registry.Generation()
	ok, gen := s.Registry.UnsetAt(r.prog, r.vers, string(r.netid), ownerOf(c))
	if !ok {
		s.rejected(rpc.RefusedNotOwner)
	}
	s.Stats.Unset(sv, ok)
	if gen != before {
		s.changed(w, gen)
	}
	w.Body = xdr.AppendBool(w.Body, ok)
	return nil
}

// getaddr serves GETADDR and, with exact set, GETVERSADDR. It looks the
// program up on the transport the call arrived on, not on the r_netid the
// caller sent, and answers with the address merged for the caller.
func (s *Service) getaddr(w *rpc.Reply, c *rpc.Call, sv int, exact bool) error {
	r, err := decodeRpcb(c)
	if err != nil {
		return err
	}
	m, found, exactHit := s.Registry.Lookup(r.prog, r.vers, c.Netid)
	if exact && !exactHit {
		found = false
	}
	res, start := beginString(w.Body)
	if found {
		res = s.mergeFor(res, c, m.Addr, r.addr)
	}
	ok := len(res) > start+4
	w.Body = endString(res, start)
	if s.serves(c.Netid) {
		s.Stats.Lookup(sv, r.prog, r.vers, c.Netid, ok)
	}
	return nil
}

// mergeFor appends the address at which caller c reaches a service
// registered at addr; when merging fails it appends addr as it is, as
// rpcbind's GETADDR does. rpcbind merges with the netconfig of the
// transport the call arrived on, whatever the case of the entry's netid.
func (s *Service) mergeFor(b []byte, c *rpc.Call, addr string, hint []byte) []byte {
	if c.Netid == rpc.NetidLocal || !s.serves(c.Netid) {
		return append(b, addr...)
	}
	merged, ok := s.Ifaces.merge(b, addr, c.Remote.Addr(), string(hint), isIPv6Netid(c.Netid))
	if !ok {
		return append(b, addr...)
	}
	return merged
}

func isIPv6Netid(netid string) bool {
	return netid == rpc.NetidUDP6 || netid == rpc.NetidTCP6
}

// family is a netconfig protocol family: "inet", "inet6" or "loopback".
func family(netid string) string {
	switch strings.ToLower(netid) {
	case rpc.NetidUDP, rpc.NetidTCP:
		return "inet"
	case rpc.NetidUDP6, rpc.NetidTCP6:
		return "inet6"
	case rpc.NetidLocal, "unix", "ticlts", "ticots", "ticotsord":
		return "loopback"
	}
	return ""
}

// netconfig semantics and protocol of an rpcb_entry.
func semantics(netid string) (uint32, string) {
	switch netid {
	case rpc.NetidUDP, rpc.NetidUDP6:
		return 1, "udp" // NC_TPI_CLTS
	case rpc.NetidTCP, rpc.NetidTCP6:
		return 3, "tcp" // NC_TPI_COTS_ORD
	}
	return 3, "-" // /etc/netconfig's "local": tpi_cots_ord, no protocol
}

func (s *Service) gettime(w *rpc.Reply, _ *rpc.Call) error {
	w.Body = xdr.AppendUint32(w.Body, uint32(s.Now().Unix()))
	return nil
}

// Address families as they appear, in host byte order, at the start of a
// sockaddr carried in a netbuf.
const (
	sizeofSockaddrIn  = 16
	sizeofSockaddrIn6 = 28
	sizeofSockaddrUn  = 110
)

// addrFamily says which address family to convert with. rpcbind uses the
// family of the transport the call arrived on; over the local socket that
// is AF_LOCAL, so rpcbind 1.2.6 answers libtirpc's rpcb_taddr2uaddr of an
// IP address with the sockaddr's bytes read as a path, and its
// rpcb_uaddr2taddr of "1.2.3.4.0.111" with a sockaddr_un for "1.2.3.4".
// portmapd takes the family from the address itself there.
func addrFamily(c *rpc.Call, fromAddr int) int {
	switch c.Netid {
	case rpc.NetidUDP, rpc.NetidTCP:
		return syscall.AF_INET
	case rpc.NetidUDP6, rpc.NetidTCP6:
		return syscall.AF_INET6
	}
	return fromAddr
}

func (s *Service) taddr2uaddr(w *rpc.Reply, c *rpc.Call) error {
	d := xdr.NewDecoder(c.Args)
	defer c.NotePadding(d)
	maxlen, err := d.Uint32()
	if err != nil || maxlen > MaxWireString {
		return rpc.ErrGarbageArgs
	}
	buf, err := d.Opaque(int(maxlen))
	if err != nil {
		return rpc.ErrGarbageArgs
	}
	fam := 0
	if len(buf) >= 2 {
		fam = int(binary.NativeEndian.Uint16(buf))
	}
	res, start := beginString(w.Body)
	switch addrFamily(c, fam) {
	case syscall.AF_INET:
		if len(buf) >= sizeofSockaddrIn {
			port := binary.BigEndian.Uint16(buf[2:4])
			res = AppendUaddr(res, netip.AddrPortFrom(netip.AddrFrom4([4]byte(buf[4:8])), port))
		}
	case syscall.AF_INET6:
		if len(buf) >= sizeofSockaddrIn6 {
			port := binary.BigEndian.Uint16(buf[2:4])
			res = AppendUaddr(res, netip.AddrPortFrom(netip.AddrFrom16([16]byte(buf[8:24])), port))
		}
	case syscall.AF_UNIX:
		// libtirpc takes the path from the bytes the netbuf holds, up to
		// a NUL, without capping it at the size of sun_path.
		if len(buf) > 2 {
			res = append(res, cstring(buf[2:])...)
		}
	}
	w.Body = endString(res, start)
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (s *Service) uaddr2taddr(w *rpc.Reply, c *rpc.Call) error {
	d := xdr.NewDecoder(c.Args)
	defer c.NotePadding(d)
	ua, err := d.StringBytes(MaxWireString)
	if err != nil {
		return rpc.ErrGarbageArgs
	}
	uaddr := string(cstring(ua))
	fam := syscall.AF_INET
	switch {
	case strings.HasPrefix(uaddr, "/"):
		fam = syscall.AF_UNIX
	case strings.Contains(uaddr, ":"):
		fam = syscall.AF_INET6
	}
	var sa []byte
	switch addrFamily(c, fam) {
	case syscall.AF_INET:
		if ap, ok := LenientUaddr(uaddr, 4); ok {
			sa = make([]byte, sizeofSockaddrIn)
			binary.NativeEndian.PutUint16(sa, syscall.AF_INET)
			binary.BigEndian.PutUint16(sa[2:], ap.Port())
			a := ap.Addr().As4()
			copy(sa[4:], a[:])
		}
	case syscall.AF_INET6:
		if ap, ok := LenientUaddr(uaddr, 6); ok {
			sa = make([]byte, sizeofSockaddrIn6)
			binary.NativeEndian.PutUint16(sa, syscall.AF_INET6)
			binary.BigEndian.PutUint16(sa[2:], ap.Port())
			a := ap.Addr().As16()
			copy(sa[8:], a[:])
		}
	case syscall.AF_UNIX:
		// As libtirpc: the path truncated to fit sun_path with its NUL,
		// a length of SUN_LEN and a maxlen of sizeof(struct sockaddr_un).
		path := uaddr[:min(len(uaddr), sizeofSockaddrUn-3)]
		sa = make([]byte, 2, 2+len(path))
		binary.NativeEndian.PutUint16(sa, syscall.AF_UNIX)
		sa = append(sa, path...)
		w.Body = xdr.AppendUint32(w.Body, sizeofSockaddrUn) // maxlen
		w.Body = xdr.AppendOpaque(w.Body, sa)
		return nil
	}
	w.Body = xdr.AppendUint32(w.Body, uint32(len(sa))) // maxlen
	w.Body = xdr.AppendOpaque(w.Body, sa)
	return nil
}

// getaddrlist answers every mapping of exactly (prog, vers) whose netid
// is of the arrival transport's protocol family, addresses merged.
func (s *Service) getaddrlist(w *rpc.Reply, c *rpc.Call) error {
	r, err := decodeRpcb(c)
	if err != nil {
		return err
	}
	fam := family(c.Netid)
	res := w.Body
	var matches []Mapping
	s.Registry.Each(func(m *Mapping) bool {
		if m.Prog == r.prog && m.Vers == r.vers && family(m.Netid) == fam {
			matches = append(matches, *m)
		}
		return true
	})
	// rpcbind counts the lookup as a success when the last merge it tried
	// gave an address.
	ok := false
	for _, m := range matches {
		if !s.serves(m.Netid) {
			// rpcbind has no netconfig for the entry and drops the whole
			// reply; skipping the entry keeps the others usable.
			continue
		}
		var merged []byte
		ok = false
		if c.Netid != rpc.NetidLocal {
			// Over the local socket rpcbind cannot name the caller, so
			// the merge fails for every client that did not bind its
			// socket to a path.
			merged, ok = s.Ifaces.merge(nil, m.Addr, c.Remote.Addr(), string(r.addr), isIPv6Netid(c.Netid))
		}
		if !ok {
			continue
		}
		sem, proto := semantics(m.Netid)
		res = AppendAddrEntry(xdr.AppendBool(res, true),
			&AddrEntry{Addr: string(merged), Netid: m.Netid, Semantics: sem, Family: fam, Proto: proto})
	}
	if s.serves(c.Netid) {
		s.Stats.Lookup(StatV4, r.prog, r.vers, c.Netid, ok)
	}
	w.Body = xdr.AppendBool(res, false)
	return nil
}

func (s *Service) getstat(w *rpc.Reply, _ *rpc.Call) error {
	w.Body = s.Stats.AppendXDR(w.Body)
	return nil
}
