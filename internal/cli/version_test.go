package cli

import (
	"bytes"
	"testing"
)

// TestVersionFlagPrintsTheBuildVersion: make build sets Version through
// -ldflags -X; --version and -v print it after the program's name.
func TestVersionFlagPrintsTheBuildVersion(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "1.2.3+git45.abcdef"
	for _, arg := range []string{"--version", "-v"} {
		root := NewRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{arg})
		if err := root.Execute(); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if got, want := out.String(), "portmapd 1.2.3+git45.abcdef\n"; got != want {
			t.Errorf("%s printed %q, want %q", arg, got, want)
		}
	}
}

func TestRpcbindVersionHasRpcbindsShape(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "1.2.3"
	want := "rpcbind 1.2.3 (portmapd)\n" +
		"debug: yes, libset debug: no, libwrap: yes, nss modules: files, remote calls: yes, statedir: /run/portmapd, systemd: yes, user: root, warm start: yes\n"
	if got := rpcbindVersion(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
