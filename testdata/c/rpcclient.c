/*
 * rpcclient: a scriptable ONC RPC client for portmapd's end-to-end tests.
 *
 * It runs the operations given on its command line in order and prints a
 * deterministic text result for each, so that the output of one run against
 * Debian's rpcbind can be compared line by line with a run against portmapd.
 * Nothing that varies between runs (times, xids, ephemeral ports) is printed.
 *
 * Build: gcc -Wall -O1 -I/usr/include/tirpc -o rpcclient rpcclient.c -ltirpc
 *
 * Usage: rpcclient [options] 'OP ARG...' ['OP ARG...' ...]
 *
 * Every operation is ONE argument whose words are separated by spaces.
 * Options:
 *   -4 HOST       IPv4 target (default 127.0.0.1)
 *   -6 HOST       IPv6 target (default ::1)
 *   -S ADDR       IPv4 source address of "priv"/"unpriv" sockets and raw
 *                 (e.g. 127.0.0.2, to act as a host that is not loopback)
 *   -L PATH       local socket (default /run/rpcbind.sock); @NAME is an
 *                 abstract name (@/run/rpcbind.sock)
 *   -t MS         timeout of an ordinary call (default 3000)
 *   -w MS         how long CALLIT/BCAST/INDIRECT and raw wait (default 500)
 *   -u UID[:GID]  become this user before the first operation
 *   -a            send AUTH_SYS credentials instead of AUTH_NONE
 *
 * A transport T is NETID or NETID:SRC. NETID is udp, tcp, udp6, tcp6, local
 * or unix (local and unix both connect to the local socket). SRC chooses the
 * source port: "priv" binds a reserved port (bindresvport), "unpriv" binds
 * port 0 (an ephemeral port >= 1024). Without SRC the client comes from
 * clnt_create_timed(host, 100000, VERS, NETID), which itself looks the
 * service up and, running as root, binds a reserved port (udp6 and tcp6 use
 * clnt_tp_create_timed, since clnt_create only knows nettypes).
 * Empty strings are written as "-"; HEX is a string of hex digits ("" or "-"
 * for none).
 *
 * Operations (V is 2, 3 or 4; "v2" calls speak PMAP, "v3"/"v4" RPCBIND):
 *   vV T null
 *   v2 T set PROG VERS PROT PORT         -> true|false
 *   v2 T unset PROG VERS [PROT PORT]     -> true|false
 *   v2 T getport PROG VERS PROT          -> port
 *   v2 T dump                            -> "N rows", then "  prog vers prot port"
 *   v2 T callit PROG VERS PROC [HEX]     -> "port=N res=HEX" (after -w ms)
 *   vV T set PROG VERS NETID UADDR [OWNER]          -> true|false
 *   vV T unset PROG VERS NETID [UADDR [OWNER]]      -> true|false
 *   vV T getaddr PROG VERS [NETID [UADDR [OWNER]]]  -> "uaddr" (NETID defaults to T's)
 *   vV T getversaddr PROG VERS [NETID]   (procedure 9)
 *   vV T getaddrlist PROG VERS [NETID]   (procedure 11) -> rows
 *   vV T dump                            -> rows "prog vers netid uaddr owner"
 *   vV T gettime                         -> "within 5s" or "off by more than 5s"
 *   vV T uaddr2taddr UADDR               -> "maxlen=N buf=HEX"
 *   vV T taddr2uaddr HEX [MAXLEN]        -> "uaddr"
 *   vV T getstat                         -> "ok", then per version
 *                  "  vN info=C0,...,C12 set=N unset=N" followed by its
 *                  "    addr PROG VERS NETID success=N failure=N" and
 *                  "    rmt PROG VERS PROC NETID success= failure= indirect=" rows
 *   vV T callit|bcast PROG VERS PROC [HEX] (procedure 5) -> "uaddr=... res=HEX"
 *   vV T indirect PROG VERS PROC [HEX]     (procedure 10)
 *   lib pmap_set PROG VERS PROT PORT      lib pmap_unset PROG VERS
 *   lib pmap_getport PROG VERS PROT       lib pmap_getmaps
 *   lib rpcb_set PROG VERS NETID UADDR    lib rpcb_unset PROG VERS NETID|-
 *   lib rpcb_getaddr PROG VERS NETID [HOST]
 *   lib rpcb_getmaps NETID [HOST]         lib rpcb_gettime [HOST]
 *   lib rpcb_taddr2uaddr NETID UADDR      lib rpcb_uaddr2taddr NETID UADDR
 *       (libtirpc's own helpers: rpcb_* and pmap_set/pmap_unset try the
 *       local socket first, as v3/v4; pmap_getport asks v2 over UDP and
 *       pmap_getmaps v2 over TCP, both at the -4 host)
 *   lib pmap_rmtcall PROG VERS PROC [HEX]          -> "port=N res=HEX"
 *   lib rpcb_rmtcall NETID PROG VERS PROC [HEX]    -> "uaddr=... res=HEX"
 *   lib rpc_broadcast NETTYPE|- PROG VERS PROC [HEX]
 *       -> "N answers", then one sorted line per distinct answer,
 *          "  NETID UADDR res=HEX" (rpc_broadcast_exp waiting -w ms, then
 *          twice that, as rpcinfo -b does with 4 and 8 seconds)
 *       (libtirpc's remote-call clients, with -w ms as the timeout; HEX
 *       travels as a counted opaque<> whose echo decodes the same way, and
 *       without HEX there are neither arguments nor results)
 *   raw T HEX      send HEX once (on a stream: inside one last-fragment record
 *                  mark) and print "reply HEX" (the record's payload on a
 *                  stream), "noreply" after -w ms, or "closed" (stream EOF
 *                  before any byte; a reply cut short by EOF prints its
 *                  bytes, "<partial>" before an incomplete fragment, then
 *                  " closed"). T defaults to SRC unpriv.
 *   rawrec T HEX   stream only: send HEX as-is, print every byte received up
 *                  to the end of the first complete record, EOF or -w ms.
 *   rawpipe T N HEX
 *                  rawrec for N pipelined calls: read up to the end of the
 *                  N-th complete record (max 64), EOF or -w ms.
 *   flood T COUNT HEX [RATE]
 *                  datagram only: send HEX COUNT times (max 100000) from one
 *                  socket, the xid (first 4 bytes) one higher each time, at
 *                  most RATE a second (default: as fast as possible), then
 *                  count replies until none came for -w ms; prints
 *                  "sent N replies M".
 *   serve udp|udp6 PORT PROG VERS SECONDS
 *                  an echo service on 127.0.0.1:PORT (udp6: the -6 host) for
 *                  CALLIT tests: proc 0 returns nothing, proc 1 returns its
 *                  arguments, proc 2 returns the call's credential (flavour,
 *                  then the body as opaque<>, an AUTH_SYS stamp zeroed since
 *                  it is a time), proc 3 never answers. It prints "serving"
 *                  once bound and exits after SECONDS (max 120).
 *
 * Output: one line per operation, "OP ARG...: RESULT", with lists following
 * on lines indented by two spaces. Strings a call returns are printed in
 * double quotes, other bytes than printable ASCII as \xHH. A failed call prints
 * "error NAME(details)" with the clnt_stat name; a client that could not be
 * created prints "create_error NAME". Exit status: 0, or 2 for a usage error
 * (which stops the run).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>
#include <rpc/pmap_clnt.h>
#include <rpc/pmap_prot.h>
#include <rpc/rpcb_clnt.h>
#include <rpc/rpcb_prot.h>

#define MAXWORDS 16
#define MAXBYTES 65536

static const char *host4 = "127.0.0.1";
static const char *host6 = "::1";
static const char *localpath = "/run/rpcbind.sock";
static const char *src4;
static int call_ms = 3000;
static int wait_ms = 500;
static int use_authsys;

/* ---------- small helpers ---------- */

