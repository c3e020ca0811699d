package daemon

import (
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// Holds nest: the collector comes back, with the setting it had, only
// when the last hold ends, whatever order they end in.
func TestHoldGCNests(t *testing.T) {
	gcHold.Lock()
	held := gcHold.holds
	gcHold.Unlock()
	if held != 0 {
		t.Skip("a daemon of another test holds the collector off")
	}
	before := debug.SetGCPercent(73)
	defer debug.SetGCPercent(before)
	a, b := holdGC(), holdGC()
	if p := gcPercent(); p != -1 {
		t.Fatalf("GC percent %d while held, want -1", p)
	}
	a()
	a() // a second call does nothing
	if p := gcPercent(); p != -1 {
		t.Fatalf("GC percent %d with one hold left, want -1", p)
	}
	b()
	if p := gcPercent(); p != 73 {
		t.Errorf("GC percent %d after the last hold, want 73", p)
	}
}
