package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portmapd/portmapd/internal/netns"
)

// workDir holds the binaries built once per test binary; Main removes it.
var work struct {
	once sync.Once
	dir  string
	err  error
}

func workDirectory() (string, error) {
	work.once.Do(func() {
		work.dir, work.err = os.MkdirTemp("", "portmapd-e2e-")
	})
	return work.dir, work.err
}

// cleanupWork removes the build directory; called by Main after the tests.
func cleanupWork() {
	if work.dir != "" {
		os.RemoveAll(work.dir)
	}
}

// built remembers the outcome of one build so that every test shares it.
type built struct {
	once sync.Once
	path string
	skip string // non-empty: a prerequisite is missing, tests skip
	err  error  // the build itself failed, tests fail
}

var clientBuild, daemonBuild built

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the package directory (where go test runs).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.mod above the working directory")
}

// ClientPath builds testdata/c/rpcclient.c with gcc and libtirpc once per
// test binary and returns the executable. It skips the test when gcc or the
// libtirpc headers are missing, and fails it when the source does not build.
func ClientPath(t testing.TB) string {
	t.Helper()
	clientBuild.once.Do(func() {
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			clientBuild.skip = "gcc not found (apt-get install gcc)"
			return
		}
		if _, err := os.Stat("/usr/include/tirpc/rpc/rpc.h"); err != nil {
			clientBuild.skip = "libtirpc headers not found (apt-get install libtirpc-dev)"
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			clientBuild.err = err
			return
		}
		dir, err := workDirectory()
		if err != nil {
			clientBuild.err = err
			return
		}
		out := filepath.Join(dir, "rpcclient")
		src := filepath.Join(root, "testdata", "c", "rpcclient.c")
		clientBuild.err = runBuild(gcc, root, "-Wall", "-O1", "-I/usr/include/tirpc",
			"-o", out, src, "-ltirpc")
		clientBuild.path = out
	})
	return clientBuild.result(t, "rpcclient")
}

// PortmapdPath builds ./cmd/portmapd once per test binary and returns the
// executable. It skips while cmd/portmapd has no Go files yet and fails the
// test when the daemon does not compile.
func PortmapdPath(t testing.TB) string {
	t.Helper()
	daemonBuild.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			daemonBuild.err = err
			return
		}
		if m, _ := filepath.Glob(filepath.Join(root, "cmd", "portmapd", "*.go")); len(m) == 0 {
			daemonBuild.skip = "cmd/portmapd has no Go files yet"
			return
		}
		goTool, err := goCommand()
		if err != nil {
			daemonBuild.skip = err.Error()
			return
		}
		dir, err := workDirectory()
		if err != nil {
			daemonBuild.err = err
			return
		}
		out := filepath.Join(dir, "portmapd")
		daemonBuild.err = runBuild(goTool, root, "build", "-o", out, "./cmd/portmapd")
		daemonBuild.path = out
	})
	return daemonBuild.result(t, "portmapd")
}

func (b *built) result(t testing.TB, what string) string {
	t.Helper()
	switch {
	case b.skip != "":
		t.Skipf("e2e: cannot build %s: %s", what, b.skip)
	case b.err != nil:
		t.Fatalf("e2e: building %s: %v", what, b.err)
	}
	return b.path
}

// goCommand finds the go tool that runs these tests; go test does not
// always put it on PATH.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	var tried []string
	for _, root := range []string{os.Getenv("GOROOT"), "/usr/local/go"} {
		if root == "" {
			continue
		}
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil { //nolint:gosec // G703: GOROOT is the tester's own
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("go tool not found on PATH nor at %v", tried)
}

func runBuild(name, dir string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", filepath.Base(name), args, err, out.String())
	}
	return nil
}

// Main runs the tests of a package using this harness and must be called
// from its TestMain. In a namespace's PID 1 (a re-executed test binary) it
// never returns: it sets the namespace up and reaps orphans until the test
// that owns the namespace closes its stdin.
func Main(m *testing.M) {
	netns.Main()
	// Daemons started outside a namespace inherit this.
	k, v, _ := strings.Cut(noOptionsFiles, "=")
	os.Setenv(k, v)
	code := m.Run()
	cleanupWork()
	os.Exit(code)
}
