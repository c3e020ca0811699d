/*
 * rpcbreg: register or unregister mappings with the running rpcbind through
 * libtirpc, the way real RPC services do. rpcinfo can only unset, so the
 * warm-start tests in internal/state use this to fill rpcbind's table
 * before making it dump its warm-start files.
 *
 * Usage, one operation per argument group:
 *   rpcbreg set   PROG VERS NETID UADDR   (rpcb_set: RPCBIND v3 SET)
 *   rpcbreg unset PROG VERS NETID         (rpcb_unset)
 *   rpcbreg pset  PROG VERS PROT PORT     (pmap_set: PMAP v2 SET, PROT 6 or 17)
 *   rpcbreg uid   UID                     (become UID: later rows get its owner)
 * Several groups may follow each other. Exit status 1 on the first refusal.
 *
 * Build: gcc -I/usr/include/tirpc -o rpcbreg rpcbreg.c -ltirpc
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rpc/rpc.h>
#include <rpc/pmap_clnt.h>
#include <unistd.h>

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "rpcbreg: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

static struct netconfig *netid(const char *id)
{
	struct netconfig *nc = getnetconfigent(id);

	if (nc == NULL) {
		fprintf(stderr, "rpcbreg: unknown netid %s\n", id);
		exit(2);
	}
	return nc;
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc) {
		const char *op = argv[i];
		bool_t ok;

		if (strcmp(op, "set") == 0 && i + 4 < argc) {
			struct netconfig *nc = netid(argv[i + 3]);
			struct netbuf *nb = uaddr2taddr(nc, argv[i + 4]);

			if (nb == NULL) {
				fprintf(stderr, "rpcbreg: bad address %s for %s\n",
				    argv[i + 4], argv[i + 3]);
				return 2;
			}
			ok = rpcb_set(num(argv[i + 1]), num(argv[i + 2]), nc, nb);
			i += 5;
		} else if (strcmp(op, "unset") == 0 && i + 3 < argc) {
			ok = rpcb_unset(num(argv[i + 1]), num(argv[i + 2]),
			    netid(argv[i + 3]));
			i += 4;
		} else if (strcmp(op, "pset") == 0 && i + 4 < argc) {
			ok = pmap_set(num(argv[i + 1]), num(argv[i + 2]),
			    (int)num(argv[i + 3]), (int)num(argv[i + 4]));
			i += 5;
		} else if (strcmp(op, "uid") == 0 && i + 1 < argc) {
			uid_t uid = (uid_t)num(argv[i + 1]);

			/* rpcbind takes the owner from SO_PEERCRED on its socket. */
			if (setgid(uid) != 0 || setuid(uid) != 0) {
				perror("rpcbreg: setuid");
				return 2;
			}
			ok = TRUE;
			i += 2;
		} else {
			fprintf(stderr, "usage: rpcbreg set PROG VERS NETID UADDR | "
			    "unset PROG VERS NETID | pset PROG VERS PROT PORT | uid UID ...\n");
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "rpcbreg: %s refused\n", op);
			return 1;
		}
	}
	return 0;
}
