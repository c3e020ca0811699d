package e2e

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/portmapd/portmapd/internal/netns"
)

// DefaultTimeout bounds every command run in a namespace.
const DefaultTimeout = netns.DefaultTimeout

// cmdEnv is the whole environment of commands in a namespace: netns's
// (C locale, so that messages are the same on every machine) without the
// machine's options files.
var cmdEnv = append(slices.Clone(netns.Env), noOptionsFiles)

// noOptionsFiles keeps the machine's options files (/etc/default/rpcbind,
// which Debian's rpcbind installs with -w, and /etc/default/portmapd)
// away from the daemons under test: an empty file named on purpose
// replaces the default list. A test of the files passes --env-file,
// which wins.
const noOptionsFiles = "PORTMAPD_ENV_FILE=/dev/null"

// Namespace is a private network, mount and PID namespace (netns) whose
// lifetime ends with the test: its own loopback interface, a fresh tmpfs
// on /run and its own process tree.
type Namespace struct {
	*netns.Namespace
	t testing.TB
}

// Output is what one command printed and how it ended.
type Output = netns.Output

// Proc is a command running in the background inside a namespace.
type Proc = netns.Proc

// RequireNamespaces skips the test unless it can create namespaces: it needs
// root, nsenter (util-linux) and ip (iproute2).
func RequireNamespaces(t testing.TB) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skip("e2e: " + err.Error())
	}
}

// NewNamespace creates a namespace whose lifetime ends with the test.
func NewNamespace(t testing.TB) *Namespace {
	t.Helper()
	RequireNamespaces(t)
	ns, err := netns.New(netns.Options{Env: cmdEnv})
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		t.Skipf("e2e: cannot create namespaces here: %v", err)
	}
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	t.Cleanup(ns.Close)
	return &Namespace{Namespace: ns, t: t}
}

// Start runs argv in the background inside the namespace. It is stopped at
// the latest when the namespace goes away.
func (ns *Namespace) Start(name string, argv ...string) *Proc {
	ns.t.Helper()
	p, err := ns.Namespace.Start(name, argv...)
	if err != nil {
		ns.t.Fatalf("e2e: %v", err)
	}
	return p
}
