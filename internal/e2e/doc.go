// Package e2e runs portmapd and Debian's rpcbind side by side and compares
// what real clients see from each.
//
// Every daemon runs in its own private network, mount and PID namespace
// (see [NewNamespace]), so both can own port 111 and /run/rpcbind.sock
// without touching the machine's own portmapper. A differential test
// ([RunDiff]) replays the same list of [Step]s, each a command such as the
// libtirpc test client (testdata/c/rpcclient.c, run as [ClientCmd]) or
// rpcinfo, against a fresh rpcbind namespace and a fresh portmapd namespace
// and reports, step by step, every difference in stdout, stderr or exit
// status. A step can record the reference's exact output ([Step.Expect]),
// and a step whose difference is deliberate says why and supplies its own
// check ([Step.Tolerate], [SameOr]).
//
// Running:
//
//	go test ./internal/e2e/                                  # everything
//	go test ./internal/e2e/ -run TestPMAPv2Differential -v   # one scenario
//	PORTMAPD_E2E_SHOW=1 go test ./internal/e2e/ -run X -v    # log every step's output
//
// The tests need root, nsenter, ip, gcc with libtirpc-dev, rpcbind and
// rpcinfo; without them they skip and say what is missing. Creating a
// namespace re-executes the test binary as its PID 1, so a test binary
// using this package must call [Main] from TestMain.
package e2e
