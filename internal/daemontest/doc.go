// Package daemontest runs a whole portmapd inside a test: on a free
// loopback port, with its local socket in the test's temporary directory,
// stopped when the test ends. Tests of clients (pmap/client, info, probe)
// use it to talk to the real daemon rather than to a fake.
package daemontest
