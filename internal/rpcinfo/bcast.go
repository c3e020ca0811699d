package rpcinfo

import (
	"context"
	"net/netip"
	"strings"

	"github.com/portmapd/portmapd/pmap/client/tirpc"
)

// rpcBroadcast is -b's rpc_broadcast with rpcinfo's reply_proc: each
// answer as its universal address and its host's name, in the order the
// answers came.
func (r *runner) rpcBroadcast(prog, vers uint32) ([]bcastReply, tirpc.Status) {
	var replies []bcastReply
	st := r.lib().RPCBroadcast(prog, vers, func(a tirpc.BroadcastAnswer) {
		replies = append(replies, r.bcastReply(a))
	})
	return replies, st
}

// bcastReply is reply_proc's reading of one answer.
func (r *runner) bcastReply(a tirpc.BroadcastAnswer) bcastReply {
	return bcastReply{Addr: a.Addr.Uaddr(), Host: r.nameinfo(a.Addr.IP.Addr()), Netid: a.Netid}
}

// nameinfo is getnameinfo without flags: the host's name if the address
// resolves, else the numeric address with its interface.
func (r *runner) nameinfo(a netip.Addr) string {
	ctx, cancel := context.WithTimeout(context.Background(), tirpc.ResolveTimeout)
	defer cancel()
	if names, err := r.lookupAddr(ctx, a.WithZone("").String()); err == nil && len(names) > 0 {
		return strings.TrimSuffix(names[0], ".")
	}
	return a.String()
}
