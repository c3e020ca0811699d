package pmap

import (
	"errors"
	"reflect"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

// The daemon's encoders and the clients' decoders of RFC 1833's replies
// are each other's inverse: what GETSTAT, GETADDRLIST, DUMP and a remote
// call send decodes to what was encoded.
func TestWireRoundTrips(t *testing.T) {
	t.Run("rpcb_stat_byvers", func(t *testing.T) {
		s := NewStats()
		s.Proc(StatV4, ProcGetstat)
		s.Set(StatV3, true)
		s.Unset(StatV2, true)
		s.Lookup(StatV4, 100003, 3, "tcp", true)
		s.Lookup(StatV4, 100005, 1, "udp", false)
		s.RemoteCall(StatV2, 100024, 1, 0, "udp", true, false)
		st, err := DecodeStatByVers(xdr.NewDecoder(s.AppendXDR(nil)), 10)
		if err != nil {
			t.Fatal(err)
		}
		if st[StatV4].Info[ProcGetstat] != 1 || st[StatV3].Set != 1 || st[StatV2].Unset != 1 {
			t.Errorf("counters: %+v", st)
		}
		// Newest first, as rpcbind prepends.
		wantAddrs := []AddrStat{{Prog: 100005, Vers: 1, Failure: 1, Netid: "udp"}, {Prog: 100003, Vers: 3, Success: 1, Netid: "tcp"}}
		if !reflect.DeepEqual(st[StatV4].Addrs, wantAddrs) {
			t.Errorf("lookups %+v, want %+v", st[StatV4].Addrs, wantAddrs)
		}
		wantRmts := []RmtStat{{Prog: 100024, Vers: 1, Success: 1, Indirect: 1, Netid: "udp"}} // a first call counts as indirect, as in rpcbind
		if !reflect.DeepEqual(st[StatV2].Rmts, wantRmts) {
			t.Errorf("remote calls %+v, want %+v", st[StatV2].Rmts, wantRmts)
		}
	})
	t.Run("rpcb_entry_list", func(t *testing.T) {
		in := []AddrEntry{{"127.0.0.1.8.1", "tcp", 3, "inet", "tcp"}, {"::1.8.1", "udp6", 1, "inet6", "udp"}}
		var b []byte
		for i := range in {
			b = AppendAddrEntry(xdr.AppendBool(b, true), &in[i])
		}
		out, err := DecodeAddrList(xdr.NewDecoder(xdr.AppendBool(b, false)), nil, 10)
		if err != nil || !reflect.DeepEqual(out, in) {
			t.Errorf("%+v %v, want %+v", out, err, in)
		}
	})
	t.Run("rpcblist and pmaplist", func(t *testing.T) {
		r := NewRegistry()
		in := []Mapping{{100000, 4, "tcp", "0.0.0.0.0.111", OwnerSuperuser}, {100003, 3, "udp", "0.0.0.0.8.1", OwnerUnknown}}
		for _, m := range in {
			r.Set(m)
		}
		var dc dumpCache
		rows, err := DecodeRpcbList(xdr.NewDecoder(dc.get(r, encodeRpcbRow)), nil, 10)
		if err != nil || len(rows) != 2 {
			t.Fatalf("%+v %v", rows, err)
		}
		var dv2 dumpCache
		ports, err := DecodePmapList(xdr.NewDecoder(dv2.get(r, encodePmapRow)), nil, 10)
		if err != nil || len(ports) != 2 {
			t.Fatalf("%+v %v", ports, err)
		}
		for _, m := range in {
			if !containsMapping(rows, m) {
				t.Errorf("DUMP lost %+v: %+v", m, rows)
			}
			port, _ := UaddrPort(m.Addr)
			if !containsPort(ports, PortMapping{m.Prog, m.Vers, NetidProto(m.Netid), port}) {
				t.Errorf("PMAP DUMP lost %+v: %+v", m, ports)
			}
		}
	})
	t.Run("remote-call results", func(t *testing.T) {
		in := RmtcallResult{Addr: "127.0.0.1.3.233", Results: []byte{0, 0, 0, 1}}
		out, err := DecodeRmtcallResult(xdr.NewDecoder(AppendRmtcallResult(nil, &in)), 4)
		if err != nil || !reflect.DeepEqual(out, in) {
			t.Errorf("v3/v4: %+v %v", out, err)
		}
		in2 := PortCallResult{Port: 1001, Results: []byte{0, 0, 0, 1}}
		out2, err := DecodePortCallResult(xdr.NewDecoder(AppendPortCallResult(nil, &in2)), 4)
		if err != nil || !reflect.DeepEqual(out2, in2) {
			t.Errorf("v2: %+v %v", out2, err)
		}
		if _, err := DecodeRmtcallResult(xdr.NewDecoder(AppendRmtcallResult(nil, &in)), 3); !errors.Is(err, xdr.ErrTooLong) {
			t.Errorf("results over the maximum: %v", err)
		}
	})
}

func containsMapping(ms []Mapping, m Mapping) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func containsPort(ps []PortMapping, p PortMapping) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// A client reads lists as libtirpc does: any non-zero flag continues a
// list, a string ends at its first NUL, and a list longer than the
// caller allows is an error rather than memory without bound.
func TestWireReadsAsLibtirpc(t *testing.T) {
	b := xdr.AppendUint32(nil, 7) // a flag that is neither 0 nor 1
	b = AppendRpcb(b, &Mapping{Prog: 1, Vers: 2, Netid: "tcp\x00junk", Addr: "a", Owner: "o"})
	b = xdr.AppendBool(b, false)
	rows, err := DecodeRpcbList(xdr.NewDecoder(b), nil, 10)
	if err != nil || len(rows) != 1 || rows[0].Netid != "tcp" {
		t.Errorf("%+v %v", rows, err)
	}
	long := xdr.AppendBool(AppendPortMapping(xdr.AppendBool(nil, true), &PortMapping{}), true)
	long = xdr.AppendBool(AppendPortMapping(long, &PortMapping{}), false)
	if _, err := DecodePmapList(xdr.NewDecoder(long), nil, 1); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("two rows where one is allowed: %v", err)
	}
	if _, err := DecodeStatByVers(xdr.NewDecoder(make([]byte, 40)), 1); !errors.Is(err, xdr.ErrShort) {
		t.Errorf("a short rpcb_stat: %v", err)
	}
}

