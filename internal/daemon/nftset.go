package daemon

import (
	"errors"

	"go.uber.org/zap"

	"github.com/portmapd/portmapd/internal/nftset"
)

// startNFTSet, with --nft-set, checks the set, brings it to exactly the
// table (the restored one after a warm start) and keeps it following the
// registry; a set that cannot be used is an error at start, never a
// silent no-op.
func (d *Daemon) startNFTSet() error {
	if d.cfg.NFTSet == "" {
		return nil
	}
	spec, err := nftset.ParseSpec(d.cfg.NFTSet)
	if err != nil {
		return errors.New("--nft-set " + err.Error())
	}
	if d.cfg.User != "" {
		// Netlink checks CAP_NET_ADMIN on every write, of the sender as
		// well as of the socket's opener.
		return errors.New("--nft-set writes the set all along, which needs root or CAP_NET_ADMIN: it cannot be combined with --user")
	}
	s, err := nftset.Open(spec, d.cfg.Port, d.log.Named("nftset"))
	if err != nil {
		return err
	}
	d.Registry.Watch(s.Change)
	if err := s.Sync(); err != nil {
		d.Registry.Watch(nil)
		return err
	}
	s.Start()
	d.nft = s
	d.sys.metrics.SetNFTSet(s.Stats)
	d.log.Info("keeping nftables set", zap.Stringer("set", spec), zap.Int("elements", s.Stats().Elements))
	return nil
}

// stopNFTSet, at a clean stop, empties the set when the table is not kept
// and leaves it as the table when it is (warm start): the services a
// restart restores stay reachable across it.
func (d *Daemon) stopNFTSet() error {
	if d.nft == nil {
		return nil
	}
	d.Registry.Watch(nil)
	keep := d.cfg.WarmStart
	if err := d.nft.Stop(!keep); err != nil {
		return err
	}
	d.log.Info("nftables set left", zap.Bool("emptied", !keep), zap.Int("elements", d.nft.Stats().Elements))
	return nil
}
