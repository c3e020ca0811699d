// Package probe walks the path an ONC RPC client takes to a service and
// says where it breaks: the host's name, the portmapper on port 111 over
// TCP and UDP (answered, refused, or silently dropped), the program's
// registration, the registered port, and a NULL call to the service.
//
// "Cannot mount" and "RPC: Timed out" hide a dozen causes, each with its
// own remedy; the probe tells them apart by how each step fails, times
// every step, and ends with a verdict whose class is also the exit
// status (see Class), so that scripts and monitoring can act on it.
//
// It talks to the portmapper and the service through the Go client
// package (pmap/client), as a Go program would.
package probe
