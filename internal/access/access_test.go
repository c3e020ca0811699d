package access

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandLineLists(t *testing.T) {
	var l List
	if !l.Allowed(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("an empty list refuses")
	}
	for _, s := range []string{"10.0.0.0/8", "2001:db8::/32"} {
		if err := l.AddDeny(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AddAllow("10.1.2.3"); err != nil {
		t.Fatal(err)
	}
	if err := l.AddDeny("10.0.0.0/33"); err == nil {
		t.Error("a prefix of 33 bits accepted")
	}
	for addr, want := range map[string]bool{
		"10.9.9.9":         false,
		"::ffff:10.9.9.9":  false, // mapped addresses are judged as IPv4
		"10.1.2.3":         true,  // allow wins over deny
		"192.0.2.1":        true,
		"2001:db8::1":      false,
		"2001:db9::1":      true,
		"127.0.0.1":        true,
		"::ffff:127.0.0.1": true,
	} {
		if got := l.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestHostsFiles(t *testing.T) {
	dir := t.TempDir()
	allow := filepath.Join(dir, "hosts.allow")
	deny := filepath.Join(dir, "hosts.deny")
	os.WriteFile(allow, []byte(strings.Join([]string{
		"# comment",
		"sshd: ALL",
		"rpcbind: 192.168.1. 10.0.0.0/255.255.0.0 \\",
		"   [2001:db8::]/48 LOCAL EXCEPT 10.0.9.9",
		"portmap, mountd: 172.16.0.5 : spawn (echo hi)",
		"rpcbind: .example.com @netgroup",
	}, "\n")), 0o644)
	os.WriteFile(deny, []byte("ALL: ALL\n"), 0o644)
	var l List
	if err := l.LoadHostsFiles(allow, deny); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"192.168.1.77":  true,
		"192.168.2.77":  false,
		"10.0.3.4":      true,
		"10.0.9.9":      false, // EXCEPT
		"10.1.0.1":      false,
		"2001:db8::5":   true,
		"2001:db8:1::5": false,
		"127.0.0.1":     true, // LOCAL
		"172.16.0.5":    true, // portmap's entry applies too
		"8.8.8.8":       false,
	} {
		if got := l.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	if strings.Join(l.Skipped, " ") != ".example.com @netgroup" {
		t.Errorf("Skipped = %q", l.Skipped)
	}
}

func TestMissingHostsFilesHaveNoRules(t *testing.T) {
	var l List
	if err := l.LoadHostsFiles("/nonexistent/allow", "/nonexistent/deny"); err != nil {
		t.Fatal(err)
	}
	if !l.Empty() {
		t.Error("rules from missing files")
	}
}
