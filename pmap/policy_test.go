package pmap

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/portmapd/portmapd/rpc"
)

func protectPrivileged(s *Service) { s.OpenPrivilegedPorts = false }

// An unprivileged local process must not map a port that only root can
// bind (or NFS's 2049): it could make clients send it their NFS, mount or
// status traffic. Privileged callers (uid 0 on the local socket, a
// privileged source port on loopback) still may, as nfsd and statd do.
func TestPrivilegedPortsNeedAPrivilegedCaller(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    caller
		vers uint32
		m    Mapping
		want bool
	}{
		{"uid 1000 on the local socket, port 2049", localUser, 3, Mapping{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1"}, false},
		{"uid 1000, port 635", localUser, 4, Mapping{Prog: 100005, Vers: 3, Netid: "udp6", Addr: "::.2.123"}, false},
		{"uid 1000, port 1024 is not privileged", localUser, 3, Mapping{Prog: 100005, Vers: 3, Netid: "udp", Addr: "0.0.0.0.4.0"}, true},
		{"uid 1000, a local path has no port", localUser, 3, Mapping{Prog: 100005, Vers: 3, Netid: "local", Addr: "/run/x"}, true},
		{"uid 0 on the local socket, port 2049", localRoot, 4, Mapping{Prog: 100003, Vers: 4, Netid: "tcp", Addr: "0.0.0.0.8.1"}, true},
		{"loopback, privileged source port", loopbackPriv, 4, Mapping{Prog: 100021, Vers: 4, Netid: "tcp", Addr: "0.0.0.0.3.0"}, true},
		{"loopback, unprivileged source port", loopbackUDP, 3, Mapping{Prog: 100021, Vers: 4, Netid: "udp", Addr: "0.0.0.0.3.0"}, false},
	} {
		h := newHarness(t, protectPrivileged)
		if got := h.set(tt.c, tt.vers, tt.m); got != tt.want {
			t.Errorf("%s: SET answered %v, want %v", tt.name, got, tt.want)
		}
	}
	h := newHarness(t, protectPrivileged)
	if h.pmapSet(loopbackUDP, 100003, 3, ProtoUDP, 2049) {
		t.Error("v2 SET of port 2049 from an unprivileged loopback port accepted")
	}
	if !h.pmapSet(loopbackPriv, 100003, 3, ProtoUDP, 2049) {
		t.Error("v2 SET of port 2049 from a privileged port refused")
	}
	// And the unprivileged caller cannot remove what root registered.
	if h.unset(localUser, 3, 100003, 3, "udp") {
		t.Error("uid 1000 removed root's mapping")
	}
}

func TestPortRange(t *testing.T) {
	m := func(port int) Mapping {
		return Mapping{Prog: 400001, Vers: uint32(port), Netid: "tcp", Addr: FormatUaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)))}
	}
	refuse := func(s *Service) { s.Ports = &PortRange{Low: 32768, High: 32800, Refuse: true} }
	flag := func(s *Service) { s.Ports = &PortRange{Low: 32768, High: 32800} }
	h := newHarness(t, refuse)
	for port, want := range map[int]bool{32768: true, 32800: true, 32767: false, 32801: false, 40000: false} {
		if got := h.set(localRoot, 3, m(port)); got != want {
			t.Errorf("refusing range: port %d answered %v, want %v", port, got, want)
		}
	}
	h = newHarness(t, flag)
	if !h.set(localRoot, 3, m(40000)) {
		t.Error("flagging range refused a port outside it")
	}
}

func TestAccessListsRefuseAllButNull(t *testing.T) {
	denied := netip.MustParseAddr("10.0.0.2")
	h := newHarness(t, func(s *Service) { s.Access = func(a netip.Addr) bool { return a != denied } })
	if _, err := h.call(remoteUDP, 2, ProcNull, nil); err != nil {
		t.Errorf("NULL from a denied host: %v, want an answer", err)
	}
	for _, proc := range []uint32{ProcGetport, ProcDump} {
		if _, err := h.call(remoteUDP, 2, proc, make([]byte, 16)); !errors.Is(err, rpc.ErrAuthTooWeak) {
			t.Errorf("proc %d from a denied host: %v, want AUTH_TOOWEAK", proc, err)
		}
	}
	if _, err := h.call(from("udp", "10.0.0.3:700"), 2, ProcDump, nil); err != nil {
		t.Errorf("DUMP from an allowed host: %v", err)
	}
	if _, err := h.call(localUser, 4, ProcDump, nil); err != nil {
		t.Errorf("DUMP over the local socket: %v", err)
	}
}

func TestParsePortRange(t *testing.T) {
	for s, want := range map[string]*PortRange{
		"32768-32800": {Low: 32768, High: 32800},
		"1-65535":     {Low: 1, High: 65535},
		"7-7":         {Low: 7, High: 7},
		"0-10":        nil, // port 0 is no port
		"10-9":        nil,
		"1-65536":     nil,
		"100":         nil,
		"a-b":         nil,
		"":            nil,
	} {
		got, err := ParsePortRange(s)
		if want == nil {
			if !errors.Is(err, ErrPortRange) {
				t.Errorf("%q: %v, %v; want ErrPortRange", s, got, err)
			}
			continue
		}
		if err != nil || got != *want {
			t.Errorf("%q: %v, %v; want %v", s, got, err, *want)
		}
		if !got.Contains(want.Low) || !got.Contains(want.High) || got.Contains(want.High+1) || got.Contains(want.Low-1) {
			t.Errorf("%q: Contains disagrees with the bounds", s)
		}
	}
}
