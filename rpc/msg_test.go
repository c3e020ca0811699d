package rpc

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/portmapd/portmapd/xdr"
)

func TestParseCall(t *testing.T) {
	args := words(100003, 3, 6, 0)
	ok := rawCall{xid: 0x11223344, rpcvers: 2, prog: 100000, vers: 2, proc: 3, args: args}
	with := func(f func(c *rawCall)) []byte {
		c := ok
		f(&c)
		return c.bytes()
	}
	tests := []struct {
		name    string
		in      []byte
		err     error
		context string // what the error says it was decoding
		check   func(t *testing.T, h CallHeader)
	}{
		{
			name: "a GETPORT call with AUTH_NONE",
			in:   ok.bytes(),
			check: func(t *testing.T, h CallHeader) {
				want := CallHeader{XID: 0x11223344, RPCVers: 2, Prog: 100000, Vers: 2, Proc: 3,
					Cred: OpaqueAuth{Body: []byte{}}, Verf: OpaqueAuth{Body: []byte{}}}
				if h.XID != want.XID || h.RPCVers != 2 || h.Prog != want.Prog || h.Vers != want.Vers ||
					h.Proc != want.Proc || h.Cred.Flavor != 0 || len(h.Cred.Body) != 0 ||
					h.Verf.Flavor != 0 || len(h.Verf.Body) != 0 {
					t.Errorf("got %+v, want %+v", h, want)
				}
			},
		},
		{
			name: "an AUTH_SYS credential is returned as its body",
			in:   with(func(c *rawCall) { c.cred = OpaqueAuth{AuthSys, hexBytes(t, authSysBody)} }),
			check: func(t *testing.T, h CallHeader) {
				if h.Cred.Flavor != AuthSys || !bytes.Equal(h.Cred.Body, hexBytes(t, authSysBody)) {
					t.Errorf("cred = %+v", h.Cred)
				}
			},
		},
		{
			name: "rpcvers is not judged by the parser (RPC_MISMATCH needs the xid)",
			in:   with(func(c *rawCall) { c.rpcvers = 3 }),
			check: func(t *testing.T, h CallHeader) {
				if h.RPCVers != 3 || h.XID != 0x11223344 {
					t.Errorf("got %+v", h)
				}
			},
		},
		{
			name: "a credential body of 400 bytes is allowed",
			in:   with(func(c *rawCall) { c.cred = OpaqueAuth{7, make([]byte, 400)} }),
			check: func(t *testing.T, h CallHeader) {
				if len(h.Cred.Body) != 400 || h.Cred.Flavor != 7 {
					t.Errorf("cred flavour %d, %d bytes", h.Cred.Flavor, len(h.Cred.Body))
				}
			},
		},
		{
			name: "a verifier body of 400 bytes is allowed",
			in:   with(func(c *rawCall) { c.verf = OpaqueAuth{6, make([]byte, 400)} }),
			check: func(t *testing.T, h CallHeader) {
				if len(h.Verf.Body) != 400 {
					t.Errorf("verf %d bytes", len(h.Verf.Body))
				}
			},
		},
		{
			name: "a call without arguments",
			in:   with(func(c *rawCall) { c.args = nil }),
		},
		{
			name: "msg_type REPLY is not a call",
			in:   with(func(c *rawCall) { c.mtype = MsgReply }),
			err:  ErrNotCall,
		},
		{
			name: "msg_type 2 is not a call",
			in:   with(func(c *rawCall) { c.mtype = 2 }),
			err:  ErrNotCall,
		},
		{
			name:    "an opaque_auth body holds at most 400 bytes (credential)",
			in:      with(func(c *rawCall) { c.cred = OpaqueAuth{AuthSys, make([]byte, 401)} }),
			err:     xdr.ErrTooLong,
			context: "cred",
		},
		{
			name:    "an opaque_auth body holds at most 400 bytes (verifier)",
			in:      with(func(c *rawCall) { c.verf = OpaqueAuth{AuthNone, make([]byte, 401)} }),
			err:     xdr.ErrTooLong,
			context: "verf",
		},
		{
			name:    "a credential claiming 4 GB",
			in:      append(words(1, 0, 2, 100000, 2, 0, AuthSys, 0xffffffff), make([]byte, 64)...),
			err:     xdr.ErrTooLong,
			context: "cred",
		},
		{
			name:    "a credential body cut short",
			in:      words(1, 0, 2, 100000, 2, 0, AuthSys, 20, 0, 0),
			err:     xdr.ErrShort,
			context: "cred",
		},
		{
			name:    "a verifier flavour missing",
			in:      words(1, 0, 2, 100000, 2, 0, AuthNone, 0),
			err:     xdr.ErrShort,
			context: "verf",
		},
		{
			name:    "a message of only an xid",
			in:      words(1),
			err:     xdr.ErrShort,
			context: "msg_type",
		},
		{
			name:    "an empty message",
			in:      nil,
			err:     xdr.ErrShort,
			context: "xid",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d xdr.Decoder
			d.Reset(tt.in)
			h, err := ParseCall(&d)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if tt.context != "" && !strings.Contains(err.Error(), tt.context) {
					t.Errorf("err %q does not say it was decoding %s", err, tt.context)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, h)
			}
			if !bytes.HasSuffix(tt.in, d.Rest()) || d.Len() != len(tt.in)-headerLen(h) {
				t.Errorf("decoder left at offset %d, want %d (the arguments)", d.Offset(), headerLen(h))
			}
		})
	}
}

