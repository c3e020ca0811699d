package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// probe learns the set that portmapd serve would keep from the same
// places serve reads it: PORTMAPD_NFT_SET, then the options file's
// PORTMAPD_NFT_SET; its own --nft-set wins over both.
func TestProbeLearnsTheNFTSetAsServeWould(t *testing.T) {
	file := filepath.Join(t.TempDir(), "portmapd")
	if err := os.WriteFile(file, []byte("OPTIONS=\"-w\"\nPORTMAPD_NFT_SET=\"inet filter from_file\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTMAPD_ENV_FILE", file)
	t.Setenv("PORTMAPD_NFT_SET", "")
	if got := serveNFTSet(); got != "inet filter from_file" {
		t.Errorf("from the options file: %q", got)
	}
	t.Setenv("PORTMAPD_NFT_SET", "ip6 fw from_env")
	if got := serveNFTSet(); got != "ip6 fw from_env" {
		t.Errorf("from the environment: %q", got)
	}
	o := &probeOptions{port: 111, protos: []string{"tcp"}, nftSet: "inet t given"}
	cfg, err := o.config([]string{"127.0.0.1", "100005"})
	if err != nil || cfg.NFTSet != "inet t given" {
		t.Errorf("--nft-set: %q %v", cfg.NFTSet, err)
	}
	o.nftSet = ""
	if cfg, _ := o.config([]string{"127.0.0.1"}); cfg.NFTSet != "ip6 fw from_env" {
		t.Errorf("default: %q", cfg.NFTSet)
	}
}
