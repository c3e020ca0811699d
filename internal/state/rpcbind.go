package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	xdr "github.com/davecgh/go-xdr/xdr2"
	"go.uber.org/zap"

	"github.com/portmapd/portmapd/pmap"
)

// RpcbindDirs are where rpcbind keeps its warm-start files, newest location
// first: Debian's rpcbind uses /run/rpcbind (and /var/run links to /run);
// before its state directory became configurable rpcbind wrote to /tmp.
var RpcbindDirs = []string{"/run/rpcbind", "/var/run/rpcbind", "/tmp"}

// Names of rpcbind's warm-start files.
const (
	RpcbindFile = "rpcbind.xdr"
	PortmapFile = "portmap.xdr"
)

// rpcbind writes its two lists independently at exit and reads them back
// independently: rpcbind.xdr feeds its RPCBIND v3/v4 table, portmap.xdr its
// PMAP v2 table, and neither is rebuilt from the other (with only
// rpcbind.xdr present, rpcinfo -p shows no registrations). portmapd has one
// table, so rpcbind.xdr is taken whole (it has owners and real host parts)
// and portmap.xdr only fills in (prog, vers, netid) it lacks.

// rpcbSet is the first directory holding rpcbind warm-start files.
type rpcbSet struct {
	dir    string
	dirUID uint32
	// dirClosed: nobody but the directory's owner can add files to it.
	dirClosed bool
	files     []string  // existing paths, rpcbind.xdr first
	newest    time.Time // latest modification time among files
}

// LoadRpcbind reads the warm-start files rpcbind -w left in the first of
// dirs that holds any, and returns their registrations as portmapd rows:
// rows of program 100000 are dropped, portmap.xdr's {prog, vers, prot, port}
// become netid tcp or udp with address 0.0.0.0.p1.p2 and owner superuser.
// A file is believed only when it is a regular file, written by root, by
// this user or by the owner of its directory when nobody else can write
// there (Debian's rpcbind runs as _rpc in /run/rpcbind, while /tmp is open
// to anyone), and was written during this boot. Other files are moved aside
// and logged, like the Store's own. The files themselves are left in place;
// Store.WarmStart consumes them once they are saved.
func LoadRpcbind(dirs []string, log *zap.Logger) []pmap.Mapping {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("state")
	rs := findRpcbind(log, dirs)
	if rs == nil {
		return nil
	}
	ms, _ := rs.load(log, time.Now())
	return ms
}

// findRpcbind returns the first directory holding either warm-start file,
// visiting each real directory once (/var/run/rpcbind is usually
// /run/rpcbind under another name).
func findRpcbind(log *zap.Logger, dirs []string) *rpcbSet {
	var visited []os.FileInfo
next:
	for _, dir := range dirs {
		di, err := os.Stat(dir)
		if err != nil || !di.IsDir() {
			continue
		}
		for _, v := range visited {
			if os.SameFile(v, di) {
				continue next
			}
		}
		visited = append(visited, di)
		rs := &rpcbSet{dir: dir}
		if st, ok := di.Sys().(*syscall.Stat_t); ok {
			rs.dirUID = st.Uid
			rs.dirClosed = di.Mode().Perm()&0o022 == 0
		}
		for _, name := range []string{RpcbindFile, PortmapFile} {
			p := filepath.Join(dir, name)
			fi, err := os.Lstat(p)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					log.Warn("cannot inspect rpcbind warm-start file", zap.String("file", p), zap.Error(err))
				}
				continue
			}
			rs.files = append(rs.files, p)
			if fi.ModTime().After(rs.newest) {
				rs.newest = fi.ModTime()
			}
		}
		if len(rs.files) > 0 {
			return rs
		}
	}
	return nil
}

func (rs *rpcbSet) trust(uid uint32) bool {
	return uid == 0 || uid == uint32(os.Geteuid()) || (rs.dirClosed && uid == rs.dirUID)
}

type mappingKey struct {
	prog, vers uint32
	netid      string
}

// load reads the set's files and merges them, returning the rows and the
// files that were read successfully; refused files are moved aside.
func (rs *rpcbSet) load(log *zap.Logger, now time.Time) (ms []pmap.Mapping, read []string) {
	boot, bootKnown := bootTime()
	seen := make(map[mappingKey]bool)
	for _, p := range rs.files {
		data, fi, err := readTrusted(p, rs.trust)
		if err == nil && bootKnown && fi.ModTime().Before(boot) {
			err = fmt.Errorf("modified %s, boot at %s: %w",
				fi.ModTime().UTC().Format(time.RFC3339), boot.UTC().Format(time.RFC3339), ErrStale)
		}
		var rows []pmap.Mapping
		if err == nil {
			if filepath.Base(p) == RpcbindFile {
				rows, err = decodeRpcbList(data)
			} else {
				rows, err = decodePmapList(log, data)
			}
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since findRpcbind looked
			}
			moveAside(log, p, err, now)
			continue
		}
		var own, dups int
		for _, m := range rows {
			k := mappingKey{m.Prog, m.Vers, m.Netid}
			switch {
			case m.Prog == pmap.Program:
				own++
			case seen[k]:
				dups++
			default:
				seen[k] = true
				ms = append(ms, m)
			}
		}
		read = append(read, p)
		log.Info("read rpcbind warm-start file", zap.String("file", p),
			zap.Int("rows", len(rows)), zap.Int("own_rows_skipped", own), zap.Int("already_known", dups))
	}
	return ms, read
}

