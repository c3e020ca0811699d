package metrics

import (
	"testing"

	"github.com/portmapd/portmapd/internal/nftset"
)

// The --nft-set series appear only when the set is configured, and show
// what the syncer reports at each scrape.
func TestNFTSetSeries(t *testing.T) {
	m := New(Options{NoRuntimeMetrics: true})
	if got := values(t, m, "portmapd_nft_set_elements"); len(got) != 0 {
		t.Fatalf("series without --nft-set: %v", got)
	}
	st := nftset.Stats{Elements: 4, Batches: 7, Errors: 2}
	m.SetNFTSet(func() nftset.Stats { return st })
	for name, want := range map[string]float64{"portmapd_nft_set_elements": 4, "portmapd_nft_batches_total": 7, "portmapd_nft_errors_total": 2} {
		if got := values(t, m, name); got[""] != want || len(got) != 1 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	st.Errors++
	if got := values(t, m, "portmapd_nft_errors_total"); got[""] != 3 {
		t.Errorf("errors at the next scrape = %v, want 3", got)
	}
	(*Metrics)(nil).SetNFTSet(nil) // a daemon without --metrics
}
