// Package rmtcall forwards the portmapper's remote calls (PMAP CALLIT,
// RPCBIND CALLIT, BCAST and INDIRECT) to services on the loopback address
// and relays their replies to the callers, as rpcbind -r does.
//
// A remote call lets any host make a local service answer through the
// portmapper, and a broadcast makes every host answer at once, so the
// forwarder is built not to be an amplifier or a memory sink: a fixed-size
// table of calls in flight, each freed by a timer when its service stays
// silent; retransmissions of a call in flight recognised and not sent
// again; a token bucket per source; and no reply to a host other than
// this one that is much larger than the request it answers.
package rmtcall
