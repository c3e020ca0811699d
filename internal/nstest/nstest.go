package nstest

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// insideEnv names the test that the binary was started to run inside a
// namespace.
const insideEnv = "PORTMAPD_NSTEST_INSIDE"

// timeout bounds the re-run.
const timeout = 90 * time.Second

// Inside reports whether the calling test runs in its own network
// namespace. If it does not, Inside starts the test binary again under
// "unshare -n" to run only this test there, logs what that run printed,
// fails t if it failed, and returns false: the caller then returns. It
// skips t where no namespace can be made (not root, unshare or one of
// tools missing). Inside the namespace only loopback exists, and it is
// down.
func Inside(t *testing.T, tools ...string) bool {
	t.Helper()
	if os.Getenv(insideEnv) == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	for _, tool := range append([]string{"unshare"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", os.Args[0], "-test.run="+runPattern(t.Name()), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), insideEnv+"="+t.Name(), "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	t.Logf("in the namespace:\n%s", out)
	if err != nil {
		if strings.Contains(string(out), "unshare failed") {
			t.Skip("cannot create a network namespace here")
		}
		t.Fatalf("the test in the namespace failed: %v", err)
	}
	return false
}

// runPattern is the -test.run pattern that selects exactly the test (or
// subtest) called name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
