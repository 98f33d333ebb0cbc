// Package store makes bans durable: it keeps every current ban and the ban
// history in one crash-safe file under the state directory, so that a
// restart, a reboot, a flushed ruleset or a kill -9 loses no ban that sysban
// reported as applied.
//
// In the ban chain (receiver -> pipeline -> store -> nft) the store is the
// middle link: Journal is a sysban.Applier that the pipeline calls, and it
// calls the next one, the nft Backend. Restore replays the current bans
// through the same interface at start.
//
// # Why bbolt
//
// The file is a go.etcd.io/bbolt database. bbolt is pure Go (no cgo, unlike
// the SQLite drivers worth trusting, so the binary stays static and
// cross-compiles), keeps everything in a single file, and gives ACID
// transactions whose commit returns only after fsync: a committed
// transaction survives a crash or power loss, an uncommitted one leaves no
// trace, and there is no recovery step or write-ahead log to replay on open.
// Its API is tiny (buckets of sorted keys), and its one-writer-at-a-time
// model fits sysban, where a single ban writer (the pipeline's batcher, the
// control API's ban and unban) commits short transactions. The file is locked
// (flock) while open, so a second sysban on the same state directory is
// refused instead of corrupting it.
//
// # Layout
//
// Three buckets:
//
//   - "meta": the schema version.
//   - "bans": the current bans, one per jail and address, keyed
//     jail + 0x00 + the 16-byte address (IPv4 as IPv4-mapped IPv6), so keys
//     sort by jail then address and all bans of a jail are one range.
//   - "history": ban and unban events, keyed by the 16-byte address, the
//     event time (big-endian nanoseconds) and a sequence number, so the
//     events of one address are one range in time order: History and
//     Offences read only that range.
//
// # Encoding
//
// Values are a compact versioned binary encoding (a version byte, then
// varints and length-prefixed strings), not JSON: the schema is fixed and
// small, restore at start decodes every current ban (100,000 in tens of
// milliseconds), and a version byte lets a later sysban read old records. The
// decoder checks every length, so a damaged value is an error, never a panic.
//
// # Memory and idle cost
//
// bbolt reads through a shared read-only mapping of the file, so every
// page a read touches counts in the process's resident set until it is
// unmapped. Reads of the whole file (Due, EachDue, an Expire scan, a large
// Record batch, Purge, BansSince) hand their pages back when they end, and
// the scans of every ban (Due, EachDue, Expire) every 8,192 records too
// (madvise MADV_DONTNEED: for a clean shared file mapping that drops only
// this process's page-table entries; the pages stay in the page cache and
// the next read maps them again without a disk read). Expire scans only
// once the earliest expiry it knows of has come (kept in memory, lowered
// by Record, recomputed by each scan), and writes nothing otherwise;
// Generation moves after every write transaction, so that the nft Guard
// reads the bans again only when they changed. With 100,000 bans an idle
// enforcer kept 16 MiB of the file resident before.
//
// # Durability contract
//
// Journal records a batch of bans (one fsync'd transaction) before handing
// it to the kernel, and reports success only when both steps succeeded. A
// ban that is stored but not in the kernel (the kernel write failed, or the
// process died between the two steps) is put back by the next restore from
// Due, so after kill -9 at any moment every ban that was reported applied is
// in Due. The pipeline announces a ban (logs and counts it) and the daemon
// notifies it only after Journal.Apply returned nil, so every ban the log
// announced is in Due too.
package store
