package rpcinfo

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/portmapd/portmapd/pmap"
	"github.com/portmapd/portmapd/pmap/client/tirpc"
)

// Modes of rpcinfo, named after its "functions".
const (
	modeNone = iota
	modePmapDump
	modeTCPPing
	modeUDPPing
	modeBroadcast
	modeDelete
	modeAddrPing
	modeProgPing
	modeRpcbDump
	modeRpcbDumpShort
	modeAddrList
	modeGetstat
)

// Options configure a run beyond rpcinfo's own command line.
type Options struct {
	// Name is how the program was invoked (argv[0]); getopt's messages
	// start with it, as glibc's do. Empty means "rpcinfo".
	Name string
	// Socket is the local socket (rpcinfo: /run/rpcbind.sock).
	Socket string
	// AbstractSocket is the local socket's abstract name, tried before
	// Socket ("@/run/rpcbind.sock" for rpcinfo 1.2.7+). It defaults to
	// that only when Socket is not set either: naming a socket means
	// that socket.
	AbstractSocket string
	// Netconfig and RPCFile are the netconfig and rpc databases; a file
	// that cannot be read gives way to the built-in Debian tables.
	Netconfig string
	RPCFile   string
	// Stdout and Stderr receive the output.
	Stdout, Stderr io.Writer
}

// Defaults of Options.
const (
	DefaultSocket = "/run/rpcbind.sock"
	// DefaultAbstractSocket is libtirpc's _PATH_RPCBINDSOCK_ABSTRACT.
	DefaultAbstractSocket = "@" + DefaultSocket
	DefaultNetconfig      = "/etc/netconfig"
	DefaultRPCFile        = "/etc/rpc"
)

