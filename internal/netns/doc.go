// Package netns runs commands in private network, mount and PID
// namespaces, so that a portmapper under test owns port 111 and
// /run/rpcbind.sock of its namespace and never the machine's.
//
// [New] re-executes the calling program as the namespace's PID 1 (the
// holder), which mounts the namespace's own /proc and a fresh /run, brings
// up loopback and then only reaps orphans; a program that creates
// namespaces must therefore call [Main] first thing in main or TestMain.
// Commands enter the namespace with nsenter ([Namespace.Run],
// [Namespace.Start], [Namespace.Command]); [Veth] joins two namespaces by a
// veth pair. Killing the holder makes the kernel kill everything in the
// namespace, and the holder exits as soon as its creator does, so nothing
// started inside outlives the program that made it.
//
// The end-to-end tests (internal/e2e) and the load generator
// (internal/bench, cmd/portmapd-bench) both build on it.
package netns
