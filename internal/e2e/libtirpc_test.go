package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestLibtirpcDifferential calls libtirpc's own rpcb_* and pmap_*
// functions, as RPC services and clients built on libtirpc do, and
// requires the same results from portmapd as from Debian's rpcbind.
func TestLibtirpcDifferential(t *testing.T) {
	t.Parallel()
	RunDiff(t, Rpcbind(), Portmapd(), libtirpcSteps())
}

// SameOrExactly accepts the second daemon's output when its stdout is the
// reference's or exactly the given lines, and its exit status and stderr
// are the reference's: for a deliberate difference whose better answer is
// known.
func SameOrExactly(lines ...string) func(ref, got Output) error {
	want := strings.Join(lines, "\n") + "\n"
	return func(ref, got Output) error {
		if ref.Status() != got.Status() || ref.Stderr != got.Stderr {
			return fmt.Errorf("status or stderr differs: %s vs %s", ref.Status(), got.Status())
		}
		if got.Stdout != want && got.Stdout != ref.Stdout {
			return fmt.Errorf("stdout is not the expected one:\n%s", lineDiff("expected", want, "got", got.Stdout))
		}
		return nil
	}
}

// localConversion names the deliberate difference of TADDR2UADDR and
// UADDR2TADDR over the local socket.
const localConversion = "TADDR2UADDR/UADDR2TADDR over the local socket: rpcbind converts with the " +
	"arrival transport's family, AF_LOCAL, so libtirpc's rpcb_taddr2uaddr of an IP address gets \"\" " +
	"and rpcb_uaddr2taddr a path; portmapd takes the family from the address itself"