// Run runs rpcinfo with args (argv without argv[0]) and returns its exit
// status. rpcinfo's own options behave as in Debian's rpcinfo 1.2.6, down
// to the bytes printed; the long options add to them:
//
//	--json            print the result as JSON
//	--host HOST       query HOST (repeatable: every host, at once)
//	--timeout D       bound every call by D instead of rpcinfo's 10s/60s
//	--socket PATH     the local socket instead of @/run/rpcbind.sock,
//	                  then /run/rpcbind.sock (rpcinfo 1.2.7's pair)
//	--abstract-socket NAME  the abstract name tried before the path
//
// and -n PORT, which rpcinfo parses and ignores, makes every query ask the
// portmapper on PORT (of 127.0.0.1 when no host is named).
func Run(args []string, o Options) int {
	if o.Name == "" {
		o.Name = "rpcinfo"
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
		if o.AbstractSocket == "" {
			o.AbstractSocket = DefaultAbstractSocket
		}
	}
	if o.Netconfig == "" {
		o.Netconfig = DefaultNetconfig
	}
	if o.RPCFile == "" {
		o.RPCFile = DefaultRPCFile
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	base := &runner{options: &options{Config: tirpc.Config{Netconfig: tirpc.LoadNetconfig(o.Netconfig), Socket: o.Socket,
		Abstract: o.AbstractSocket, LookupHost: tirpc.DefaultLookup}, rpc: loadRPC(o.RPCFile), lookupAddr: net.DefaultResolver.LookupAddr}}

	cl := parseArgs(o.Name, args, base)
	if cl.exitNow >= 0 {
		r := base
		r.result = &UsageResult{}
		r.result.(*UsageResult).Query = "usage"
		return finish(o, cl, []*runner{r}, []int{cl.exitNow}, []string{""})
	}
	hosts := cl.hosts
	if len(hosts) == 0 {
		r := base
		code := r.run(cl, cl.args)
		return finish(o, cl, []*runner{r}, []int{code}, []string{""})
	}
	if !takesHost(cl.modeFor(append([]string{"host"}, cl.args...))) {
		fmt.Fprintf(o.Stderr, "%s: --host does not apply to -a, -b and -d\n", o.Name)
		return 1
	}
	runners := make([]*runner, len(hosts))
	codes := make([]int, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		r := &runner{options: base.options}
		runners[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = r.run(cl, append([]string{h}, cl.args...))
		}()
	}
	wg.Wait()
	return finish(o, cl, runners, codes, hosts)
}

// run dispatches as rpcinfo's main does: the mode's typed result is the
// run's, rendered on the run's stdout and stderr, and its exit status is
// rpcinfo's: 1 when it ended with an error.
func (r *runner) run(cl *cmdline, args []string) int {
	var res result
	var err error
	switch cl.modeFor(args) {
	case modePmapDump:
		// rpcinfo refuses -p with -n; here -n names the port to ask.
		res, err = r.pmapdump(args)
	case modeUDPPing:
		res, err = r.ipPing("udp", args)
	case modeTCPPing:
		res, err = r.ipPing("tcp", args)
	case modeBroadcast:
		res, err = r.brdcst(args)
	case modeDelete:
		res, err = r.deletereg(cl.netid, cl.netidSet, args)
	case modeAddrPing:
		res, err = r.addrping(cl.address, cl.netid, cl.netidSet, args)
	case modeProgPing:
		res, err = r.progping(cl.netid, cl.netidSet, args)
	case modeRpcbDump:
		res, err = r.rpcbdump(false, cl.netid, cl.netidSet, args)
	case modeRpcbDumpShort:
		res, err = r.rpcbdump(true, cl.netid, cl.netidSet, args)
	case modeAddrList:
		res, err = r.rpcbaddrlist(cl.netid, cl.netidSet, args)
	case modeGetstat:
		res, err = r.getstat(args)
	default:
		renderDiags(&r.stderr, nil, usageError{})
		return 1
	}
	r.result = res
	renderResult(&r.stdout, res, err)
	renderDiags(&r.stderr, res.common().notes, err)
	if err != nil {
		return 1
	}
	return 0
}

func takesHost(mode int) bool {
	switch mode {
	case modeBroadcast, modeDelete, modeAddrPing:
		return false
	}
	return true
}

// finish prints the runs' outputs: rpcinfo's text, a section per host
// when there are several, or JSON.
func finish(o Options, cl *cmdline, rs []*runner, codes []int, hosts []string) int {
	status := 0
	for _, c := range codes {
		status = max(status, c)
	}
	if cl.json {
		var out []any
		for i, r := range rs {
			res, ok := r.result.(result)
			if !ok {
				res = &UsageResult{}
				res.common().Query = "usage"
			}
			c := res.common()
			if hosts[i] != "" {
				c.Host = hosts[i]
			}
			c.Exit = codes[i]
			c.Error = strings.TrimRight(r.stderr.String(), "\n")
			out = append(out, res)
		}
		enc := json.NewEncoder(o.Stdout)
		enc.SetIndent("", "  ")
		if len(out) == 1 && len(cl.hosts) <= 1 {
			enc.Encode(out[0])
		} else {
			enc.Encode(out)
		}
		return status
	}
	if len(rs) == 1 {
		o.Stdout.Write(rs[0].stdout.Bytes())
		o.Stderr.Write(rs[0].stderr.Bytes())
		return status
	}
	for i, r := range rs {
		if i > 0 {
			fmt.Fprintln(o.Stdout)
		}
		fmt.Fprintf(o.Stdout, "%s:\n", hosts[i])
		o.Stdout.Write(r.stdout.Bytes())
		for _, line := range strings.SplitAfter(r.stderr.String(), "\n") {
			if line != "" {
				fmt.Fprintf(o.Stderr, "%s: %s", hosts[i], line)
			}
		}
	}
	return status
}

const helpText = `
Options of rpcinfo, as in rpcinfo(8); in addition:
       -n portnum     with -u or -t, call the service at this port and
                      ask no portmapper (rpcinfo(8)'s meaning, which
                      rpcinfo 1.2.x ignores); otherwise ask the
                      portmapper on this port (of 127.0.0.1 when no
                      host is named) instead of 111
       --json         print the result as JSON
       --host HOST    query HOST; repeat (or separate by commas) to
                      query several hosts at once
       --timeout D    bound every call by D (e.g. 2s) instead of
                      rpcinfo's 10s for pings and 60s otherwise
       --port-range LOW-HIGH
                      name, on stderr, registrations whose port is
                      outside the range a firewall opens (-p and the
                      default listing)
       --socket PATH  the portmapper's local socket (default
                      @/run/rpcbind.sock, then /run/rpcbind.sock)
       --abstract-socket NAME
                      the abstract name tried before the socket path
                      (default @/run/rpcbind.sock unless --socket is
                      given; empty: none)
`

// cmdline is rpcinfo's command line after getopt.
type cmdline struct {
	function int
	errflg   bool
	netid    string
	netidSet bool
	address  string
	args     []string
	exitNow  int // >= 0: getopt already decided the exit status

	json  bool
	hosts []string
	// abstractSet: --abstract-socket was given, so --socket leaves
	// the abstract name alone.
	abstractSet bool
}

// modeFor is the end of rpcinfo's main: without a mode option, two or
// more arguments make a ping, fewer a listing; an error or -a without
// -T is a usage error.
func (cl *cmdline) modeFor(args []string) int {
	if cl.errflg || (cl.function == modeAddrPing && !cl.netidSet) {
		return modeNone
	}
	if cl.function == modeNone {
		if len(args) > 1 {
			return modeProgPing
		}
		return modeRpcbDump
	}
	return cl.function
}

// parseArgs fills r's options from the command line, and its output with
// what getopt says about it. It is glibc's getopt with rpcinfo's option string
// "a:bdlmn:pstT:u", permuting arguments as GNU getopt does unless
// POSIXLY_CORRECT is set, plus the long options of this program, which
// rpcinfo does not have.
func parseArgs(name string, argv []string, r *runner) *cmdline {
	cl := &cmdline{exitNow: -1}
	setFunc := func(f int) {
		if cl.function != modeNone {
			cl.errflg = true
		} else {
			cl.function = f
		}
	}
	posix := os.Getenv("POSIXLY_CORRECT") != ""
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			cl.args = append(cl.args, argv[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "--") {
			if !cl.longOption(name, argv, &i, r) {
				cl.exitNow = 1
				renderDiag(&r.stderr, usageError{})
				return cl
			}
			if cl.exitNow >= 0 {
				return cl
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			if posix {
				cl.args = append(cl.args, argv[i:]...)
				break
			}
			cl.args = append(cl.args, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'a', 'n', 'T':
				var optarg string
				switch {
				case j+1 < len(a):
					optarg = a[j+1:]
				case i+1 < len(argv):
					i++
					optarg = argv[i]
				default:
					fmt.Fprintf(&r.stderr, "%s: option requires an argument -- '%c'\n", name, c)
					cl.errflg = true
					j = len(a)
					continue
				}
				j = len(a)
				switch c {
				case 'a':
					cl.address = optarg
					setFunc(modeAddrPing)
				case 'T':
					cl.netid, cl.netidSet = optarg, true
				case 'n':
					v, ok := strtol(optarg)
					if !ok {
						fmt.Fprintf(&r.stderr, "rpcinfo: %s is illegal port number\n", optarg)
						cl.exitNow = 1
						return cl
					}
					r.Port = int(uint16(v))
				}
			case 'b':
				setFunc(modeBroadcast)
			case 'd':
				setFunc(modeDelete)
			case 'l':
				setFunc(modeAddrList)
			case 'm':
				setFunc(modeGetstat)
			case 'p':
				setFunc(modePmapDump)
			case 's':
				setFunc(modeRpcbDumpShort)
			case 't':
				setFunc(modeTCPPing)
			case 'u':
				setFunc(modeUDPPing)
			default:
				fmt.Fprintf(&r.stderr, "%s: invalid option -- '%c'\n", name, c)
				cl.errflg = true
			}
		}
	}
	return cl
}

// longOption handles --json, --host, --timeout, --socket,
// --abstract-socket and --port-range (with their value after "=" or as
// the next argument). An unknown one is reported in getopt_long's words.
func (cl *cmdline) longOption(name string, argv []string, i *int, r *runner) bool {
	opt, val, hasVal := strings.Cut(argv[*i][2:], "=")
	needVal := func() (string, bool) {
		if hasVal {
			return val, true
		}
		if *i+1 < len(argv) {
			*i++
			return argv[*i], true
		}
		fmt.Fprintf(&r.stderr, "%s: option '--%s' requires an argument\n", name, opt)
		return "", false
	}
	switch opt {
	case "help":
		r.stdout.WriteString(usageText + helpText)
		cl.exitNow = 0
		return true
	case "json":
		if hasVal {
			fmt.Fprintf(&r.stderr, "%s: option '--json' doesn't allow an argument\n", name)
			return false
		}
		cl.json = true
	case "host":
		v, ok := needVal()
		if !ok {
			return false
		}
		for _, h := range strings.Split(v, ",") {
			if h != "" {
				cl.hosts = append(cl.hosts, h)
			}
		}
	case "timeout":
		v, ok := needVal()
		if !ok {
			return false
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(&r.stderr, "%s: --timeout: %q is not a positive duration\n", name, v)
			return false
		}
		r.Timeout = d
	case "socket":
		v, ok := needVal()
		if !ok {
			return false
		}
		r.Socket = v
		if !cl.abstractSet {
			r.Abstract = ""
		}
	case "abstract-socket":
		v, ok := needVal()
		if !ok {
			return false
		}
		r.Abstract, cl.abstractSet = v, true
	case "port-range":
		v, ok := needVal()
		if !ok {
			return false
		}
		pr, err := pmap.ParsePortRange(v)
		if err != nil {
			fmt.Fprintf(&r.stderr, "%s: --port-range: %q is not LOW-HIGH\n", name, v)
			return false
		}
		r.portRange = &pr
	default:
		fmt.Fprintf(&r.stderr, "%s: unrecognized option '--%s'\n", name, opt)
		return false
	}
	return true
}
