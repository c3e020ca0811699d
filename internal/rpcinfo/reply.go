package rpcinfo

import (
	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client/tirpc"
	"github.com/portmapd/portmapd/xdr"
)

// pmapList and rpcbList decode a DUMP's list into out, as far as it goes.
func pmapList(out *[]pmap.PortMapping) func(*xdr.Decoder) error {
	return func(d *xdr.Decoder) (err error) {
		*out, err = pmap.DecodePmapList(d, *out, tirpc.MaxRows)
		return err
	}
}

func rpcbList(out *[]pmap.Mapping) func(*xdr.Decoder) error {
	return func(d *xdr.Decoder) (err error) {
		*out, err = pmap.DecodeRpcbList(d, *out, tirpc.MaxRows)
		return err
	}
}
