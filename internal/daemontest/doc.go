// Package daemontest is the tests' support package: it binds the sockets
// a test hands to a daemon (port 0 on loopback, a local socket in the
// test's temporary directory: no test looks for a free port) and runs a
// whole portmapd inside a test, stopped when the test ends. Tests of
// clients (pmap/client, info, probe) use it to talk to the real daemon
// rather than to a fake. Only tests import it.
package daemontest
