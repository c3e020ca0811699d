package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/portmapd/portmapd/internal/netns"
)

// nsSysctls are the settings of every namespace RunInNamespace makes. The
// storms open tens of thousands of connections a second: every port for
// the clients, and TIME_WAIT ports reused (both are the network
// namespace's own settings).
var nsSysctls = map[string]string{
	"net/ipv4/ip_local_port_range": "1024 65535",
	"net/ipv4/tcp_tw_reuse":        "1",
}

// RunInNamespace runs argv (typically portmapd-bench's "run --json ...")
// in a private network, mount and PID namespace of its own (netns) and
// decodes the Result it prints on its standard output. Its standard error,
// the progress lines, goes to progress. The program calling it must call
// netns.Main first thing.
func RunInNamespace(ctx context.Context, argv []string, progress io.Writer) (*Result, error) {
	if err := netns.Available(); err != nil {
		return nil, err
	}
	ns, err := netns.New(netns.Options{Env: os.Environ(), Sysctls: nsSysctls})
	if err != nil {
		return nil, fmt.Errorf("creating the benchmark's namespace: %w", err)
	}
	defer ns.Close()
	cmd := ns.Command(ctx, argv...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = progress
	runErr := cmd.Run()
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), runErr)
		}
		return nil, fmt.Errorf("decoding the result of %s: %w", argv[0], err)
	}
	if runErr != nil {
		// A run that failed part way still printed what it measured.
		return &res, fmt.Errorf("%s: %w", res.Name, runErr)
	}
	return &res, nil
}
