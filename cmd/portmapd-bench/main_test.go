package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/portmapd/portmapd/internal/bench"
)

// TestBenchLoadOptionsSurviveTheTripToTheNamespace renders every load
// setting as flags, as compare does for each run in a namespace, and
// parses them back: a setting the rendering forgot would silently revert
// to its default there.
func TestBenchLoadOptionsSurviveTheTripToTheNamespace(t *testing.T) {
	want := bench.Config{
		Registrations:       []int{7, 70},
		Loads:               []string{bench.LoadDumpTCP, bench.LoadGetportUDP},
		Clients:             3,
		Duration:            1500 * time.Millisecond,
		Warmup:              time.Millisecond,
		MaxRequests:         12345,
		Timeout:             250 * time.Millisecond,
		UnregisteredPercent: 33,
		FreshLookups:        999,
		FreshDuration:       time.Minute,
		WarmRegistrations:   77,
		RegisterTimeout:     time.Hour,
	}
	sent := &benchLoadOptions{cfg: want}
	got := &benchLoadOptions{cfg: bench.DefaultConfig()}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	got.addFlags(fs)
	if err := fs.Parse(sent.args(7, 70)); err != nil {
		t.Fatal(err)
	}
	// Fields outside the load settings keep their defaults.
	def := bench.DefaultConfig()
	want.Address, want.Socket = def.Address, def.Socket
	if !reflect.DeepEqual(got.cfg, want) {
		t.Errorf("after the round trip:\n got %+v\nwant %+v", got.cfg, want)
	}
	// Every flag addFlags defines is one args renders.
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Changed {
			t.Errorf("--%s is not passed on to the namespace", f.Name)
		}
	})
}

func TestBenchCommandsAreRegistered(t *testing.T) {
	root := newRootCommand()
	for _, path := range [][]string{{"run"}, {"compare"}, {"storm"}, {"responder"}} {
		cmd, _, err := root.Find(path)
		if err != nil || cmd.Name() != path[len(path)-1] {
			t.Errorf("portmapd-bench %v: %v", path, err)
		}
	}
}