// libtirpcSteps is the libtirpc scenario; the Expect lines are what the
// functions returned against Debian's rpcbind 1.2.6 with libtirpc 1.3.3.
// rpcb_set, rpcb_unset, pmap_set, pmap_unset, rpcb_taddr2uaddr and
// rpcb_uaddr2taddr go over the local socket (so the caller's uid is the
// owner); rpcb_getaddr and rpcb_getmaps over the transport named;
// pmap_getport over udp and pmap_getmaps over tcp.
func libtirpcSteps() []Step {
	rows := []string{
		"  400400 1 udp 0.0.0.0.19.1 superuser",
		"  400400 1 tcp6 ::.19.1 superuser",
		"  400400 1 local /run/e2e-400400.sock superuser",
		"  400400 2 tcp 0.0.0.0.19.3 superuser",
	}
	libRows := []string{
		"  400401 1 udp 0.0.0.0.17.49 superuser",
		"  400401 1 tcp 0.0.0.0.17.49 superuser",
	}
	return []Step{
		rpcbStep("rpcb_set",
			"lib rpcb_set 400400 1 udp 0.0.0.0.19.1", "true",
			"lib rpcb_set 400400 1 tcp6 ::.19.1", "true",
			"lib rpcb_set 400400 1 local /run/e2e-400400.sock", "true",
			"lib rpcb_set 400400 1 udp 0.0.0.0.19.1", "true",
			"lib rpcb_set 400400 1 udp 0.0.0.0.19.2", "false",
			"lib rpcb_set 400400 2 tcp 0.0.0.0.19.3", "true",
		),
		// On tcp, version 1 is missing and version 2 answers.
		rpcbStep("rpcb_getaddr over each transport",
			"lib rpcb_getaddr 400400 1 udp", `"127.0.0.1.19.1"`,
			"lib rpcb_getaddr 400400 1 tcp6", `"::1.19.1"`,
			"lib rpcb_getaddr 400400 1 tcp", `"127.0.0.1.19.3"`,
			"lib rpcb_getaddr 400400 1 udp6", "false (RPC_PROGNOTREGISTERED)",
			"lib rpcb_getaddr 400400 1 local", `"/run/e2e-400400.sock"`,
			"lib rpcb_getaddr 400400 3 udp", `"127.0.0.1.19.1"`,
			"lib rpcb_getaddr 400477 1 udp", "false (RPC_PROGNOTREGISTERED)",
			"lib rpcb_getaddr 100000 4 udp6", `"::1.0.111"`,
			"lib rpcb_getaddr 100000 2 tcp", `"127.0.0.1.0.111"`,
		),
		Client("rpcb_getmaps over each transport", "lib rpcb_getmaps udp", "lib rpcb_getmaps tcp6",
			"lib rpcb_getmaps local").Expect(slices.Concat(
			dumpOut("lib rpcb_getmaps udp", rows...),
			dumpOut("lib rpcb_getmaps tcp6", rows...),
			dumpOut("lib rpcb_getmaps local", rows...))...),
		rpcbStep("rpcb_gettime",
			"lib rpcb_gettime", "within 5s",
			"lib rpcb_gettime ::1", "within 5s",
			"lib rpcb_gettime localhost", "within 5s",
		),
		rpcbStep("rpcb_taddr2uaddr and rpcb_uaddr2taddr of local addresses",
			"lib rpcb_taddr2uaddr local /run/x.sock", `"/run/x.sock"`,
			"lib rpcb_uaddr2taddr local /run/x.sock", "len=13 buf="+sockaddrUn("/run/x.sock")+` uaddr="/run/x.sock"`,
		),
		// rpcbind reads the bytes of a sockaddr_in after its family as a
		// path, up to the first NUL: the port and the first byte of the
		// address. It parses "127.0.0.1.8.1" as a local address, the path
		// being what comes before the last two dots.
		rpcbStep("rpcb_taddr2uaddr and rpcb_uaddr2taddr of IP addresses",
			"lib rpcb_taddr2uaddr udp 127.0.0.1.8.1", `"\x08\x01\x7f"`,
			"lib rpcb_taddr2uaddr tcp6 ::1.8.1", `"\x08\x01"`,
			"lib rpcb_uaddr2taddr udp 127.0.0.1.8.1", "len=11 buf="+sockaddrUn("127.0.0.1")+` uaddr=""`,
			"lib rpcb_uaddr2taddr tcp6 ::1.8.1", "len=5 buf="+sockaddrUn("::1")+` uaddr=""`,
		).Tolerate(localConversion, SameOrExactly(
			`lib rpcb_taddr2uaddr udp 127.0.0.1.8.1: "127.0.0.1.8.1"`,
			`lib rpcb_taddr2uaddr tcp6 ::1.8.1: "::1.8.1"`,
			"lib rpcb_uaddr2taddr udp 127.0.0.1.8.1: len=16 buf="+sockaddrIn("127.0.0.1", 2049)+` uaddr="127.0.0.1.8.1"`,
			"lib rpcb_uaddr2taddr tcp6 ::1.8.1: len=28 buf="+sockaddrIn6("::1", 2049)+` uaddr="::1.8.1"`,
		)),

		// pmap_getport of 400400 v1 finds rpcb_set's udp entry.
		Client("pmap_set, pmap_getport, pmap_getmaps",
			"lib pmap_set 400401 1 17 4401", "lib pmap_set 400401 1 6 4401", "lib pmap_set 400401 1 17 4402",
			"lib pmap_getport 400401 1 17", "lib pmap_getport 400401 1 6", "lib pmap_getport 400401 2 6",
			"lib pmap_getport 400400 1 17", "lib pmap_getmaps").Expect(
			"lib pmap_set 400401 1 17 4401: true",
			"lib pmap_set 400401 1 6 4401: true",
			"lib pmap_set 400401 1 17 4402: false",
			"lib pmap_getport 400401 1 17: 4401",
			"lib pmap_getport 400401 1 6: 4401",
			"lib pmap_getport 400401 2 6: 4401",
			"lib pmap_getport 400400 1 17: 4865",
			"lib pmap_getmaps: 10 rows",
			"  100000 4 6 111",
			"  100000 3 6 111",
			"  100000 2 6 111",
			"  100000 4 17 111",
			"  100000 3 17 111",
			"  100000 2 17 111",
			"  400400 1 17 4865",
			"  400400 2 6 4867",
			"  400401 1 17 4401",
			"  400401 1 6 4401",
		),
		Client("v3 DUMP after the lib calls", "v3 udp dump").Expect(
			dumpOut("v3 udp dump", slices.Concat(rows, libRows)...)...),

		rpcbStep("as uid 1000: register, and fail to remove root's entries",
			"lib rpcb_set 400402 1 udp 0.0.0.0.19.4", "true",
			"lib pmap_set 400403 1 6 4403", "true",
			"lib rpcb_unset 400400 1 -", "false",
			"lib pmap_unset 400401 1", "false",
			"lib rpcb_unset 400400 2 tcp", "false",
			"lib rpcb_getaddr 400402 1 udp", `"127.0.0.1.19.4"`,
			"lib pmap_getport 400403 1 6", "4403",
		).withOpts("-u", "1000"),
		Client("v3 DUMP after uid 1000", "v3 udp dump").Expect(
			dumpOut("v3 udp dump", slices.Concat(rows, libRows, []string{
				"  400402 1 udp 0.0.0.0.19.4 1000",
				"  400403 1 tcp 0.0.0.0.17.51 1000",
			})...)...),
		rpcbStep("rpcb_unset and pmap_unset as root remove anything",
			"lib rpcb_unset 400400 1 udp", "true",
			"lib rpcb_unset 400400 1 -", "true",
			"lib rpcb_unset 400400 2 tcp", "true",
			"lib pmap_unset 400401 1", "true",
			"lib rpcb_unset 400402 1 -", "true",
			"lib pmap_unset 400403 1", "true",
			"lib pmap_unset 400477 1", "true",
			"lib rpcb_unset 400477 1 -", "true",
		),
		Client("nothing is left", "lib rpcb_getmaps udp", "lib pmap_getmaps").Expect(slices.Concat(
			dumpOut("lib rpcb_getmaps udp"),
			[]string{
				"lib pmap_getmaps: 6 rows",
				"  100000 4 6 111",
				"  100000 3 6 111",
				"  100000 2 6 111",
				"  100000 4 17 111",
				"  100000 3 17 111",
				"  100000 2 17 111",
			})...),
	}
}