// decodeRpcbList parses rpcbind.xdr, libtirpc's xdr_rpcblist_ptr: a list of
// XDR optional-data, each element a bool "more" followed, when TRUE, by
//
//	struct rpcb { unsigned prog; unsigned vers; string netid<>; string addr<>; string owner<>; };
//
// and a FALSE at the end. Strings go through go-xdr's limited decoder.
func decodeRpcbList(data []byte) ([]pmap.Mapping, error) {
	r := bytes.NewReader(data)
	d := xdr.NewDecoderLimited(r, MaxString)
	var ms []pmap.Mapping
	for i := 0; ; i++ {
		more, err := optionalMore(d, i)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		// Each row takes at least 20 bytes, so the file size already bounds
		// the count; the explicit limit keeps the table sane.
		if i == MaxMappings {
			return nil, fmt.Errorf("more than %d rows: %w", MaxMappings, ErrCorrupt)
		}
		var e xdrEntry
		if _, err := d.Decode(&e); err != nil {
			return nil, listError("rpcb", i, err)
		}
		ms = append(ms, pmap.Mapping(e))
	}
	// rpcbind reads no further than the final FALSE, so neither do we;
	// trailing bytes are not a reason to drop the registrations.
	return ms, nil
}

// xdrPmap is struct pmap of RFC 1833 section 3; the C fields are u_long but
// xdr_u_long puts 32 bits on the wire.
type xdrPmap struct {
	Prog, Vers, Prot, Port uint32
}

// decodePmapList parses portmap.xdr, xdr_pmaplist_ptr: the same
// optional-data list shape with struct pmap elements, converted to the rows
// rpcbind's own PMAP SET would have made.
func decodePmapList(log *zap.Logger, data []byte) ([]pmap.Mapping, error) {
	r := bytes.NewReader(data)
	d := xdr.NewDecoderLimited(r, MaxString)
	var ms []pmap.Mapping
	for i := 0; ; i++ {
		more, err := optionalMore(d, i)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		if i == MaxMappings {
			return nil, fmt.Errorf("more than %d rows: %w", MaxMappings, ErrCorrupt)
		}
		var p xdrPmap
		if _, err := d.Decode(&p); err != nil {
			return nil, listError("pmap", i, err)
		}
		netid, ok := pmap.ProtoNetid(p.Prot)
		if !ok || p.Port > 0xffff {
			log.Warn("skipping portmap.xdr row that PMAP SET would have refused",
				zap.Uint32("prog", p.Prog), zap.Uint32("vers", p.Vers),
				zap.Uint32("prot", p.Prot), zap.Uint32("port", p.Port))
			continue
		}
		ms = append(ms, pmap.Mapping{
			Prog:  p.Prog,
			Vers:  p.Vers,
			Netid: netid,
			Addr:  fmt.Sprintf("0.0.0.0.%d.%d", p.Port>>8, p.Port&0xff),
			// Who registered is not recorded; superuser is the owner only
			// root can remove, the safe guess for rows rpcbind kept.
			Owner: pmap.OwnerSuperuser,
		})
	}
	return ms, nil
}

// optionalMore reads the "more elements follow" flag of an XDR
// optional-data list. libtirpc's xdr_bool takes any non-zero value as TRUE,
// so this does too.
func optionalMore(d *xdr.Decoder, i int) (bool, error) {
	v, _, err := d.DecodeUint()
	if err != nil {
		if i == 0 {
			return false, fmt.Errorf("empty file: %w", ErrTruncated)
		}
		return false, fmt.Errorf("list ends after %d rows without its end marker: %w", i, ErrTruncated)
	}
	return v != 0, nil
}

// listError tells a file that ends inside a row (a crash while rpcbind
// wrote it) from one whose contents make no sense.
func listError(what string, i int, err error) error {
	kind := ErrCorrupt
	if xdr.IsIO(err) {
		kind = ErrTruncated
	}
	return fmt.Errorf("decode %s %d: %w: %w", what, i, kind, err)
}
