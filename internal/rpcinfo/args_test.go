package rpcinfo

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestGetoptLikeGlibc(t *testing.T) {
	for _, c := range []struct {
		name    string
		argv    []string
		mode    int
		netid   string
		args    []string
		stderr  string
		exitNow int
		port    int
	}{
		{"no arguments is the listing", nil, modeRpcbDump, "", nil, "", -1, 0},
		{"one argument is a host", []string{"h"}, modeRpcbDump, "", []string{"h"}, "", -1, 0},
		{"two arguments are a ping", []string{"-T", "udp", "h", "1"}, modeProgPing, "udp", []string{"h", "1"}, "", -1, 0},
		{"options are permuted", []string{"h", "-p"}, modePmapDump, "", []string{"h"}, "", -1, 0},
		{"a cluster with an argument", []string{"-pTudp"}, modePmapDump, "udp", nil, "", -1, 0},
		{"an argument in the next word", []string{"-pT", "udp"}, modePmapDump, "udp", nil, "", -1, 0},
		{"-- ends the options", []string{"-u", "--", "h", "1", "-1"}, modeUDPPing, "", []string{"h", "1", "-1"}, "", -1, 0},
		{"a lone dash is an argument", []string{"-s", "-"}, modeRpcbDumpShort, "", []string{"-"}, "", -1, 0},
		{"two modes are a usage error", []string{"-p", "-s"}, modeNone, "", nil, "", -1, 0},
		{"an unknown option", []string{"-x"}, modeNone, "", nil, "rpcinfo: invalid option -- 'x'\n", -1, 0},
		{"a missing argument", []string{"-T"}, modeNone, "", nil, "rpcinfo: option requires an argument -- 'T'\n", -1, 0},
		{"-a without -T", []string{"-a", "x", "1"}, modeNone, "", []string{"1"}, "", -1, 0},
		{"-n with a port", []string{"-n", "4111", "-p"}, modePmapDump, "", nil, "", -1, 4111},
		{"-n keeps 16 bits", []string{"-n", "65647", "-p"}, modePmapDump, "", nil, "", -1, 111},
		{"-n with junk ends at once", []string{"-x", "-n", "5x", "-p"}, modeNone, "",
			nil, "rpcinfo: invalid option -- 'x'\nrpcinfo: 5x is illegal port number\n", 1, 0},
		{"a long option rpcinfo lacks", []string{"--frobnicate"}, modeNone, "", nil,
			"rpcinfo: unrecognized option '--frobnicate'\n" + usageText, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &runner{options: &options{}}
			cl := parseArgs("rpcinfo", c.argv, r)
			if cl.exitNow != c.exitNow {
				t.Fatalf("exitNow %d, want %d", cl.exitNow, c.exitNow)
			}
			if got := r.stderr.String(); got != c.stderr {
				t.Errorf("stderr %q, want %q", got, c.stderr)
			}
			if cl.exitNow >= 0 {
				return
			}
			if m := cl.modeFor(cl.args); m != c.mode {
				t.Errorf("mode %d, want %d", m, c.mode)
			}
			if cl.netid != c.netid || !slices.Equal(cl.args, c.args) || r.Port != c.port {
				t.Errorf("netid %q args %q port %d", cl.netid, cl.args, r.Port)
			}
		})
	}
}

func TestLongOptions(t *testing.T) {
	r := &runner{options: &options{}}
	cl := parseArgs("rpcinfo", []string{"--json", "-p", "--host", "a,b", "--host=c", "--timeout=2s", "--socket", "/s"}, r)
	if !cl.json || !slices.Equal(cl.hosts, []string{"a", "b", "c"}) || r.Timeout.String() != "2s" || r.Socket != "/s" || cl.exitNow != -1 {
		t.Errorf("%+v, runner timeout %v socket %q", cl, r.Timeout, r.Socket)
	}
	r = &runner{options: &options{}}
	cl = parseArgs("rpcinfo", []string{"--timeout"}, r)
	if cl.exitNow != 1 || r.stderr.String() != "rpcinfo: option '--timeout' requires an argument\n"+usageText {
		t.Errorf("%d %q", cl.exitNow, r.stderr.String())
	}
}

// TestNumbers checks rpcinfo's conversions, C's casts included.
func TestNumbers(t *testing.T) {
	r := &runner{options: &options{rpc: parseRPC([]byte(defaultRPC))}}
	failed := func(v uint64, err error) (uint64, string) {
		if err == nil {
			return v, ""
		}
		renderDiag(&r.stderr, err)
		msg := r.stderr.String()
		r.stderr.Reset()
		return v, msg
	}
	prog := func(s string) (uint64, string) { return failed(r.getprognum(s)) }
	vers := func(s string) (uint64, string) { return failed(getvers(s)) }
	for _, c := range []struct {
		in   string
		want uint64
		msg  string
	}{
		{"100003", 100003, ""},
		{"nfs", 100003, ""},
		{"rpcbind", 100000, ""}, // an alias
		{"99999999999", 99999999999, ""},
		{"99999999999999999999", 1<<63 - 1, ""}, // strtol saturates
		{"12a", 0, "rpcinfo: 12a is unknown service\n"},
		{"12-", 0, "rpcinfo: 12- is illegal program number\n"},
		{"-5", 0, "rpcinfo: -5 is unknown service\n"},
		{"", 0, "rpcinfo:  is illegal program number\n"},
		{"a", 0, "rpcinfo: a is unknown service\n"},
	} {
		v, msg := prog(c.in)
		if v != c.want || msg != c.msg {
			t.Errorf("getprognum(%q) = %d %q, want %d %q", c.in, v, msg, c.want, c.msg)
		}
	}
	for _, c := range []struct {
		in   string
		want uint64
		msg  string
	}{
		{"3", 3, ""},
		{" +3", 3, ""},
		{"-1", 1<<64 - 1, ""},
		{"4294967295", 1<<64 - 1, ""}, // (int) cast, then sign extension
		{"2147483648", 1<<64 - 1<<31, ""},
		{"3x", 0, "rpcinfo: 3x is illegal version number\n"},
	} {
		v, msg := vers(c.in)
		if v != c.want || msg != c.msg {
			t.Errorf("getvers(%q) = %d %q, want %d %q", c.in, v, msg, c.want, c.msg)
		}
	}
}

func TestRPCDatabase(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "rpc")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := loadRPC(empty).byNumber(100000); ok {
		t.Error("an empty /etc/rpc still names programs")
	}
	if name, ok := loadRPC(filepath.Join(dir, "missing")).byNumber(100021); !ok || name != "nlockmgr" {
		t.Errorf("a missing /etc/rpc falls back to the built-in table: %q %v", name, ok)
	}
	db := parseRPC([]byte("a 1 b\na 2\nc 1\n"))
	if n, _ := db.byNumber(1); n != "a" {
		t.Errorf("first match by number: %q", n)
	}
	if n, _ := db.byName("b"); n != 1 {
		t.Errorf("alias: %d", n)
	}
}
