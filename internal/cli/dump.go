package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client"
)

// connectOptions say which portmapper a client command talks to.
type connectOptions struct {
	network string
	address string
	timeout time.Duration
}

func (o *connectOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.network, "network", "", `"unix", "tcp" or "udp" (default: the local socket, @/run/rpcbind.sock then /run/rpcbind.sock, else tcp 127.0.0.1:111)`)
	cmd.Flags().StringVar(&o.address, "address", "", "socket path or host:port of the portmapper")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Second, "time allowed for each call")
}

func (o *connectOptions) dial(ctx context.Context) (*client.Client, error) {
	var c *client.Client
	var err error
	if o.network == "" && o.address == "" {
		c, err = client.DialLocal(ctx)
	} else {
		network, address := o.network, o.address
		if network == "" {
			network = "tcp"
		}
		if address == "" {
			address = "127.0.0.1:111"
			if network == "unix" {
				address = client.DefaultSocket
			}
		}
		c, err = client.Dial(ctx, network, address)
	}
	if err != nil {
		return nil, err
	}
	c.Timeout = o.timeout
	return c, nil
}

// newDumpCommand prints the table as portmap's pmap_dump did, or as JSON.
func newDumpCommand() *cobra.Command {
	var co connectOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Print the registrations in pmap_dump's format (or --json), for restore",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := co.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			if asJSON {
				ms, err := c.Dump(cmd.Context())
				if err != nil {
					return err
				}
				return writeJSON(out, ms)
			}
			rows, err := c.DumpPorts(cmd.Context())
			if err != nil {
				return err
			}
			for _, r := range rows {
				fmt.Fprintf(out, "%9d %4d %5s %6d\n", r.Prog, r.Vers, pmap.ProtoName(r.Prot), r.Port)
			}
			return nil
		},
	}
	co.addFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print every mapping (all netids, addresses and owners) as JSON")
	return cmd
}

// jsonMapping is the JSON form of a mapping, shared by dump and restore.
type jsonMapping struct {
	Prog  uint32 `json:"prog"`
	Vers  uint32 `json:"vers"`
	Netid string `json:"netid"`
	Addr  string `json:"addr"`
	Owner string `json:"owner,omitempty"`
}

func writeJSON(w io.Writer, ms []pmap.Mapping) error {
	out := make([]jsonMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, jsonMapping(m))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// newRestoreCommand registers what dump printed, as pmap_set did.
func newRestoreCommand() *cobra.Command {
	var co connectOptions
	cmd := &cobra.Command{
		Use:   "restore [FILE]",
		Short: "Register the mappings of a dump (pmap_dump format or JSON) read from FILE or stdin",
		Long: `Register every mapping of a dump, as portmap's pmap_set did. The input is
either pmap_dump's format (lines "prog vers proto port") or the JSON of
"portmapd dump --json". The portmapper's own rows (program 100000) are
skipped. Lines that fail are reported and the rest still registered.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			data, err := io.ReadAll(io.LimitReader(in, 64<<20))
			if err != nil {
				return err
			}
			ms, err := parseDump(data)
			if err != nil {
				return err
			}
			c, err := co.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			ms = slices.DeleteFunc(ms, func(m pmap.Mapping) bool { return m.Prog == pmap.Program })
			// Pipelined: a warm-start daemon makes each window of calls
			// durable with one write instead of one each.
			outcomes, err := c.SetMany(cmd.Context(), ms)
			if err != nil {
				return err
			}
			failed := 0
			for i, err := range outcomes {
				if err != nil {
					m := ms[i]
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "%d %d %s %s: %v\n", m.Prog, m.Vers, m.Netid, m.Addr, err)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d mappings not registered", failed, len(ms))
			}
			return nil
		},
	}
	co.addFlags(cmd)
	return cmd
}

// parseDump reads JSON or pmap_dump lines into mappings.
func parseDump(data []byte) ([]pmap.Mapping, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		var in []jsonMapping
		if err := json.Unmarshal(t, &in); err != nil {
			return nil, fmt.Errorf("parse JSON dump: %w", err)
		}
		out := make([]pmap.Mapping, 0, len(in))
		for _, m := range in {
			out = append(out, pmap.Mapping(m))
		}
		return out, nil
	}
	var out []pmap.Mapping
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want \"prog vers proto port\", got %q", n, sc.Text())
		}
		prog, err1 := strconv.ParseUint(f[0], 10, 32)
		vers, err2 := strconv.ParseUint(f[1], 10, 32)
		port, err3 := strconv.ParseUint(f[3], 10, 16)
		if err1 != nil || err2 != nil || err3 != nil || (f[2] != "tcp" && f[2] != "udp") {
			return nil, fmt.Errorf("line %d: malformed %q", n, sc.Text())
		}
		out = append(out, pmap.Mapping{Prog: uint32(prog), Vers: uint32(vers), Netid: f[2],
			Addr: fmt.Sprintf("0.0.0.0.%d.%d", port>>8, port&0xff)})
	}
	return out, sc.Err()
}
