package daemon

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// statusKB reads a "Name: N kB" line of /proc/self/status.
func statusKB(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", name)
	return 0
}

// Trimming drops the binary's clean pages from the mapping; the test
// binary goes on running the code it dropped.
func TestTrimFootprintDropsBinaryPages(t *testing.T) {
	before := statusKB(t, "RssFile")
	trimFootprint()
	after := statusKB(t, "RssFile")
	t.Logf("RssFile %d kB before, %d kB after", before, after)
	if after >= before {
		t.Errorf("RssFile %d kB after trimming, not below %d kB", after, before)
	}
}
