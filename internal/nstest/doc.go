// Package nstest lets a test run again in a network namespace of its own
// (unshare -n), where it may add addresses and bind fixed ports without
// touching the host's. It imports nothing of the project's, so that the
// tests of any package, rpc's included, can use it.
package nstest