// A client checking an answer reads its port strictly: two fields of one
// to three digits, each at most 255.
func TestStrictUaddrPort(t *testing.T) {
	tests := []struct {
		in   string
		port uint32
		ok   bool
	}{
		{"0.0.0.0.0.111", 111, true},
		{"127.0.0.1.8.1", 2049, true},
		{"::1.255.255", 65535, true},
		{"0.0.0.0.1.256", 0, false},
		{"0.0.0.0.1.", 0, false},
		{"0.0.0.0.x.1", 0, false},
		{"0.0.0.0.0001.1", 0, false},
		{"111", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		port, ok := StrictUaddrPort(tt.in)
		bport, bok := StrictUaddrPort([]byte(tt.in))
		if port != tt.port || ok != tt.ok || bport != port || bok != ok {
			t.Errorf("StrictUaddrPort(%q) = %d, %v (bytes: %d, %v); want %d, %v", tt.in, port, ok, bport, bok, tt.port, tt.ok)
		}
	}
}

// FuzzWireDecoders: no reply makes a decoder panic or return more rows
// than allowed, and a list that decodes encodes back to bytes that decode
// to the same rows.
func FuzzWireDecoders(f *testing.F) {
	f.Add(xdr.AppendBool(AppendRpcb(xdr.AppendBool(nil, true), &Mapping{1, 2, "tcp", "0.0.0.0.0.1", "x"}), false))
	f.Add(NewStats().AppendXDR(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxRows = 8
		rows, err := DecodeRpcbList(xdr.NewDecoder(b), nil, maxRows)
		if len(rows) > maxRows {
			t.Fatalf("%d rows", len(rows))
		}
		if err == nil {
			var enc []byte
			for i := range rows {
				enc = AppendRpcb(xdr.AppendBool(enc, true), &rows[i])
			}
			again, err := DecodeRpcbList(xdr.NewDecoder(xdr.AppendBool(enc, false)), nil, maxRows)
			if err != nil || !reflect.DeepEqual(again, rows) && len(rows) > 0 {
				t.Fatalf("round trip: %+v %v, want %+v", again, err, rows)
			}
		}
		DecodePmapList(xdr.NewDecoder(b), nil, maxRows)
		DecodeAddrList(xdr.NewDecoder(b), nil, maxRows)
		DecodeStatByVers(xdr.NewDecoder(b), maxRows)
		DecodeRmtcallResult(xdr.NewDecoder(b), 64)
		DecodePortCallResult(xdr.NewDecoder(b), 64)
	})
}
