package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetricsByOutcomeAndReason drives each call outcome and each refusal
// reason a loopback client can cause over the wire, then reads them back
// from /metrics; a second daemon forwards remote calls to a service that
// never answers, so that the forwarder's in-flight gauge, evictions and
// expiries show. (rate_limited, amplification and forward_rate_limited
// spare loopback callers; the rpc and rmtcall tests cover them.)
func TestMetricsByOutcomeAndReason(t *testing.T) {
	const (
		pmapProg   = 100000
		registered = 400777
		callit     = 5
		indirect   = 10
		protoUDP   = 17
		set        = 1
		getport    = 3
	)
	port, mport := startWithMetrics(t,
		"--deny", "127.0.0.3", "--port-range", "3000-5000", "--port-range-refuse")
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}

	setArgs := func(prog, port uint32) []uint32 { return []uint32{prog, 1, protoUDP, port} }
	badRPC := NewCall(6, pmapProg, 2, 0)
	badRPC.RPCVers = 3
	badCred := NewCall(7, pmapProg, 2, 0)
	badCred.Cred = Auth{Flavor: 99}
	rmtArgs := func(prog, proc uint32) []byte { return append(Words(prog, 1, proc), XDROpaque(nil)...) }
	nfsCallit := NewCall(10, pmapProg, 2, callit)
	nfsCallit.Args = rmtArgs(100003, 1)
	unregCallit := NewCall(11, pmapProg, 2, callit)
	unregCallit.Args = rmtArgs(400999, 0)
	regIndirect := NewCall(12, pmapProg, 4, indirect)
	regIndirect.Args = rmtArgs(registered, 0)
	steps := []struct {
		from  string
		msg   []byte
		reply bool
	}{
		{"127.0.0.1", NewCall(1, pmapProg, 2, set, setArgs(registered, 4000)...).Bytes(), true},   // success
		{"127.0.0.1", NewCall(2, 400555, 2, 0).Bytes(), true},                                     // prog_unavail
		{"127.0.0.1", NewCall(3, pmapProg, 7, 0).Bytes(), true},                                   // prog_mismatch
		{"127.0.0.1", NewCall(4, pmapProg, 2, 50).Bytes(), true},                                  // proc_unavail
		{"127.0.0.1", NewCall(5, pmapProg, 2, getport).Bytes(), true},                             // garbage_args
		{"127.0.0.1", badRPC.Bytes(), true},                                                       // rpc_mismatch
		{"127.0.0.1", badCred.Bytes(), true},                                                      // auth_error
		{"127.0.0.1", []byte{1, 2, 3}, false},                                                     // undecodable
		{"127.0.0.1", nfsCallit.Bytes(), true},                                                    // forward_denied
		{"127.0.0.1", unregCallit.Bytes(), false},                                                 // no_reply
		{"127.0.0.1", regIndirect.Bytes(), true},                                                  // system_err, forward_disabled
		{"127.0.0.1", NewCall(13, pmapProg, 2, set, setArgs(400778, 6000)...).Bytes(), true},      // port_range
		{"127.0.0.2", NewCall(14, pmapProg, 2, set, setArgs(400779, 4001)...).Bytes(), true},      // not_local
		{"127.0.0.3", NewCall(15, pmapProg, 2, getport, setArgs(registered, 0)...).Bytes(), true}, // access_denied
	}
	for i, s := range steps {
		exchange(t, i, s.from, to, s.msg, s.reply)
	}
	want := map[string]int{
		`reason="undecodable"`: 1, `reason="forward_denied"`: 1, `reason="forward_disabled"`: 1,
		`reason="port_range"`: 1, `reason="not_local"`: 1, `reason="access_denied"`: 1,
	}
	for _, o := range []string{"success", "prog_unavail", "prog_mismatch", "proc_unavail", "garbage_args",
		"rpc_mismatch", "auth_error", "no_reply", "system_err"} {
		want[`outcome="`+o+`"`] = 1
	}
	waitMetrics(t, mport, want, nil)

	// The forwarder: a table of one, a service that never answers.
	port, mport = startWithMetrics(t,
		"--remote-calls", "--remote-call-max", "1", "--remote-call-timeout", "2s")
	to.Port = port
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sport := uint32(silent.LocalAddr().(*net.UDPAddr).Port)
	exchange(t, 100, "127.0.0.1", to, NewCall(100, pmapProg, 2, set, setArgs(registered, sport)...).Bytes(), true)
	for xid := uint32(101); xid <= 102; xid++ {
		c := NewCall(xid, pmapProg, 2, callit)
		c.Args = rmtArgs(registered, 0)
		exchange(t, int(xid), "127.0.0.1", to, c.Bytes(), false)
	}
	// Both calls reach the service; the first was evicted for the second.
	waitMetrics(t, mport, map[string]int{`reason="forwards_full"`: 1}, map[string]int{"portmapd_forwards_in_flight": 1})
	waitMetrics(t, mport, map[string]int{`reason="forward_expired"`: 1}, map[string]int{"portmapd_forwards_in_flight": 0})
}

// exchange sends msg from a socket on address from to the daemon and, if
// reply is set, waits for an answer.
func exchange(t *testing.T, step int, from string, to *net.UDPAddr, msg []byte, reply bool) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.WriteToUDP(msg, to); err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	if !reply {
		return
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	if _, _, err := conn.ReadFromUDP(buf); err != nil {
		t.Fatalf("step %d from %s: no reply: %v", step, from, err)
	}
}

// waitMetrics scrapes the daemon's /metrics until, for each key of atLeast,
// the series whose labels contain it add up to at least its value, and each
// series in exactly has exactly its value; it fails after 10 seconds.
func waitMetrics(t *testing.T, mport int, atLeast, exactly map[string]int) {
	t.Helper()
	var missing []string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sums := map[string]int{}
		values := map[string]int{}
		for _, line := range strings.Split(string(body), "\n") {
			series, v, ok := strings.Cut(line, " ")
			n, err := strconv.Atoi(v)
			if !ok || err != nil || strings.HasPrefix(line, "#") {
				continue
			}
			values[series] = n
			for key := range atLeast {
				if strings.Contains(series, key) {
					sums[key] += n
				}
			}
		}
		missing = missing[:0]
		for key, n := range atLeast {
			if sums[key] < n {
				missing = append(missing, fmt.Sprintf("%s: %d, want at least %d", key, sums[key], n))
			}
		}
		for series, n := range exactly {
			if values[series] != n {
				missing = append(missing, fmt.Sprintf("%s: %d, want %d", series, values[series], n))
			}
		}
		if len(missing) == 0 {
			return
		}
	}
	t.Fatalf("metrics never showed:\n%s", strings.Join(missing, "\n"))
}
