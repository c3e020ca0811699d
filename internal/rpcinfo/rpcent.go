package rpcinfo

import (
	"strconv"

	"github.com/portmapd/portmapd/pmap/client/tirpc"
)

// defaultRPC is Debian's /etc/rpc (netbase), used when the file is
// missing: rpcinfo's service column should not go blank on a minimal
// system whose portmapper still serves NFS.
const defaultRPC = `
portmapper	100000	portmap sunrpc rpcbind
rstatd		100001	rstat rstat_svc rup perfmeter
rusersd		100002	rusers
nfs		100003	nfsprog
ypserv		100004	ypprog
mountd		100005	mount showmount
ypbind		100007
walld		100008	rwall shutdown
yppasswdd	100009	yppasswd
etherstatd	100010	etherstat
rquotad		100011	rquotaprog quota rquota
sprayd		100012	spray
3270_mapper	100013
rje_mapper	100014
selection_svc	100015	selnsvc
database_svc	100016
rexd		100017	rex
alis		100018
sched		100019
llockmgr	100020
nlockmgr	100021
x25.inr		100022
statmon		100023
status		100024
bootparam	100026
ypupdated	100028	ypupdate
keyserv		100029	keyserver
tfsd		100037
nsed		100038
nsemntd		100039
ypxfrd		100069
nfs_acl		100227
pcnfsd		150001
amd		300019	amq
sgi_fam		391002
ugidd		545580417
fypxfrd		600100069	freebsd-ypxfrd
bwnfsd          788585389
`

// maxRPCFile bounds what is read of /etc/rpc.
const maxRPCFile = 1 << 20

// rpcDB answers getrpcbynumber and getrpcbyname: the first line with the
// number, the first with the name or alias. Maps, because a listing
// looks up every row and /etc/rpc may be long.
type rpcDB struct {
	byNum map[uint32]string
	byNam map[string]uint32
}

// loadRPC reads path, or the built-in table when it cannot be read.
func loadRPC(path string) rpcDB {
	data, err := tirpc.ReadBounded(path, maxRPCFile)
	if err != nil {
		data = []byte(defaultRPC)
	}
	return parseRPC(data)
}

// parseRPC reads the files(5) format glibc reads: comments from '#',
// then a name, a number and aliases separated by blanks.
func parseRPC(data []byte) rpcDB {
	db := rpcDB{byNum: map[uint32]string{}, byNam: map[string]uint32{}}
	tirpc.EachRow(data, func(f []string) {
		if len(f) < 2 {
			return
		}
		n, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return
		}
		if _, dup := db.byNum[uint32(n)]; !dup {
			db.byNum[uint32(n)] = f[0]
		}
		for _, name := range append([]string{f[0]}, f[2:]...) {
			if _, dup := db.byNam[name]; !dup {
				db.byNam[name] = uint32(n)
			}
		}
	})
	return db
}

func (db rpcDB) byNumber(n uint32) (string, bool) {
	s, ok := db.byNum[n]
	return s, ok
}

func (db rpcDB) byName(name string) (uint32, bool) {
	n, ok := db.byNam[name]
	return n, ok
}

// ProgramNumber reads a program as rpcinfo does: a number, or a name
// from /etc/rpc (the built-in table when the file is missing).
func ProgramNumber(s string) (uint32, bool) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), true
	}
	return loadRPC(DefaultRPCFile).byName(s)
}
