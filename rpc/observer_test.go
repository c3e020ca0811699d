package rpc

import "sync/atomic"

// countingObserver counts stream connections opened and closed and the
// calls that carried non-zero padding (it is a PaddingObserver too).
type countingObserver struct{ opened, closed, padded atomic.Int64 }

func (o *countingObserver) Call(vers, proc uint32, netid string, outcome Outcome) {}
func (o *countingObserver) Reject(reason Reason)                                  {}
func (o *countingObserver) ConnOpened(netid string)                               { o.opened.Add(1) }
func (o *countingObserver) ConnClosed(netid string)                               { o.closed.Add(1) }
func (o *countingObserver) NonZeroPadding()                                       { o.padded.Add(1) }
