package daemon

import (
	"runtime/debug"
	"sync"
	"time"
)

// gcHoldAfterStart is how long after a warm start the collector stays off:
// long enough for the callers that waited for the portmapper at boot, short
// enough that nothing much can pile up meanwhile.
const gcHoldAfterStart = 500 * time.Millisecond

// gcHold switches the collector off while any warm start holds it. Holds
// nest, so that daemons starting in one process (tests do) cannot leave it
// off for good by restoring each other's setting.
var gcHold struct {
	sync.Mutex
	holds   int
	percent int // the setting to restore when the last hold ends
}

// holdGC switches the collector off until the returned function is called;
// calling it again does nothing.
func holdGC() (release func()) {
	gcHold.Lock()
	if gcHold.holds == 0 {
		gcHold.percent = debug.SetGCPercent(-1)
	}
	gcHold.holds++
	gcHold.Unlock()
	return sync.OnceFunc(func() {
		gcHold.Lock()
		defer gcHold.Unlock()
		if gcHold.holds--; gcHold.holds == 0 {
			debug.SetGCPercent(gcHold.percent)
		}
	})
}
