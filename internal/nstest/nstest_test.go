package nstest

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
)

// In its own namespace the test sees only a loopback interface, and the
// host's interfaces are out of sight.
func TestInsideSeesOnlyItsOwnLoopback(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if !Inside(t) {
		if len(ifs) < 2 {
			t.Log("the host has only loopback too: the namespace could not be told apart by its interfaces")
		}
		return
	}
	if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 {
		t.Errorf("interfaces in the namespace: %v", ifs)
	}
	if os.Getenv(insideEnv) != t.Name() {
		t.Errorf("%s=%q", insideEnv, os.Getenv(insideEnv))
	}
}

// The pattern picks the test or subtest by its whole name, however its
// name reads as a regular expression.
func TestRunPatternMatchesOnlyThatTest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		match     []string
		different []string
	}{
		{"TestA", []string{"TestA"}, []string{"TestAB", "XTestA"}},
		{"TestA/sub.case", []string{"TestA/sub.case"}, []string{"TestA/subXcase", "TestA/sub.case2"}},
	} {
		p := runPattern(tc.name)
		for _, n := range tc.match {
			if !matches(t, p, n) {
				t.Errorf("%q does not select %q", p, n)
			}
		}
		for _, n := range tc.different {
			if matches(t, p, n) {
				t.Errorf("%q selects %q too", p, n)
			}
		}
	}
}

// matches applies a -test.run pattern to a test's name as the testing
// package does: level by level, split on slashes.
func matches(t *testing.T, pattern, name string) bool {
	ps, ns := strings.Split(pattern, "/"), strings.Split(name, "/")
	if len(ps) != len(ns) {
		return false
	}
	for i := range ps {
		ok, err := regexp.MatchString(ps[i], ns[i])
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return false
		}
	}
	return true
}
