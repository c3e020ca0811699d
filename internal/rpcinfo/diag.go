package rpcinfo

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client/tirpc"
)

// What rpcinfo says on stderr, as values. A mode returns the one that
// ends it (exit status 1) and notes in its result those it meets on the
// way (a failed ping among several, a warning); renderDiags words them
// as rpcinfo does, a line each.

// usageError is rpcinfo's usage(): the synopsis.
type usageError struct{}

func (usageError) Error() string { return strings.TrimSuffix(usageText, "\n") }

// numberError is a program or version number that getprognum or
// getvers refuse ("program" or "version").
type numberError struct{ what, arg string }

func (e numberError) Error() string { return "rpcinfo: " + e.arg + " is illegal " + e.what + " number" }

// unknownService is a program name that /etc/rpc does not have.
type unknownService struct{ name string }

func (e unknownService) Error() string { return "rpcinfo: " + e.name + " is unknown service" }

// netidNotFound is nc_perror after a failed getnetconfigent.
type netidNotFound struct{ prefix string }

func (e netidNotFound) Error() string { return e.prefix + ": Netid not found in netconfig database" }

// unixNetid is libtirpc's warning when getnetconfigent is asked for
// "unix" (it also sleeps ten seconds there, which is not repeated here).
type unixNetid struct{}

func (unixNetid) Error() string {
	return "The local transport is called \"unix\" in /etc/netconfig.\n" +
		"Please change this to \"local\" manually or run mergemaster(8).\n" +
		"See UPDATING entry 20021216 for details.\n" +
		"Continuing in 10 seconds\n\n" +
		"This warning will be removed 20030301"
}

// createFailed is clnt_pcreateerror: no client handle, and why.
type createFailed struct {
	prefix string
	err    tirpc.CreateErr
}

func (e createFailed) Error() string { return e.err.Spcreateerror(e.prefix) }

// createFailure is err, a failed creation, as clnt_pcreateerror prints it.
func createFailure(prefix string, err error) createFailed {
	return createFailed{prefix, createErrOf(err)}
}

// callFailed is clnt_perror: a call that failed, and why.
type callFailed struct {
	prefix string
	err    tirpc.RPCErr
}

func (e callFailed) Error() string { return e.err.Sperror(e.prefix) }

// noTransport is ip_getclient's message when no transport of the
// protocol is in the netconfig database.
type noTransport struct{ proto string }

func (e noTransport) Error() string { return "Cannot find suitable transport for protocol " + e.proto }

// notPortmapper is -p's message for a portmapper without version 2.
type notPortmapper struct{ host string }

func (e notPortmapper) Error() string {
	return e.host + " does not support portmapper.  Try rpcinfo " + e.host + " instead"
}

// netidUnknown is -T's netid missing from the netconfig database.
type netidUnknown struct{ netid string }

func (e netidUnknown) Error() string { return "rpcinfo: Could not find " + e.netid }

// noHandleAddress is -a's address that does not convert for the netid.
type noHandleAddress struct{}

func (noHandleAddress) Error() string { return "rpcinfo: rpcinfo: no address for client handle" }

// netidUnsupported is -d's netid missing from the netconfig database.
type netidUnsupported struct{ netid string }

func (e netidUnsupported) Error() string { return "rpcinfo: netid " + e.netid + " not supported" }

// notDeleted is -d's failure, with the numbers as given.
type notDeleted struct{ prog, vers string }

func (e notDeleted) Error() string {
	return "rpcinfo: Could not delete registration for prog " + e.prog + " version " + e.vers
}

// broadcastFailed is -b's failure other than the end of its time.
type broadcastFailed struct{ stat tirpc.Status }

func (e broadcastFailed) Error() string { return "rpcinfo: broadcast failed: " + e.stat.String() }

// versionsCapped notes that a server's version range was cut to the
// versions pinged.
type versionsCapped struct{ lo, hi uint64 }

func (e versionsCapped) Error() string {
	return fmt.Sprintf("rpcinfo: the server claims versions %d to %d; pinging the first %d", e.lo, e.hi, maxVersionsPinged)
}

// outsideRange notes a registration whose port is outside --port-range.
type outsideRange struct {
	prog, vers uint32
	netid      string
	port       uint32
	within     pmap.PortRange
}

func (e outsideRange) Error() string {
	return fmt.Sprintf("rpcinfo: program %d version %d on %s uses port %d, outside the port range %d-%d",
		e.prog, e.vers, e.netid, e.port, e.within.Low, e.within.High)
}

// alreadySaid ends a mode with exit status 1 and nothing more to say:
// what went wrong was noted on the way, or rpcinfo says nothing.
type alreadySaid struct{}

func (alreadySaid) Error() string { return "" }

// renderDiags writes rpcinfo's stderr for what a run noted and the
// error that ended it, if any.
func renderDiags(w io.Writer, notes []error, end error) {
	for _, e := range notes {
		renderDiag(w, e)
	}
	renderDiag(w, end)
}

func renderDiag(w io.Writer, e error) {
	if e == nil || errors.As(e, new(alreadySaid)) {
		return
	}
	_, _ = io.WriteString(w, e.Error()+"\n") // w is the run's buffer
}