static void usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "rpcclient: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || *s == '\0')
		usage("not a number: %s", s);
	return v;
}

/* str maps the "-" placeholder to the empty string. */
static char *str(char *s)
{
	return strcmp(s, "-") == 0 ? "" : s;
}

static size_t unhex(const char *s, unsigned char *out, size_t max)
{
	size_t n = 0;

	if (strcmp(s, "-") == 0)
		return 0;
	if (strlen(s) % 2 != 0)
		usage("odd number of hex digits: %s", s);
	for (; s[0] != '\0'; s += 2) {
		unsigned int b;

		if (n >= max || sscanf(s, "%2x", &b) != 1)
			usage("bad hex at %s", s);
		out[n++] = (unsigned char)b;
	}
	return n;
}

static void puthex(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
}

static struct timeval ms2tv(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

static const char *statname(enum clnt_stat st)
{
	switch (st) {
	case RPC_SUCCESS: return "RPC_SUCCESS";
	case RPC_CANTENCODEARGS: return "RPC_CANTENCODEARGS";
	case RPC_CANTDECODERES: return "RPC_CANTDECODERES";
	case RPC_CANTSEND: return "RPC_CANTSEND";
	case RPC_CANTRECV: return "RPC_CANTRECV";
	case RPC_TIMEDOUT: return "RPC_TIMEDOUT";
	case RPC_INTR: return "RPC_INTR";
	case RPC_UDERROR: return "RPC_UDERROR";
	case RPC_VERSMISMATCH: return "RPC_VERSMISMATCH";
	case RPC_AUTHERROR: return "RPC_AUTHERROR";
	case RPC_PROGUNAVAIL: return "RPC_PROGUNAVAIL";
	case RPC_PROGVERSMISMATCH: return "RPC_PROGVERSMISMATCH";
	case RPC_PROCUNAVAIL: return "RPC_PROCUNAVAIL";
	case RPC_CANTDECODEARGS: return "RPC_CANTDECODEARGS";
	case RPC_SYSTEMERROR: return "RPC_SYSTEMERROR";
	case RPC_UNKNOWNHOST: return "RPC_UNKNOWNHOST";
	case RPC_UNKNOWNPROTO: return "RPC_UNKNOWNPROTO";
	case RPC_UNKNOWNADDR: return "RPC_UNKNOWNADDR";
	case RPC_NOBROADCAST: return "RPC_NOBROADCAST";
	case RPC_RPCBFAILURE: return "RPC_RPCBFAILURE";
	case RPC_PROGNOTREGISTERED: return "RPC_PROGNOTREGISTERED";
	case RPC_N2AXLATEFAILURE: return "RPC_N2AXLATEFAILURE";
	case RPC_TLIERROR: return "RPC_TLIERROR";
	case RPC_FAILED: return "RPC_FAILED";
	default: return "RPC_UNKNOWN_STAT";
	}
}

static const char *authname(enum auth_stat a)
{
	switch (a) {
	case AUTH_OK: return "AUTH_OK";
	case AUTH_BADCRED: return "AUTH_BADCRED";
	case AUTH_REJECTEDCRED: return "AUTH_REJECTEDCRED";
	case AUTH_BADVERF: return "AUTH_BADVERF";
	case AUTH_REJECTEDVERF: return "AUTH_REJECTEDVERF";
	case AUTH_TOOWEAK: return "AUTH_TOOWEAK";
	case AUTH_INVALIDRESP: return "AUTH_INVALIDRESP";
	case AUTH_FAILED: return "AUTH_FAILED";
	default: return "AUTH_OTHER";
	}
}

/* printerr prints the outcome of a failed call with the details that the
 * server chose (version ranges, auth_stat) and the local errno, which are
 * deterministic for a given daemon. */
static void printerr(enum clnt_stat st, struct rpc_err *e)
{
	printf("error %s", statname(st));
	switch (st) {
	case RPC_VERSMISMATCH:
	case RPC_PROGVERSMISMATCH:
		printf("(low=%lu high=%lu)", (unsigned long)e->re_vers.low,
		       (unsigned long)e->re_vers.high);
		break;
	case RPC_AUTHERROR:
		printf("(%s)", authname(e->re_why));
		break;
	case RPC_CANTSEND:
	case RPC_CANTRECV:
	case RPC_SYSTEMERROR:
		printf("(%s)", strerror(e->re_errno));
		break;
	default:
		break;
	}
	printf("\n");
}

static void callerr(CLIENT *cl, enum clnt_stat st)
{
	struct rpc_err e;

	memset(&e, 0, sizeof e);
	clnt_geterr(cl, &e);
	printerr(st, &e);
}

static void createerr(void)
{
	printf("create_error %s", statname(rpc_createerr.cf_stat));
	if (rpc_createerr.cf_stat == RPC_SYSTEMERROR)
		printf("(%s)", strerror(rpc_createerr.cf_error.re_errno));
	else if (rpc_createerr.cf_stat == RPC_PMAPFAILURE ||
		 rpc_createerr.cf_stat == RPC_RPCBFAILURE)
		printf("(%s)", statname(rpc_createerr.cf_error.re_status));
	printf("\n");
}

/* printstr prints an XDR string quoted, so that empty strings stay visible,
 * with control bytes, bytes above 0x7e, quotes and backslashes as \xHH so
 * that a string made of address bytes stays on one readable line. */
static void printstr(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s == NULL ? "" : s);

	putchar('"');
	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* ---------- XDR for the parts libtirpc has no usable routine for ---------- */

/* Opaque bytes that travel as a counted opaque<> (call arguments/results). */
struct blob {
	u_int len;
	char *buf;
};

/* Remote call arguments and results are encoded by hand so that arbitrary
 * argument bytes can be forwarded and the reply bytes printed verbatim. */
struct rmtargs {
	u_int prog, vers, proc;
	struct blob args;
};

struct rmtres2 {
	u_int port;
	struct blob res;
};

struct rmtres3 {
	char *addr;
	struct blob res;
};

struct nbuf {
	u_int maxlen;
	struct blob buf;
};

static bool_t xdr_blob(XDR *x, struct blob *b)
{
	return xdr_bytes(x, &b->buf, &b->len, MAXBYTES);
}

static bool_t xdr_rmtargs(XDR *x, struct rmtargs *a)
{
	return xdr_u_int(x, &a->prog) && xdr_u_int(x, &a->vers) &&
	       xdr_u_int(x, &a->proc) && xdr_blob(x, &a->args);
}

static bool_t xdr_rmtres2(XDR *x, struct rmtres2 *r)
{
	return xdr_u_int(x, &r->port) && xdr_blob(x, &r->res);
}

static bool_t xdr_rmtres3(XDR *x, struct rmtres3 *r)
{
	return xdr_string(x, &r->addr, MAXBYTES) && xdr_blob(x, &r->res);
}

static bool_t xdr_nbuf(XDR *x, struct nbuf *n)
{
	return xdr_u_int(x, &n->maxlen) && xdr_blob(x, &n->buf);
}

/* ---------- transports ---------- */

enum src { SRC_DEFAULT, SRC_PRIV, SRC_UNPRIV };

struct transport {
	char netid[16];
	enum src src;
	int v6;
	int stream;
	int local;
};

static struct transport parse_transport(const char *spec, enum src dflt)
{
	struct transport t;
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

	memset(&t, 0, sizeof t);
	if (n == 0 || n >= sizeof t.netid)
		usage("bad transport %s", spec);
	memcpy(t.netid, spec, n);
	t.src = dflt;
	if (colon != NULL) {
		if (strcmp(colon + 1, "priv") == 0)
			t.src = SRC_PRIV;
		else if (strcmp(colon + 1, "unpriv") == 0)
			t.src = SRC_UNPRIV;
		else
			usage("bad source port mode %s", colon + 1);
	}
	if (strcmp(t.netid, "udp") == 0) {
	} else if (strcmp(t.netid, "tcp") == 0) {
		t.stream = 1;
	} else if (strcmp(t.netid, "udp6") == 0) {
		t.v6 = 1;
	} else if (strcmp(t.netid, "tcp6") == 0) {
		t.v6 = t.stream = 1;
	} else if (strcmp(t.netid, "local") == 0 || strcmp(t.netid, "unix") == 0) {
		t.local = t.stream = 1;
	} else {
		usage("unknown netid %s", t.netid);
	}
	return t;
}

/* opensock creates a socket to port 111 of the target with the requested
 * source port and fills addr with the server's address. Streams are
 * connected. Returns -1 and sets errno on failure. */
static int opensock(const struct transport *t, struct sockaddr_storage *addr,
		    socklen_t *alen)
{
	int fd, saved;

	memset(addr, 0, sizeof *addr);
	if (t->local) {
		struct sockaddr_un *sun = (struct sockaddr_un *)addr;

		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof sun->sun_path, "%s", localpath);
		*alen = sizeof *sun;
		if (localpath[0] == '@') {
			/* An abstract name: a NUL, then the name, and a length
			 * that ends with it (libtirpc's SUN_LEN_A). libtirpc
			 * 1.3.3 does not try these itself. */
			sun->sun_path[0] = '\0';
			*alen = offsetof(struct sockaddr_un, sun_path) + strlen(localpath);
		}
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
	} else {
		int family = t->v6 ? AF_INET6 : AF_INET;
		const char *host = t->v6 ? host6 : host4;

		if (t->v6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)addr;

			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(111);
			if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
				errno = EINVAL;
				return -1;
			}
			*alen = sizeof *s6;
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)addr;

			s4->sin_family = AF_INET;
			s4->sin_port = htons(111);
			if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
				errno = EINVAL;
				return -1;
			}
			*alen = sizeof *s4;
		}
		fd = socket(family, t->stream ? SOCK_STREAM : SOCK_DGRAM, 0);
		if (fd >= 0) {
			struct sockaddr_storage any;

			memset(&any, 0, sizeof any);
			any.ss_family = family;
			if (src4 != NULL && !t->v6 &&
			    inet_pton(AF_INET, src4,
				      &((struct sockaddr_in *)&any)->sin_addr) != 1) {
				errno = EINVAL;
				goto fail;
			}
			/* Port 0 lets the kernel pick an ephemeral port,
			 * which is never below 1024. */
			if (t->src == SRC_PRIV) {
				if (bindresvport_sa(fd, (struct sockaddr *)&any) < 0)
					goto fail;
			} else if (bind(fd, (struct sockaddr *)&any, *alen) < 0) {
				goto fail;
			}
		}
	}
	if (fd < 0)
		return -1;
	if (t->stream && connect(fd, (struct sockaddr *)addr, *alen) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static CLIENT *mkclient(const struct transport *t, rpcvers_t vers)
{
	struct sockaddr_storage addr;
	socklen_t alen;
	struct netbuf nb;
	struct netconfig *nc;
	CLIENT *cl;
	int fd;

	if (!t->local && t->src == SRC_DEFAULT && !t->v6) {
		struct timeval tv = ms2tv(call_ms);

		cl = clnt_create_timed(host4, PMAPPROG, vers, t->netid, &tv);
	} else if (!t->local && t->src == SRC_DEFAULT) {
		/* "udp6" and "tcp6" are netids, not nettypes: clnt_create
		 * rejects them, so go through their netconfig entries. */
		struct timeval tv = ms2tv(call_ms);

		nc = getnetconfigent(t->netid);
		if (nc == NULL) {
			rpc_createerr.cf_stat = RPC_UNKNOWNPROTO;
			return NULL;
		}
		cl = clnt_tp_create_timed(host6, PMAPPROG, vers, nc, &tv);
		freenetconfigent(nc);
	} else {
		fd = opensock(t, &addr, &alen);
		if (fd < 0) {
			rpc_createerr.cf_stat = RPC_SYSTEMERROR;
			rpc_createerr.cf_error.re_errno = errno;
			return NULL;
		}
		nb.buf = &addr;
		nb.len = nb.maxlen = alen;
		if (t->local) {
			cl = clnt_vc_create(fd, &nb, PMAPPROG, vers, 0, 0);
		} else {
			nc = getnetconfigent(t->netid);
			if (nc == NULL) {
				close(fd);
				rpc_createerr.cf_stat = RPC_UNKNOWNPROTO;
				return NULL;
			}
			cl = clnt_tli_create(fd, nc, &nb, PMAPPROG, vers, 0, 0);
			freenetconfigent(nc);
		}
		if (cl == NULL) {
			close(fd);
			return NULL;
		}
		clnt_control(cl, CLSET_FD_CLOSE, NULL);
	}
	if (cl != NULL && use_authsys) {
		auth_destroy(cl->cl_auth);
		cl->cl_auth = authunix_create_default();
	}
	return cl;
}

/* ---------- PMAP v2 and RPCBIND v3/v4 over a CLIENT ---------- */

/* call runs one procedure and prints the error line itself on failure. */
static int call(CLIENT *cl, rpcproc_t proc, xdrproc_t xa, void *a, xdrproc_t xr,
		void *r, int ms)
{
	enum clnt_stat st = clnt_call(cl, proc, xa, a, xr, r, ms2tv(ms));

	if (st != RPC_SUCCESS) {
		callerr(cl, st);
		return 0;
	}
	return 1;
}

static void do_v2(CLIENT *cl, char **w, int n)
{
	const char *op = w[0];
	bool_t ok = 0;

	if (strcmp(op, "null") == 0 && n == 1) {
		if (call(cl, NULLPROC, (xdrproc_t)xdr_void, NULL,
			 (xdrproc_t)xdr_void, NULL, call_ms))
			printf("ok\n");
	} else if ((strcmp(op, "set") == 0 && n == 5) ||
		   (strcmp(op, "unset") == 0 && (n == 3 || n == 5))) {
		struct pmap pm;

		pm.pm_prog = num(w[1]);
		pm.pm_vers = num(w[2]);
		pm.pm_prot = n == 5 ? num(w[3]) : 0;
		pm.pm_port = n == 5 ? num(w[4]) : 0;
		if (call(cl, op[0] == 's' ? PMAPPROC_SET : PMAPPROC_UNSET,
			 (xdrproc_t)xdr_pmap, &pm, (xdrproc_t)xdr_bool, &ok,
			 call_ms))
			printf("%s\n", ok ? "true" : "false");
	} else if (strcmp(op, "getport") == 0 && n == 4) {
		struct pmap pm;
		u_int port = 0;

		pm.pm_prog = num(w[1]);
		pm.pm_vers = num(w[2]);
		pm.pm_prot = num(w[3]);
		pm.pm_port = 0;
		if (call(cl, PMAPPROC_GETPORT, (xdrproc_t)xdr_pmap, &pm,
			 (xdrproc_t)xdr_u_int, &port, call_ms))
			printf("%u\n", port);
	} else if (strcmp(op, "dump") == 0 && n == 1) {
		struct pmaplist *head = NULL, *p;
		int rows = 0;

		if (!call(cl, PMAPPROC_DUMP, (xdrproc_t)xdr_void, NULL,
			  (xdrproc_t)xdr_pmaplist, &head, call_ms))
			return;
		for (p = head; p != NULL; p = p->pml_next)
			rows++;
		printf("%d rows\n", rows);
		for (p = head; p != NULL; p = p->pml_next)
			printf("  %lu %lu %lu %lu\n", p->pml_map.pm_prog,
			       p->pml_map.pm_vers, p->pml_map.pm_prot,
			       p->pml_map.pm_port);
		clnt_freeres(cl, (xdrproc_t)xdr_pmaplist, (char *)&head);
	} else if (strcmp(op, "callit") == 0 && (n == 4 || n == 5)) {
		static unsigned char args[MAXBYTES];
		struct rmtargs a;
		struct rmtres2 r;

		a.prog = num(w[1]);
		a.vers = num(w[2]);
		a.proc = num(w[3]);
		a.args.len = n == 5 ? unhex(w[4], args, sizeof args) : 0;
		a.args.buf = (char *)args;
		memset(&r, 0, sizeof r);
		if (!call(cl, PMAPPROC_CALLIT, (xdrproc_t)xdr_rmtargs, &a,
			  (xdrproc_t)xdr_rmtres2, &r, wait_ms))
			return;
		printf("port=%u res=", r.port);
		puthex((unsigned char *)r.res.buf, r.res.len);
		printf("\n");
		clnt_freeres(cl, (xdrproc_t)xdr_rmtres2, (char *)&r);
	} else {
		usage("bad v2 operation %s with %d words", op, n);
	}
}

static void print_stat(int vers, rpcb_stat *s)
{
	rpcbs_addrlist *a;
	rpcbs_rmtcalllist *r;
	int i;

	printf("  v%d info=", vers);
	for (i = 0; i < RPCBSTAT_HIGHPROC; i++)
		printf("%s%d", i ? "," : "", s->info[i]);
	printf(" set=%d unset=%d\n", s->setinfo, s->unsetinfo);
	for (a = s->addrinfo; a != NULL; a = a->next)
		printf("    addr %lu %lu %s success=%d failure=%d\n",
		       (unsigned long)a->prog, (unsigned long)a->vers,
		       a->netid, a->success, a->failure);
	for (r = s->rmtinfo; r != NULL; r = r->next)
		printf("    rmt %lu %lu %lu %s success=%d failure=%d indirect=%d\n",
		       (unsigned long)r->prog, (unsigned long)r->vers,
		       (unsigned long)r->proc, r->netid, r->success,
		       r->failure, r->indirect);
}

/* within5s reports whether a server's clock agrees with ours; the value
 * itself differs from run to run and is never printed. */
static const char *within5s(time_t t)
{
	time_t now = time(NULL);

	return (t > now - 5 && t < now + 5) ? "within 5s" : "off by more than 5s";
}

static void do_v34(CLIENT *cl, const struct transport *t, char **w, int n)
{
	const char *op = w[0];

	if (strcmp(op, "null") == 0 && n == 1) {
		if (call(cl, NULLPROC, (xdrproc_t)xdr_void, NULL,
			 (xdrproc_t)xdr_void, NULL, call_ms))
			printf("ok\n");
	} else if ((strcmp(op, "set") == 0 && (n == 5 || n == 6)) ||
		   (strcmp(op, "unset") == 0 && n >= 4 && n <= 6)) {
		RPCB r;
		bool_t ok = 0;

		r.r_prog = num(w[1]);
		r.r_vers = num(w[2]);
		r.r_netid = str(w[3]);
		r.r_addr = n >= 5 ? str(w[4]) : "";
		r.r_owner = n >= 6 ? str(w[5]) : "";
		if (call(cl, op[0] == 's' ? RPCBPROC_SET : RPCBPROC_UNSET,
			 (xdrproc_t)xdr_rpcb, &r, (xdrproc_t)xdr_bool, &ok,
			 call_ms))
			printf("%s\n", ok ? "true" : "false");
	} else if ((strcmp(op, "getaddr") == 0 && n >= 3 && n <= 6) ||
		   (strcmp(op, "getversaddr") == 0 && (n == 3 || n == 4))) {
		RPCB r;
		char *res = NULL;

		r.r_prog = num(w[1]);
		r.r_vers = num(w[2]);
		r.r_netid = n >= 4 ? str(w[3]) : (char *)t->netid;
		r.r_addr = n >= 5 ? str(w[4]) : "";
		r.r_owner = n >= 6 ? str(w[5]) : "";
		if (!call(cl, op[3] == 'v' ? RPCBPROC_GETVERSADDR : RPCBPROC_GETADDR,
			  (xdrproc_t)xdr_rpcb, &r, (xdrproc_t)xdr_wrapstring,
			  &res, call_ms))
			return;
		printstr(res);
		printf("\n");
		clnt_freeres(cl, (xdrproc_t)xdr_wrapstring, (char *)&res);
	} else if (strcmp(op, "getaddrlist") == 0 && (n == 3 || n == 4)) {
		RPCB r;
		rpcb_entry_list_ptr head = NULL, p;
		int rows = 0;

		r.r_prog = num(w[1]);
		r.r_vers = num(w[2]);
		r.r_netid = n >= 4 ? str(w[3]) : (char *)t->netid;
		r.r_addr = "";
		r.r_owner = "";
		if (!call(cl, RPCBPROC_GETADDRLIST, (xdrproc_t)xdr_rpcb, &r,
			  (xdrproc_t)xdr_rpcb_entry_list_ptr, &head, call_ms))
			return;
		for (p = head; p != NULL; p = p->rpcb_entry_next)
			rows++;
		printf("%d rows\n", rows);
		for (p = head; p != NULL; p = p->rpcb_entry_next) {
			rpcb_entry *e = &p->rpcb_entry_map;

			printf("  %s %s %u %s %s\n", e->r_maddr, e->r_nc_netid,
			       e->r_nc_semantics, e->r_nc_protofmly,
			       e->r_nc_proto);
		}
		clnt_freeres(cl, (xdrproc_t)xdr_rpcb_entry_list_ptr, (char *)&head);
	} else if (strcmp(op, "dump") == 0 && n == 1) {
		rpcblist_ptr head = NULL, p;
		int rows = 0;

		if (!call(cl, RPCBPROC_DUMP, (xdrproc_t)xdr_void, NULL,
			  (xdrproc_t)xdr_rpcblist_ptr, &head, call_ms))
			return;
		for (p = head; p != NULL; p = p->rpcb_next)
			rows++;
		printf("%d rows\n", rows);
		for (p = head; p != NULL; p = p->rpcb_next) {
			RPCB *m = &p->rpcb_map;

			printf("  %lu %lu %s %s %s\n", (unsigned long)m->r_prog,
			       (unsigned long)m->r_vers, m->r_netid, m->r_addr,
			       m->r_owner);
		}
		clnt_freeres(cl, (xdrproc_t)xdr_rpcblist_ptr, (char *)&head);
	} else if (strcmp(op, "gettime") == 0 && n == 1) {
		u_int secs = 0;

		if (call(cl, RPCBPROC_GETTIME, (xdrproc_t)xdr_void, NULL,
			 (xdrproc_t)xdr_u_int, &secs, call_ms))
			printf("%s\n", within5s((time_t)secs));
	} else if (strcmp(op, "uaddr2taddr") == 0 && n == 2) {
		char *uaddr = str(w[1]);
		struct nbuf nb;

		memset(&nb, 0, sizeof nb);
		if (!call(cl, RPCBPROC_UADDR2TADDR, (xdrproc_t)xdr_wrapstring,
			  &uaddr, (xdrproc_t)xdr_nbuf, &nb, call_ms))
			return;
		printf("maxlen=%u buf=", nb.maxlen);
		puthex((unsigned char *)nb.buf.buf, nb.buf.len);
		printf("\n");
		clnt_freeres(cl, (xdrproc_t)xdr_nbuf, (char *)&nb);
	} else if (strcmp(op, "taddr2uaddr") == 0 && (n == 2 || n == 3)) {
		static unsigned char bytes[MAXBYTES];
		struct nbuf nb;
		char *res = NULL;

		nb.buf.len = unhex(w[1], bytes, sizeof bytes);
		nb.buf.buf = (char *)bytes;
		nb.maxlen = n == 3 ? num(w[2]) : nb.buf.len;
		if (!call(cl, RPCBPROC_TADDR2UADDR, (xdrproc_t)xdr_nbuf, &nb,
			  (xdrproc_t)xdr_wrapstring, &res, call_ms))
			return;
		printstr(res);
		printf("\n");
		clnt_freeres(cl, (xdrproc_t)xdr_wrapstring, (char *)&res);
	} else if (strcmp(op, "getstat") == 0 && n == 1) {
		rpcb_stat_byvers st;
		int i;

		memset(&st, 0, sizeof st);
		if (!call(cl, RPCBPROC_GETSTAT, (xdrproc_t)xdr_void, NULL,
			  (xdrproc_t)xdr_rpcb_stat_byvers, st, call_ms))
			return;
		printf("ok\n");
		for (i = 0; i < RPCBVERS_STAT; i++)
			print_stat(i + 2, &st[i]);
		clnt_freeres(cl, (xdrproc_t)xdr_rpcb_stat_byvers, (char *)st);
	} else if ((strcmp(op, "callit") == 0 || strcmp(op, "bcast") == 0 ||
		    strcmp(op, "indirect") == 0) && (n == 4 || n == 5)) {
		static unsigned char args[MAXBYTES];
		struct rmtargs a;
		struct rmtres3 r;

		a.prog = num(w[1]);
		a.vers = num(w[2]);
		a.proc = num(w[3]);
		a.args.len = n == 5 ? unhex(w[4], args, sizeof args) : 0;
		a.args.buf = (char *)args;
		memset(&r, 0, sizeof r);
		if (!call(cl, op[0] == 'i' ? RPCBPROC_INDIRECT : RPCBPROC_CALLIT,
			  (xdrproc_t)xdr_rmtargs, &a, (xdrproc_t)xdr_rmtres3,
			  &r, wait_ms))
			return;
		printf("uaddr=");
		printstr(r.addr);
		printf(" res=");
		puthex((unsigned char *)r.res.buf, r.res.len);
		printf("\n");
		clnt_freeres(cl, (xdrproc_t)xdr_rmtres3, (char *)&r);
	} else {
		usage("bad v3/v4 operation %s with %d words", op, n);
	}
}

/* ---------- libtirpc convenience functions ---------- */

static struct netconfig *netconf(const char *netid)
{
	struct netconfig *nc = getnetconfigent(netid);

	if (nc == NULL)
		usage("no netconfig for %s", netid);
	return nc;
}

static const char *libhost(struct netconfig *nc, char **w, int n, int i)
{
	if (n > i)
		return w[i];
	return strcmp(nc->nc_protofmly, NC_INET6) == 0 ? host6 : host4;
}

static void libfail(void)
{
	if (rpc_createerr.cf_stat != RPC_SUCCESS)
		printf(" (%s)", statname(rpc_createerr.cf_stat));
	printf("\n");
}

/* blobproc is how remote-call arguments and results travel: a counted
 * opaque<> when the operation has HEX, nothing otherwise. */
static xdrproc_t blobproc(int has)
{
	return has ? (xdrproc_t)xdr_blob : (xdrproc_t)xdr_void;
}

/* rpc_broadcast answers, one "NETID UADDR res=HEX" string per distinct
 * answer: every round of the broadcast, and PMAP v2 and RPCBIND v3 alike,
 * bring the same answer again. */
#define MAXANSWERS 256
static char *answers[MAXANSWERS];
static int nanswers;
static int bcast_has_results;

static bool_t eachanswer(caddr_t res, struct netbuf *who, struct netconfig *nc)
{
	struct blob *r = (struct blob *)res;
	char *u = who != NULL ? taddr2uaddr(nc, who) : NULL;
	char *line;
	size_t len, i;
	int k;

	len = strlen(nc->nc_netid) + (u ? strlen(u) : 1) + 2 * MAXBYTES + 16;
	line = malloc(len);
	if (line == NULL)
		return FALSE;
	k = snprintf(line, len, "%s %s res=", nc->nc_netid, u ? u : "-");
	if (bcast_has_results)
		for (i = 0; i < r->len && (size_t)k + 3 < len; i++)
			k += snprintf(line + k, len - k, "%02x",
				      (unsigned char)r->buf[i]);
	free(u);
	for (k = 0; k < nanswers; k++)
		if (strcmp(answers[k], line) == 0) {
			free(line);
			return FALSE;
		}
	if (nanswers < MAXANSWERS)
		answers[nanswers++] = line;
	else
		free(line);
	return FALSE;	/* keep listening until the broadcast times out */
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void do_lib(char **w, int n)
{
	const char *op = w[0];

	/* libtirpc reports failures through rpc_createerr and never clears it. */
	memset(&rpc_createerr, 0, sizeof rpc_createerr);
	if (strcmp(op, "pmap_set") == 0 && n == 5) {
		printf("%s\n", pmap_set(num(w[1]), num(w[2]), num(w[3]),
					num(w[4])) ? "true" : "false");
	} else if (strcmp(op, "pmap_unset") == 0 && n == 3) {
		printf("%s\n", pmap_unset(num(w[1]), num(w[2])) ? "true" : "false");
	} else if (strcmp(op, "pmap_getport") == 0 && n == 4) {
		struct sockaddr_in sin;
		u_short port;

		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		inet_pton(AF_INET, host4, &sin.sin_addr);
		port = pmap_getport(&sin, num(w[1]), num(w[2]), num(w[3]));
		printf("%u", port);
		if (port == 0)
			libfail();
		else
			printf("\n");
	} else if (strcmp(op, "pmap_getmaps") == 0 && n == 1) {
		struct sockaddr_in sin;
		struct pmaplist *head, *p;
		int rows = 0;

		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		inet_pton(AF_INET, host4, &sin.sin_addr);
		head = pmap_getmaps(&sin);
		for (p = head; p != NULL; p = p->pml_next)
			rows++;
		printf("%d rows", rows);
		if (head == NULL)
			libfail();
		else
			printf("\n");
		for (p = head; p != NULL; p = p->pml_next)
			printf("  %lu %lu %lu %lu\n", p->pml_map.pm_prog,
			       p->pml_map.pm_vers, p->pml_map.pm_prot,
			       p->pml_map.pm_port);
	} else if (strcmp(op, "rpcb_set") == 0 && n == 5) {
		struct netconfig *nc = netconf(w[3]);
		struct netbuf *nb = uaddr2taddr(nc, w[4]);

		if (nb == NULL)
			usage("cannot convert %s for %s", w[4], w[3]);
		if (rpcb_set(num(w[1]), num(w[2]), nc, nb))
			printf("true\n");
		else {
			printf("false");
			libfail();
		}
		freenetconfigent(nc);
	} else if (strcmp(op, "rpcb_unset") == 0 && n == 4) {
		struct netconfig *nc = strcmp(w[3], "-") == 0 ? NULL : netconf(w[3]);

		if (rpcb_unset(num(w[1]), num(w[2]), nc))
			printf("true\n");
		else {
			printf("false");
			libfail();
		}
		if (nc != NULL)
			freenetconfigent(nc);
	} else if (strcmp(op, "rpcb_getaddr") == 0 && (n == 4 || n == 5)) {
		struct netconfig *nc = netconf(w[3]);
		struct sockaddr_storage ss;
		struct netbuf nb;

		nb.buf = &ss;
		nb.len = 0;
		nb.maxlen = sizeof ss;
		if (rpcb_getaddr(num(w[1]), num(w[2]), nc, &nb,
				 libhost(nc, w, n, 4))) {
			char *u = taddr2uaddr(nc, &nb);

			printstr(u);
			printf("\n");
			free(u);
		} else {
			printf("false");
			libfail();
		}
		freenetconfigent(nc);
	} else if (strcmp(op, "rpcb_getmaps") == 0 && (n == 2 || n == 3)) {
		struct netconfig *nc = netconf(w[1]);
		rpcblist *head, *p;
		int rows = 0;

		head = rpcb_getmaps(nc, libhost(nc, w, n, 2));
		for (p = head; p != NULL; p = p->rpcb_next)
			rows++;
		printf("%d rows", rows);
		if (head == NULL)
			libfail();
		else
			printf("\n");
		for (p = head; p != NULL; p = p->rpcb_next)
			printf("  %lu %lu %s %s %s\n",
			       (unsigned long)p->rpcb_map.r_prog,
			       (unsigned long)p->rpcb_map.r_vers,
			       p->rpcb_map.r_netid, p->rpcb_map.r_addr,
			       p->rpcb_map.r_owner);
		freenetconfigent(nc);
	} else if (strcmp(op, "rpcb_gettime") == 0 && (n == 1 || n == 2)) {
		time_t t = 0;

		if (rpcb_gettime(n == 2 ? w[1] : host4, &t))
			printf("%s\n", within5s(t));
		else {
			printf("false");
			libfail();
		}
	} else if (strcmp(op, "rpcb_taddr2uaddr") == 0 && n == 3) {
		struct netconfig *nc = netconf(w[1]);
		struct netbuf *nb = uaddr2taddr(nc, w[2]);
		char *u;

		if (nb == NULL)
			usage("cannot convert %s for %s", w[2], w[1]);
		u = rpcb_taddr2uaddr(nc, nb);
		if (u != NULL) {
			printstr(u);
			printf("\n");
		} else {
			printf("null");
			libfail();
		}
		freenetconfigent(nc);
	} else if (strcmp(op, "rpcb_uaddr2taddr") == 0 && n == 3) {
		struct netconfig *nc = netconf(w[1]);
		struct netbuf *nb = rpcb_uaddr2taddr(nc, str(w[2]));

		if (nb != NULL) {
			char *u = nb->len ? taddr2uaddr(nc, nb) : NULL;

			printf("len=%u buf=", nb->len);
			puthex(nb->buf, nb->len);
			printf(" uaddr=");
			printstr(u);
			printf("\n");
			free(u);
		} else {
			printf("null");
			libfail();
		}
		freenetconfigent(nc);
	} else if (strcmp(op, "pmap_rmtcall") == 0 && (n == 4 || n == 5)) {
		static unsigned char args[MAXBYTES];
		struct blob a, r;
		struct sockaddr_in sin;
		u_long port = 0;
		enum clnt_stat st;

		a.len = n == 5 ? unhex(w[4], args, sizeof args) : 0;
		a.buf = (char *)args;
		memset(&r, 0, sizeof r);
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		inet_pton(AF_INET, host4, &sin.sin_addr);
		st = pmap_rmtcall(&sin, num(w[1]), num(w[2]), num(w[3]),
				  blobproc(n == 5), (caddr_t)&a, blobproc(n == 5),
				  (caddr_t)&r, ms2tv(wait_ms), &port);
		if (st != RPC_SUCCESS) {
			printf("error %s\n", statname(st));
			return;
		}
		printf("port=%lu res=", port);
		puthex((unsigned char *)r.buf, r.len);
		printf("\n");
		free(r.buf);
	} else if (strcmp(op, "rpcb_rmtcall") == 0 && (n == 5 || n == 6)) {
		static unsigned char args[MAXBYTES];
		struct netconfig *nc = netconf(w[1]);
		struct sockaddr_storage ss;
		struct netbuf nb;
		struct blob a, r;
		enum clnt_stat st;

		a.len = n == 6 ? unhex(w[5], args, sizeof args) : 0;
		a.buf = (char *)args;
		memset(&r, 0, sizeof r);
		nb.buf = &ss;
		nb.len = 0;
		nb.maxlen = sizeof ss;
		st = rpcb_rmtcall(nc, libhost(nc, w, 0, 1), num(w[2]), num(w[3]),
				  num(w[4]), blobproc(n == 6), (caddr_t)&a,
				  blobproc(n == 6), (caddr_t)&r, ms2tv(wait_ms), &nb);
		if (st != RPC_SUCCESS) {
			printf("error %s\n", statname(st));
		} else {
			char *u = nb.len ? taddr2uaddr(nc, &nb) : NULL;

			printf("uaddr=");
			printstr(u);
			printf(" res=");
			puthex((unsigned char *)r.buf, r.len);
			printf("\n");
			free(u);
			free(r.buf);
		}
		freenetconfigent(nc);
	} else if (strcmp(op, "rpc_broadcast") == 0 && (n == 5 || n == 6)) {
		static unsigned char args[MAXBYTES];
		const char *nettype = strcmp(w[1], "-") == 0 ? NULL : w[1];
		struct blob a, r;
		enum clnt_stat st;
		int i;

		a.len = n == 6 ? unhex(w[5], args, sizeof args) : 0;
		a.buf = (char *)args;
		memset(&r, 0, sizeof r);
		nanswers = 0;
		bcast_has_results = n == 6;
		st = rpc_broadcast_exp(num(w[2]), num(w[3]), num(w[4]),
				       blobproc(n == 6), (caddr_t)&a,
				       blobproc(n == 6), (caddr_t)&r,
				       (resultproc_t)eachanswer, wait_ms,
				       2 * wait_ms, nettype);
		if (st != RPC_SUCCESS && st != RPC_TIMEDOUT) {
			printf("error %s\n", statname(st));
			return;
		}
		qsort(answers, nanswers, sizeof answers[0], cmpstr);
		printf("%d answers\n", nanswers);
		for (i = 0; i < nanswers; i++) {
			printf("  %s\n", answers[i]);
			free(answers[i]);
		}
	} else {
		usage("bad lib operation %s with %d words", op, n);
	}
}

/* ---------- raw bytes ---------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* readsome waits until the deadline (from now_ms) for bytes and returns what
 * one read gives: 0 on timeout, or on EOF with *eof set. */
static ssize_t readsome(int fd, unsigned char *buf, size_t max, long long deadline,
			int *eof)
{
	struct pollfd p;
	long long left = deadline - now_ms();
	ssize_t r;

	*eof = 0;
	if (left <= 0)
		return 0;
	p.fd = fd;
	p.events = POLLIN;
	if (poll(&p, 1, (int)left) <= 0)
		return 0;
	r = read(fd, buf, max);
	if (r <= 0) {
		*eof = 1;
		return 0;
	}
	return r;
}

static void do_raw(char **w, int n, int asis, int records)
{
	static unsigned char out[MAXBYTES + 4], in[4 * MAXBYTES];
	struct transport t;
	struct sockaddr_storage addr;
	socklen_t alen;
	size_t len, got = 0;
	long long deadline;
	int fd, eof = 0;

	if (records > 1) {
		/* rawpipe T N HEX: drop N, read N records. */
		if (n != 4)
			usage("rawpipe needs a transport, a count and hex bytes");
		records = atoi(w[2]);
		if (records < 1 || records > 64)
			usage("rawpipe reads 1 to 64 records");
		w[2] = w[3];
		n = 3;
	}
	if (n != 3)
		usage("raw needs a transport and hex bytes");
	t = parse_transport(w[1], SRC_UNPRIV);
	if (asis && !t.stream)
		usage("rawrec needs a stream transport");
	len = unhex(w[2], out + 4, MAXBYTES);
	fd = opensock(&t, &addr, &alen);
	if (fd < 0) {
		printf("error %s\n", strerror(errno));
		return;
	}
	if (!t.stream) {
		if (sendto(fd, out + 4, len, 0, (struct sockaddr *)&addr, alen) < 0) {
			printf("error %s\n", strerror(errno));
			close(fd);
			return;
		}
	} else {
		unsigned char *p = out + 4;

		if (!asis) {
			uint32_t mark = htonl(0x80000000u | (uint32_t)len);

			memcpy(out, &mark, 4);
			p = out;
			len += 4;
		}
		if (write(fd, p, len) != (ssize_t)len) {
			printf("error %s\n", strerror(errno));
			close(fd);
			return;
		}
	}
	deadline = now_ms() + wait_ms;
	if (!t.stream) {
		got = readsome(fd, in, sizeof in, deadline, &eof);
		if (got == 0)
			printf("noreply\n");
		else {
			printf("reply ");
			puthex(in, got);
			printf("\n");
		}
		close(fd);
		return;
	}
	/* Stream: read until one complete record (its last fragment) has
	 * arrived, the peer closes, or the wait ends. */
	for (;;) {
		size_t off = 0;
		int complete = 0, seen = 0;

		while (off + 4 <= got) {
			uint32_t m;

			memcpy(&m, in + off, 4);
			m = ntohl(m);
			if (off + 4 + (m & 0x7fffffffu) > got)
				break;
			off += 4 + (m & 0x7fffffffu);
			if ((m & 0x80000000u) && ++seen == records) {
				complete = 1;
				break;
			}
		}
		if (complete || got == sizeof in) {
			got = complete ? off : got;
			break;
		}
		{
			ssize_t r = readsome(fd, in + got, sizeof in - got,
					     deadline, &eof);

			if (r == 0)
				break;
			got += r;
		}
	}
	close(fd);
	if (got == 0) {
		printf("%s\n", eof ? "closed" : "noreply");
		return;
	}
	printf("reply ");
	if (asis) {
		puthex(in, got);
	} else {
		/* Strip the record marks: print the record's payload. */
		size_t off = 0;

		while (off + 4 <= got) {
			uint32_t m;
			size_t fl;

			memcpy(&m, in + off, 4);
			fl = ntohl(m) & 0x7fffffffu;
			if (off + 4 + fl > got) {
				printf("<partial>");
				puthex(in + off, got - off);
				break;
			}
			puthex(in + off + 4, fl);
			off += 4 + fl;
		}
	}
	if (eof)
		printf(" closed");
	printf("\n");
}

/* ---------- a tiny echo service, the target of remote calls ---------- */

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static void do_serve(char **w, int n)
{
	static unsigned char in[MAXBYTES], out[MAXBYTES + 64];
	struct sockaddr_storage ss, from;
	socklen_t sslen;
	uint32_t prog, vers;
	long long deadline;
	int fd, secs, v6;

	if (n != 6 || (strcmp(w[1], "udp") != 0 && strcmp(w[1], "udp6") != 0))
		usage("serve udp|udp6 PORT PROG VERS SECONDS");
	v6 = strcmp(w[1], "udp6") == 0;
	prog = num(w[3]);
	vers = num(w[4]);
	secs = num(w[5]);
	if (secs > 120)
		secs = 120;
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	memset(&ss, 0, sizeof ss);
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(num(w[2]));
		inet_pton(AF_INET6, host6, &s6->sin6_addr);
		sslen = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(num(w[2]));
		inet_pton(AF_INET, host4, &s4->sin_addr);
		sslen = sizeof *s4;
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
		printf("error %s\n", strerror(errno));
		exit(1);
	}
	printf("serving\n");
	fflush(stdout);
	deadline = now_ms() + secs * 1000LL;
	while (now_ms() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		socklen_t fl = sizeof from;
		ssize_t r;
		size_t off, o;
		uint32_t credlen;

		if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		r = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
		/* xid, CALL, rpcvers, prog, vers, proc, cred, verf */
		if (r < 40 || get32(in + 4) != 0 || get32(in + 8) != 2)
			continue;
		off = 24;
		credlen = get32(in + off + 4);
		if (credlen > 400 || off + 8 + credlen + 8 > (size_t)r)
			continue;
		off += 8 + ((credlen + 3) & ~3u);	/* cred */
		if (off + 8 > (size_t)r)
			continue;
		off += 8 + ((get32(in + off + 4) + 3) & ~3u);	/* verf */
		if (off > (size_t)r)
			continue;
		memcpy(out, in, 4);
		put32(out + 4, 1);	/* REPLY */
		put32(out + 8, 0);	/* MSG_ACCEPTED */
		put32(out + 12, 0);	/* AUTH_NONE verifier */
		put32(out + 16, 0);
		o = 24;
		if (get32(in + 12) != prog) {
			put32(out + 20, 1);	/* PROG_UNAVAIL */
		} else if (get32(in + 16) != vers) {
			put32(out + 20, 2);	/* PROG_MISMATCH */
			put32(out + 24, vers);
			put32(out + 28, vers);
			o = 32;
		} else if (get32(in + 20) == 0) {
			put32(out + 20, 0);
		} else if (get32(in + 20) == 1) {
			put32(out + 20, 0);	/* echo the arguments */
			memcpy(out + 24, in + off, r - off);
			o = 24 + (r - off);
		} else if (get32(in + 20) == 2) {
			put32(out + 20, 0);	/* the credential */
			memcpy(out + 24, in + 24, 8 + ((credlen + 3) & ~3u));
			if (get32(in + 24) == AUTH_SYS && credlen >= 4)
				put32(out + 32, 0);	/* the stamp */
			o = 24 + 8 + ((credlen + 3) & ~3u);
		} else if (get32(in + 20) == 3) {
			continue;	/* a service that never answers */
		} else {
			put32(out + 20, 3);	/* PROC_UNAVAIL */
		}
		sendto(fd, out, o, 0, (struct sockaddr *)&from, fl);
	}
	close(fd);
	exit(0);
}

/* do_flood sends one datagram COUNT times, each with the next xid, then
 * counts the replies. */
static void do_flood(char **w, int n)
{
	static unsigned char out[MAXBYTES], in[MAXBYTES];
	struct transport t;
	struct sockaddr_storage addr;
	socklen_t alen;
	unsigned long count, i, rate = 0, replies = 0, sent = 0;
	long long start;
	size_t len;
	uint32_t xid;
	int fd, eof;

	if (n != 4 && n != 5)
		usage("flood needs a transport, a count, hex bytes and maybe a rate");
	if (n == 5)
		rate = num(w[4]);
	t = parse_transport(w[1], SRC_UNPRIV);
	if (t.stream)
		usage("flood needs a datagram transport");
	count = num(w[2]);
	if (count > 100000)
		usage("flood: at most 100000 datagrams");
	len = unhex(w[3], out, sizeof out);
	if (len < 4)
		usage("flood: the message needs an xid");
	fd = opensock(&t, &addr, &alen);
	if (fd < 0) {
		printf("error %s\n", strerror(errno));
		return;
	}
	xid = get32(out);
	start = now_ms();
	for (i = 0; i < count; i++) {
		if (rate > 0) {
			long long due = start + (long long)(i * 1000 / rate);

			if (due > now_ms())
				poll(NULL, 0, (int)(due - now_ms()));
		}
		put32(out, xid + (uint32_t)i);
		if (sendto(fd, out, len, 0, (struct sockaddr *)&addr, alen) == (ssize_t)len)
			sent++;
		/* Drain replies as they come so that the socket's buffer
		 * never drops any. */
		while (recv(fd, in, sizeof in, MSG_DONTWAIT) > 0)
			replies++;
	}
	while (readsome(fd, in, sizeof in, now_ms() + wait_ms, &eof) > 0)
		replies++;
	close(fd);
	printf("sent %lu replies %lu\n", sent, replies);
}

/* ---------- main ---------- */

static void run(char *line)
{
	char *w[MAXWORDS], *save = NULL, *tok;
	char copy[4 * MAXBYTES];
	int n = 0;

	snprintf(copy, sizeof copy, "%s", line);
	for (tok = strtok_r(copy, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (n == MAXWORDS)
			usage("too many words in %s", line);
		w[n++] = tok;
	}
	if (n == 0)
		usage("empty operation");
	if (strcmp(w[0], "serve") == 0)
		do_serve(w, n);	/* does not return */

	/* Echo the operation, normalised to single spaces. */
	{
		int i;

		for (i = 0; i < n; i++)
			printf("%s%s", i ? " " : "", w[i]);
		printf(": ");
	}

	if (strcmp(w[0], "lib") == 0 && n >= 2) {
		do_lib(w + 1, n - 1);
	} else if (strcmp(w[0], "raw") == 0 || strcmp(w[0], "rawrec") == 0) {
		do_raw(w, n, w[0][3] == 'r', 1);
	} else if (strcmp(w[0], "rawpipe") == 0) {
		do_raw(w, n, 1, 2);
	} else if (strcmp(w[0], "flood") == 0) {
		do_flood(w, n);
	} else if ((strcmp(w[0], "v2") == 0 || strcmp(w[0], "v3") == 0 ||
		    strcmp(w[0], "v4") == 0) && n >= 3) {
		struct transport t = parse_transport(w[1], SRC_DEFAULT);
		int vers = w[0][1] - '0';
		CLIENT *cl = mkclient(&t, vers);

		if (cl == NULL) {
			createerr();
		} else {
			if (vers == 2)
				do_v2(cl, w + 2, n - 2);
			else
				do_v34(cl, &t, w + 2, n - 2);
			clnt_destroy(cl);
		}
	} else {
		usage("unknown operation %s", line);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "+4:6:S:L:t:w:u:a")) != -1) {
		switch (c) {
		case 'S': src4 = optarg; break;
		case '4': host4 = optarg; break;
		case '6': host6 = optarg; break;
		case 'L': localpath = optarg; break;
		case 't': call_ms = num(optarg); break;
		case 'w': wait_ms = num(optarg); break;
		case 'a': use_authsys = 1; break;
		case 'u': {
			char *colon = strchr(optarg, ':');
			gid_t gid;
			uid_t uid;

			if (colon != NULL)
				*colon = '\0';
			uid = num(optarg);
			gid = colon ? num(colon + 1) : uid;
			if (setgroups(0, NULL) < 0 || setgid(gid) < 0 ||
			    setuid(uid) < 0) {
				fprintf(stderr, "rpcclient: cannot become %u: %s\n",
					(unsigned)uid, strerror(errno));
				return 2;
			}
			break;
		}
		default:
			usage("bad option");
		}
	}
	if (optind >= argc)
		usage("no operations (see the comment at the top of rpcclient.c)");
	for (; optind < argc; optind++)
		run(argv[optind]);
	return 0;
}
