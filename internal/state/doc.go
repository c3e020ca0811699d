// Package state keeps portmapd's registrations across restarts (warm start).
//
// rpcbind -w writes its table only at a clean exit, so a crash loses every
// registration and every RPC service must be restarted. portmapd instead
// makes each SET and UNSET durable before answering it. The directory
// holds a snapshot of the table (portmapd.xdr) and a journal of the
// changes since (portmapd.journal): each change appends one checksummed
// record per row, so its cost does not grow with the table. A Writer is
// the group commit in front of them: the registry hands it every change
// under its lock (pmap.Journal), and one goroutine appends all the
// changes waiting at that moment in one write and one fsync, so that
// concurrent callers, and the calls pipelined on one stream, share it.
// Once the journal outgrows the snapshot, a new snapshot is written on a
// goroutine of its own beside the appends, and the journal restarts after
// it.
//
// A change is applied and durable, or neither: when a write fails (disk
// full, I/O error, read-only filesystem, a directory removed or mounted
// over) every change not yet durable is taken back (pmap.Registry.Revert,
// which restores the table exactly), their callers are answered
// SYSTEM_ERR, a metric counts the failure and a log line, at most one
// every ten seconds, says so. The next change saves the whole table,
// which brings durability back as soon as the disk allows it.
//
// Start-up, in the daemon (reg is a *pmap.Registry, svc its *pmap.Service):
//
//	st, err := state.Open("/run/portmapd", log)  // tmpfs: a reboot clears it anyway
//	reg.SetAll(st.WarmStart(state.RpcbindDirs))  // own files, or what rpcbind -w left
//	w := state.NewWriter(st, reg, log)           // tracks reg from here on
//	defer w.Close()                              // writes what nobody waited for
//	svc.Durable = func(gen uint64) error {       // called before answering SET/UNSET
//		return w.Wait(context.Background(), gen)
//	}
//
// # File formats
//
// Both files are XDR (RFC 4506), written field by field with the xdr
// package's encoders (the tests check the snapshot's bytes against
// github.com/davecgh/go-xdr's encoding of the same structure). The
// snapshot, in XDR language (version 2; version 1 lacks seq and is still
// read):
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
//		unsigned int version;        /* 2 */
//		string       boot_id<64>;    /* /proc/sys/kernel/random/boot_id, or "" */
//		unsigned hyper seq;          /* the last change it holds */
//		pmapd_entry  entries<262144>; /* pmap.MaxMappings */
//		unsigned int crc;            /* CRC-32C (Castagnoli) of all bytes before it */
//	};
//
// The journal (see journal.go) is a header (magic "pmapdjnl", version,
// boot id, the seq of the snapshot it follows, CRC) and records (length,
// seq, SET or UNSET, a pmapd_entry, CRC), each seq one more than the
// last. Loading replays the records after the snapshot's seq and stops at
// the first record that is torn, fails its CRC or breaks the sequence:
// the torn tail a crash leaves, cut off before the next append. A crash
// between installing a compacted snapshot and restarting the journal
// leaves the old journal, whose records up to the snapshot's seq are
// skipped.
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
// and loading goes on without it (a refused journal leaves the snapshot's
// table; a refused snapshot takes its journal with it); the daemon always
// starts.
//
// # rpcbind's files
//
// rpcbind -w leaves rpcbind.xdr (its RPCBIND table, owners included) and
// portmap.xdr (its PMAP v2 table) in /run/rpcbind (older versions: /tmp),
// both XDR optional-data lists. rpcbind reads them back into two separate
// tables, so it needs both; portmapd has one table and takes rpcbind.xdr
// whole, adding from portmap.xdr only what it lacks. See LoadRpcbind.
package state
