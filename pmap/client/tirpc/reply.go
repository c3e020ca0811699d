package tirpc

import (
	"errors"

	"github.com/portmapd/portmapd/rpc"
	"github.com/portmapd/portmapd/xdr"
)

// MaxRows bounds the rows of any list in a reply. A datagram holds at
// most a few hundred rows; a stream reply is bounded by maxRecord.
const MaxRows = 1 << 16

// Reply status numbers of RFC 5531, which clnt_sperror prints for a
// reply it has no words for.
const (
	msgAccepted = 0
	msgDenied   = 1
)

// ParseReply is xdr_replymsg followed by _seterr_reply. ok is false when
// the message is not a reply libtirpc can decode (a rejection it has no
// case for among them): a stream client then skips the record and a
// datagram client reports CANTDECODERES. On success d is left at the
// results.
func ParseReply(d *xdr.Decoder) (xid uint32, e RPCErr, ok bool) {
	xid, err := rpc.ParseReply(d)
	var re *rpc.ReplyError
	switch {
	case err == nil:
		return xid, RPCErr{Stat: Success}, true
	case !errors.As(err, &re):
		return xid, e, false
	case re.Denied && re.Reject != rpc.RPCMismatch && re.Reject != rpc.AuthError:
		return xid, e, false
	}
	return xid, StatusOf(err), true
}
