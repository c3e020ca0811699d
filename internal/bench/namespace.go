package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// unshareArgs put a command in a private network, mount and PID namespace
// (as the command's PID 1, with its own /proc). --kill-child ties the
// namespace's life to unshare's: if the benchmark is killed, so is PID 1,
// and with it every process in the namespace.
var unshareArgs = []string{"-n", "-m", "--propagation", "private", "-p", "-f", "--mount-proc", "--kill-child"}

// RunInNamespace runs argv (typically this binary's "bench run
// --setup-namespace --json ...") under unshare and decodes the Result it
// prints on its standard output. Its standard error, the progress lines,
// goes to progress.
func RunInNamespace(ctx context.Context, argv []string, progress io.Writer) (*Result, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("creating namespaces needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("unshare (util-linux) not found: %w", err)
	}
	cmd := exec.CommandContext(ctx, unshare, append(append(slices.Clone(unshareArgs), "--"), argv...)...)
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

// SetupNamespace prepares the namespace RunInNamespace made: loopback up,
// a fresh tmpfs on /run (so /run/rpcbind.sock and the warm-start files are
// the namespace's own) and /run/rpcbind for rpcbind -w. It refuses unless
// it runs as PID 1 with its own /proc and a network namespace holding only
// a loopback interface: anywhere else it would mount over the machine's
// /run.
func SetupNamespace() error {
	if err := checkPrivateNamespace(); err != nil {
		return fmt.Errorf("refusing to set up the benchmark namespace: %w", err)
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %w: %s", err, out)
	}
	// The storms open tens of thousands of connections a second: every
	// port for the clients, and TIME_WAIT ports reused (both are the
	// namespace's own settings).
	for file, v := range map[string]string{"ip_local_port_range": "1024 65535", "tcp_tw_reuse": "1"} {
		if err := os.WriteFile("/proc/sys/net/ipv4/"+file, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", file, err)
		}
	}
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on /run: %w", err)
	}
	for _, dir := range []string{"/run/rpcbind", "/run/portmapd"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// Debian's rpcbind drops to the _rpc user after binding, and writes
	// its warm-start files as that user at exit: its tmpfiles.d entry
	// gives it /run/rpcbind, and so must we.
	if u, err := user.Lookup("_rpc"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown("/run/rpcbind", uid, 0); err != nil {
			return err
		}
	}
	return nil
}

func checkPrivateNamespace() error {
	if os.Getpid() != 1 {
		return errors.New("not PID 1 of a private PID namespace (run it through `portmapd bench compare`)")
	}
	// With the machine's /proc still mounted, /proc/self would name this
	// process by its outside PID; only the namespace's own /proc (which
	// needs a private mount namespace) says 1.
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil || !bytes.HasPrefix(self, []byte("1 ")) {
		return errors.New("/proc is not this PID namespace's own (no private mount namespace)")
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		if i.Name != "lo" {
			return fmt.Errorf("interface %s is visible: not a private network namespace", i.Name)
		}
	}
	return nil
}
