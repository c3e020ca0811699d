package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// withHostsDeny runs the daemon with /etc/hosts.deny replaced, inside its
// own mount namespace, by a file holding deny: the daemon is started
// through a shell that bind-mounts it and then execs the daemon, so the
// pid the harness watches is the daemon's.
func withHostsDeny(t *testing.T, spec DaemonSpec, deny string) DaemonSpec {
	file := filepath.Join(t.TempDir(), "hosts.deny")
	if err := os.WriteFile(file, []byte(deny), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := spec.Argv
	spec.Argv = func(t testing.TB) []string {
		return append([]string{"/bin/sh", "-c", `mount --bind "$0" /etc/hosts.deny && exec "$@"`, file}, argv(t)...)
	}
	return spec
}

// TestHostsDenyDifferential: administrators who restricted rpcbind with
// tcp_wrappers keep that restriction. A host named in hosts.deny under
// "rpcbind" gets AUTH_TOOWEAK for everything but NULL, from both daemons.
func TestHostsDenyDifferential(t *testing.T) {
	t.Parallel()
	deny := "# test\nrpcbind: 127.0.0.2\n"
	steps := []Step{
		ClientOpts("NULL from a denied host is answered", []string{"-S", "127.0.0.2"}, "v2 udp:unpriv null", "v3 tcp:unpriv null"),
		ClientOpts("GETPORT from a denied host", []string{"-S", "127.0.0.2"}, "v2 udp:unpriv getport 100000 2 17"),
		ClientOpts("DUMP and GETADDR from a denied host", []string{"-S", "127.0.0.2"}, "v2 tcp:unpriv dump", "v3 udp:unpriv getaddr 100000 2 udp -"),
		Client("an allowed host is answered", "v2 udp getport 100000 2 17", "v3 udp getaddr 100000 2 udp -"),
	}
	RunDiff(t, withHostsDeny(t, Rpcbind(), deny), withHostsDeny(t, Portmapd(), deny), steps)
}
