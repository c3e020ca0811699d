// Package state keeps portmapd's registrations across restarts (warm start).
//
// rpcbind -w writes its table only at a clean exit, so a crash loses every
// registration and every RPC service must be restarted. portmapd instead
// makes each SET and UNSET durable before answering it: the handler changes
// the registry, then waits on a Writer, a group commit that saves whole
// snapshots of the table with Store.Save (temporary file, fsync, rename,
// directory fsync). Changes that arrive while one save is in flight share
// the next, so a burst of registrations costs a couple of fsyncs.
//
// Start-up, in the daemon (reg is a *pmap.Registry, svc its *pmap.Service):
//
//	st, err := state.Open("/run/portmapd", log)  // tmpfs: a reboot clears it anyway
//	for _, m := range st.WarmStart(state.RpcbindDirs) {
//		reg.Set(m)                                // own file, or what rpcbind -w left
//	}
//	w := state.NewWriter(st, reg.Snapshot, log)
//	defer w.Close()                              // saves what nobody waited for
//	svc.Durable = func(gen uint64) error {       // called before answering SET/UNSET
//		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//		defer cancel()
//		return w.Wait(ctx, gen)
//	}
//
// # File format
//
// The state file, <dir>/portmapd.xdr, is XDR (RFC 4506), written field by
// field with the xdr package's encoders (the tests check every byte against
// github.com/davecgh/go-xdr's encoding of the same structure). In XDR
// language (version 1):
//
//	struct pmapd_entry {
//		unsigned int prog;
//		unsigned int vers;
//		string       netid<1024>;
//		string       addr<1024>;     /* universal address, RFC 5665 */
//		string       owner<1024>;
//	};
//	struct pmapd_state {
//		opaque       magic[8];       /* "portmapd" */
//		unsigned int version;        /* 1 */
//		string       boot_id<64>;    /* /proc/sys/kernel/random/boot_id, or "" */
//		pmapd_entry  entries<262144>; /* pmap.MaxMappings */
//		unsigned int crc;            /* CRC-32C (Castagnoli) of all bytes before it */
//	};
//
// A reader refuses a file whose magic or version it does not know before
// believing any length in it. A new layout gets a new version number; a
// file of another version is moved aside, never misread. A file from
// another boot is stale (its ports belonged to processes the reboot
// killed): it is moved aside too, so a state directory on disk behaves like
// one on tmpfs.
//
// # Hostile files
//
// The state directory may be shared, restored from a backup or planted, so
// every file is read as hostile: never through a symbolic link, only if
// regular, owned by this user or root (for rpcbind's files also the owner of
// their directory when nobody else can write there) and not writable by
// group or others, at most MaxFileSize bytes, decoded in place with every
// string checked against MaxString and every count and length against the
// bytes present (rpcbind's files by go-xdr's limited decoder).
// A file that fails is renamed to "<name>.<reason>-<time>" with one log line
// and loading goes on with an empty table; the daemon always starts.
//
// # rpcbind's files
//
// rpcbind -w leaves rpcbind.xdr (its RPCBIND table, owners included) and
// portmap.xdr (its PMAP v2 table) in /run/rpcbind (older versions: /tmp),
// both XDR optional-data lists. rpcbind reads them back into two separate
// tables, so it needs both; portmapd has one table and takes rpcbind.xdr
// whole, adding from portmap.xdr only what it lacks. See LoadRpcbind.
package state