// headerLen is the encoded size of a call header.
func headerLen(h CallHeader) int {
	// xid, msg_type, rpcvers, prog, vers, proc, two flavours, two lengths
	return 4*10 + len(h.Cred.Body) + xdr.Pad(len(h.Cred.Body)) + len(h.Verf.Body) + xdr.Pad(len(h.Verf.Body))
}

// Every proper prefix of a call header is refused, and none panics.
func TestParseCallTruncated(t *testing.T) {
	full := rawCall{xid: 9, rpcvers: 2, prog: 100000, vers: 4, proc: 3,
		cred: OpaqueAuth{AuthSys, hexBytes(t, authSysBody)}, verf: OpaqueAuth{AuthNone, []byte{1, 2, 3}}}.bytes()
	for n := range len(full) {
		var d xdr.Decoder
		d.Reset(full[:n])
		if _, err := ParseCall(&d); !errors.Is(err, xdr.ErrShort) {
			t.Errorf("%d of %d bytes: err = %v, want ErrShort", n, len(full), err)
		}
	}
	var d xdr.Decoder
	d.Reset(full)
	if _, err := ParseCall(&d); err != nil || d.Len() != 0 {
		t.Errorf("whole header: err %v, %d bytes left", err, d.Len())
	}
}

// The credential and verifier bodies point into the message.
func TestParseCallAliases(t *testing.T) {
	in := rawCall{rpcvers: 2, cred: OpaqueAuth{AuthSys, hexBytes(t, authSysBody)}}.bytes()
	var d xdr.Decoder
	d.Reset(in)
	h, err := ParseCall(&d)
	if err != nil {
		t.Fatal(err)
	}
	in[32] = 0xee
	if h.Cred.Body[0] != 0xee {
		t.Error("Cred.Body is a copy; it should alias the message")
	}
}

