package tirpc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/portmapd/portmapd/xdr"
)

func TestNetconfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "netconfig")
	if err := os.WriteFile(p, []byte("# comment\ntcp6 tpi_cots_ord v inet6 tcp - -\nudp tpi_clts - inet udp - -\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nc := LoadNetconfig(p)
	if len(nc) != 2 || nc[0].Netid != "tcp6" || nc[1].Visible {
		t.Errorf("%+v", nc)
	}
	if got := LoadNetconfig(filepath.Join(dir, "missing")); len(got) != len(DefaultNetconfig) {
		t.Errorf("missing file: %+v", got)
	}
	var ids []string
	for _, n := range DefaultNetconfig.Nettype("circuit") {
		ids = append(ids, n.Netid)
	}
	if !slices.Equal(ids, []string{"tcp", "tcp6"}) {
		t.Errorf("circuit_v: %v", ids)
	}
}

func TestUaddr2taddr(t *testing.T) {
	local, _ := DefaultNetconfig.Lookup("local")
	udp6, _ := DefaultNetconfig.Lookup("udp6")
	for _, c := range []struct {
		nc   Netconf
		in   string
		want string
		ok   bool
	}{
		{local, "/run/rpcbind.sock", "/run/rpcbind.sock", true},
		{local, "relative.1.2", "relative", true}, // the port parts go
		{local, "no-dots", "", false},
		{udp6, "::1.0.111", "::1.0.111", true},
		{udp6, "127.0.0.1.0.111", "", false},
		{udp6, "::1.1.300", "::1.1.44", true}, // (hi<<8)|lo: 300 covers the bit of 256
	} {
		a, ok := Uaddr2Taddr(c.nc, c.in)
		if ok != c.ok || (ok && a.Uaddr() != c.want) {
			t.Errorf("uaddr2taddr(%s, %q) = %q %v", c.nc.Netid, c.in, a.Uaddr(), ok)
		}
	}
}

func TestInetAton(t *testing.T) {
	for in, want := range map[string]string{
		"127.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "10.0.258": "10.0.1.2", "017.0.0.1": "15.0.0.1",
		"1.2.3.4": "1.2.3.4", "2130706433": "127.0.0.1",
	} {
		if a, ok := InetAton(in); !ok || a.String() != want {
			t.Errorf("InetAton(%q) = %v %v", in, a, ok)
		}
	}
	for _, in := range []string{"1.2.3.4.5", "256.1.1.1", "a.b", "1..2", "09"} {
		if a, ok := InetAton(in); ok {
			t.Errorf("InetAton(%q) = %v", in, a)
		}
	}
}

// TestMessages checks clnt_sperror and clnt_spcreateerror on the
// statuses whose details they print.
func TestMessages(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{RPCErr{Stat: ProgVersMismatch, S1: 2, S2: 4}.Sperror("rpcinfo"), "rpcinfo: RPC: Program/version mismatch; low version = 2, high version = 4"},
		{RPCErr{Stat: CantRecv, S1: 111}.Sperror("x"), "x: RPC: Unable to receive; errno = Connection refused"},
		{RPCErr{Stat: AuthError, S1: 5}.Sperror("x"), "x: RPC: Authentication error; why = Client credential too weak"},
		{RPCErr{Stat: Status(40)}.Sperror("x"), "x: RPC: (unknown error code); s1 = 0, s2 = 0"},
		{CreateErr{Stat: SystemError, Detail: RPCErr{S1: 2}}.Spcreateerror("y"), "y: RPC: Remote system error - No such file or directory"},
		{CreateErr{Stat: PmapFailure, Detail: RPCErr{Stat: CantRecv, S1: 111}}.Spcreateerror("h"),
			"h: RPC: Port mapper failure - Unable to receive: errno 111 (Connection refused)"},
		{CreateErr{Stat: PmapFailure, Detail: RPCErr{Stat: TimedOut}}.Spcreateerror("h"), "h: RPC: Port mapper failure - Timed out"},
		{CreateErr{Stat: N2AXlateFailure}.Spcreateerror("h"), "h: RPC: (unknown error code)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestWalkGetaddr checks __rpcb_findaddr_timed's fallback from RPCBIND
// v4 to v3 and on to PMAP v2: which answers move on to the next version
// and which end the lookup.
func TestWalkGetaddr(t *testing.T) {
	for _, c := range []struct {
		name    string
		replies map[uint32]RPCErr
		asked   []uint32
		end     GetaddrEnd
		stat    Status
	}{
		{"version 4 answers", map[uint32]RPCErr{4: {}}, []uint32{4}, Answered, Success},
		{"no version 4: version 3 answers", map[uint32]RPCErr{4: {Stat: ProgVersMismatch, S1: 2, S2: 3}, 3: {}}, []uint32{4, 3}, Answered, Success},
		{"PROG_UNAVAIL on both: PMAP v2 next", map[uint32]RPCErr{4: {Stat: ProgUnavail}, 3: {Stat: ProgUnavail}}, []uint32{4, 3}, NoRPCBIND, ProgUnavail},
		{"GARBAGE_ARGS moves on", map[uint32]RPCErr{4: {Stat: CantDecodeArgs}, 3: {Stat: ProgVersMismatch, S1: 2, S2: 2}}, []uint32{4, 3}, NoRPCBIND, ProgVersMismatch},
		{"versions above 4 only: the lookup ends", map[uint32]RPCErr{4: {Stat: ProgVersMismatch, S1: 5, S2: 6}}, []uint32{4}, Stopped, ProgVersMismatch},
		{"a timeout ends the lookup", map[uint32]RPCErr{4: {Stat: TimedOut}}, []uint32{4}, Stopped, TimedOut},
		{"PROC_UNAVAIL ends the lookup", map[uint32]RPCErr{4: {Stat: ProcUnavail}}, []uint32{4}, Stopped, ProcUnavail},
	} {
		t.Run(c.name, func(t *testing.T) {
			var asked []uint32
			ua, e, end := WalkGetaddr(func(v uint32) (string, RPCErr) {
				asked = append(asked, v)
				if c.replies[v].Stat == Success {
					return "127.0.0.1.0.111", RPCErr{}
				}
				return "", c.replies[v]
			})
			if !slices.Equal(asked, c.asked) || end != c.end || e.Stat != c.stat || (end == Answered) != (ua != "") {
				t.Errorf("asked %v, ended %d with %v %q; want %v, %d with %v", asked, end, e.Stat, ua, c.asked, c.end, c.stat)
			}
		})
	}
}

// answerClnt answers every call with the same outcome.
type answerClnt struct {
	e    RPCErr
	addr Taddr
}

func (c *answerClnt) Call(uint32, []byte, func(*xdr.Decoder) error, time.Duration) Status {
	return c.e.Stat
}
func (c *answerClnt) Geterr() RPCErr         { return c.e }
func (c *answerClnt) SetVers(uint32)         {}
func (c *answerClnt) SetProg(uint32)         {}
func (c *answerClnt) SetServer(a Taddr) bool { c.addr = a; return true }
func (c *answerClnt) SetRetry(time.Duration) {}
func (c *answerClnt) Server() Taddr          { return c.addr }
func (c *answerClnt) Netid() string          { return "udp" }
func (c *answerClnt) Close()                 {}

// TestSessionKeepsCreateErr checks that rpc_createerr is the session's:
// a lookup that fails where libtirpc sets it returns the new error, and
// one that fails where libtirpc leaves it alone (a portmapper of only
// versions above 4) returns the error a C caller would read, the last.
func TestSessionKeepsCreateErr(t *testing.T) {
	answer := RPCErr{Stat: TimedOut}
	cfg := &Config{Netconfig: DefaultNetconfig, Port: 111, Transport: func(_ string, a Taddr, _, _ uint32) Clnt {
		return &answerClnt{e: answer, addr: a}
	}}
	udp, _ := DefaultNetconfig.Lookup("udp")
	s := NewSession(cfg)
	check := func(what string, want CreateErr) {
		t.Helper()
		_, err := s.RpcbGetaddr(100003, 3, udp, "127.0.0.1")
		var got CreateErr
		if !errors.As(err, &got) || got != want {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	answer = RPCErr{Stat: ProgVersMismatch, S1: 5, S2: 6}
	check("versions above 4 on a new session", CreateErr{})
	answer = RPCErr{Stat: TimedOut}
	check("a timeout", CreateErr{Stat: TimedOut, Detail: RPCErr{Stat: TimedOut}})
	answer = RPCErr{Stat: ProgVersMismatch, S1: 5, S2: 6}
	check("versions above 4 after the timeout", CreateErr{Stat: TimedOut, Detail: RPCErr{Stat: TimedOut}})
}