func TestParseAuthSys(t *testing.T) {
	name255 := strings.Repeat("n", 255)
	gids16 := make([]uint32, 16)
	for i := range gids16 {
		gids16[i] = uint32(1000 + i)
	}
	body := func(stamp uint32, name string, uid, gid uint32, gids ...uint32) []byte {
		b := xdr.AppendUint32(nil, stamp)
		b = xdr.AppendString(b, name)
		b = xdr.AppendUint32(b, uid)
		b = xdr.AppendUint32(b, gid)
		b = xdr.AppendUint32(b, uint32(len(gids)))
		return append(b, words(gids...)...)
	}
	tests := []struct {
		name   string
		in     []byte
		ok     bool
		padded bool
		want   AuthSysParams
	}{
		{
			name: "a typical credential",
			in:   hexBytes(t, authSysBody),
			ok:   true,
			want: AuthSysParams{Stamp: 0x01020304, MachineName: []byte("host"), UID: 1000, GID: 100,
				NGIDs: 2, GIDs: [MaxGroups]uint32{4, 24}},
		},
		{
			name: "the smallest credential: empty name, no groups",
			in:   body(0, "", 0, 0),
			ok:   true,
			want: AuthSysParams{MachineName: []byte{}},
		},
		{
			name: "a machine name of 255 bytes is allowed",
			in:   body(1, name255, 2, 3),
			ok:   true,
			want: AuthSysParams{Stamp: 1, MachineName: []byte(name255), UID: 2, GID: 3},
		},
		{
			name: "16 groups are allowed",
			in:   body(1, "h", 0, 0, gids16...),
			ok:   true,
			want: AuthSysParams{Stamp: 1, MachineName: []byte("h"), NGIDs: 16, GIDs: [MaxGroups]uint32(gids16)},
		},
		{name: "a machine name holds at most 255 bytes", in: body(1, name255+"n", 2, 3)},
		{name: "at most 16 groups", in: body(1, "h", 0, 0, append(gids16, 2000)...)},
		{name: "a group count of 4 G", in: words(1, 1, 0x68000000, 0, 0, 0xffffffff)},
		{name: "a machine name claiming 4 GB", in: words(1, 0xffffffff, 0, 0, 0)},
		{
			name: "non-zero padding after the machine name is read past, as libtirpc does",
			in:   hexBytes(t, "00000001 00000001 68000100 00000000 00000000 00000000"),
			ok:   true, padded: true,
			want: AuthSysParams{Stamp: 1, MachineName: []byte("h")},
		},
		{name: "fewer groups than the count says", in: body(1, "h", 0, 0, 4, 5)[:7*4]},
		{
			name: "bytes after the groups are ignored, as libtirpc ignores them",
			in:   append(body(1, "h", 0, 0, 4), 0, 0, 7, 7, 9),
			ok:   true,
			want: AuthSysParams{Stamp: 1, MachineName: []byte("h"), NGIDs: 1, GIDs: [MaxGroups]uint32{4}},
		},
		{name: "a group count missing", in: body(1, "h", 0, 0)[:16]},
		{name: "an empty body", in: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, padded, err := parseAuthSys(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrAuthSys) {
					t.Errorf("err = %v, want ErrAuthSys", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if p.Stamp != tt.want.Stamp || !bytes.Equal(p.MachineName, tt.want.MachineName) ||
				p.UID != tt.want.UID || p.GID != tt.want.GID || p.NGIDs != tt.want.NGIDs || p.GIDs != tt.want.GIDs {
				t.Errorf("got %+v, want %+v", p, tt.want)
			}
			if padded != tt.padded {
				t.Errorf("non-zero padding noted: %v, want %v", padded, tt.padded)
			}
			if enc := AppendAuthSys(nil, &p); !sameButPadding(enc, tt.in[:min(len(enc), len(tt.in))]) {
				t.Errorf("re-encoded as %x, want %x", enc, tt.in)
			}
		})
	}
}

func TestParseAuthSysTruncated(t *testing.T) {
	full := hexBytes(t, authSysBody)
	for n := range len(full) {
		if _, err := ParseAuthSys(full[:n]); !errors.Is(err, ErrAuthSys) {
			t.Errorf("%d of %d bytes: err = %v, want ErrAuthSys", n, len(full), err)
		}
	}
}

func TestParsingDoesNotAllocate(t *testing.T) {
	call := rawCall{xid: 1, rpcvers: 2, prog: 100000, vers: 2, proc: 3,
		cred: OpaqueAuth{AuthSys, hexBytes(t, authSysBody)}, args: words(1, 2, 3, 4)}.bytes()
	allocs := testing.AllocsPerRun(100, func() {
		var d xdr.Decoder
		d.Reset(call)
		h, err := ParseCall(&d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseAuthSys(h.Cred.Body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

// The reply layouts of RFC 5531, section 9, computed by hand word by word.
func TestReplyLayouts(t *testing.T) {
	const xid = 0x0a0b0c0d
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			// xid, REPLY, MSG_ACCEPTED, verf {AUTH_NONE, 0 bytes}, SUCCESS
			name: "SUCCESS",
			got:  AppendSuccess(nil, xid),
			want: "0a0b0c0d 00000001 00000000 00000000 00000000 00000000",
		},
		{
			name: "SUCCESS followed by a result",
			got:  xdr.AppendUint32(AppendSuccess(nil, xid), 2049),
			want: "0a0b0c0d 00000001 00000000 00000000 00000000 00000000 00000801",
		},
		{
			name: "PROG_UNAVAIL",
			got:  AppendAccepted(nil, xid, ProgUnavail),
			want: "0a0b0c0d 00000001 00000000 00000000 00000000 00000001",
		},
		{
			// PROG_MISMATCH carries mismatch_info {low, high}.
			name: "PROG_MISMATCH 2..4",
			got:  AppendProgMismatch(nil, xid, 2, 4),
			want: "0a0b0c0d 00000001 00000000 00000000 00000000 00000002 00000002 00000004",
		},
		{
			name: "PROC_UNAVAIL",
			got:  AppendAccepted(nil, xid, ProcUnavail),
			want: "0a0b0c0d 00000001 00000000 00000000 00000000 00000003",
		},
		{
			name: "GARBAGE_ARGS",
			got:  AppendAccepted(nil, xid, GarbageArgs),
			want: "0a0b0c0d 00000001 00000000 00000000 00000000 00000004",
		},
		{
			name: "SYSTEM_ERR",
			got:  AppendAccepted(nil, xid, SystemErr),
			want: "0a0b0c0d 00000001 00000000 00000000 00000000 00000005",
		},
		{
			// xid, REPLY, MSG_DENIED, RPC_MISMATCH, low, high
			name: "RPC_MISMATCH 2..2",
			got:  AppendRPCMismatch(nil, xid, 2, 2),
			want: "0a0b0c0d 00000001 00000001 00000000 00000002 00000002",
		},
		{
			// xid, REPLY, MSG_DENIED, AUTH_ERROR, auth_stat
			name: "AUTH_ERROR AUTH_BADCRED",
			got:  AppendAuthError(nil, xid, AuthBadCred),
			want: "0a0b0c0d 00000001 00000001 00000001 00000001",
		},
		{
			name: "AUTH_ERROR AUTH_REJECTEDCRED",
			got:  AppendAuthError(nil, xid, AuthRejectedCred),
			want: "0a0b0c0d 00000001 00000001 00000001 00000002",
		},
		{
			name: "AUTH_ERROR AUTH_TOOWEAK",
			got:  AppendAuthError(nil, xid, AuthTooWeak),
			want: "0a0b0c0d 00000001 00000001 00000001 00000005",
		},
		{
			name: "a reply appends to what the buffer holds",
			got:  AppendSuccess([]byte{0x80, 0, 0, 0x18}, 1),
			want: "80000018 00000001 00000001 00000000 00000000 00000000 00000000",
		},
		{
			// xid, CALL, rpcvers 2, prog, vers, proc, cred, verf AUTH_NONE
			name: "a call with an AUTH_SYS credential",
			got: AppendCall(nil, xid, 100000, 4, 3, OpaqueAuth{AuthSys, AppendAuthSys(nil, &AuthSysParams{
				Stamp: 0x01020304, MachineName: []byte("host"), UID: 1000, GID: 100, NGIDs: 2, GIDs: [16]uint32{4, 24}})}),
			want: "0a0b0c0d 00000000 00000002 000186a0 00000004 00000003 00000001 00000020 " + authSysBody + " 00000000 00000000",
		},
		{
			name: "a call with AUTH_NONE",
			got:  AppendCall(nil, 1, 100000, 2, 0, OpaqueAuth{}),
			want: "00000001 00000000 00000002 000186a0 00000002 00000000 00000000 00000000 00000000 00000000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := hexBytes(t, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("got  %x\nwant %x", tt.got, want)
			}
		})
	}
}

func TestRepliesDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendSuccess(buf[:0], 1)
		b = AppendProgMismatch(b, 1, 2, 4)
		b = AppendAccepted(b, 1, ProcUnavail)
		b = AppendRPCMismatch(b, 1, 2, 2)
		b = AppendAuthError(b, 1, AuthTooWeak)
		buf = b
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}
