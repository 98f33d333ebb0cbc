// Package fleet makes one ban list for many hosts: every sysban may decide
// (publish the bans its jails decide) and enforce (apply the fleet's bans to
// its own nftables), over a NATS JetStream key-value bucket. Replication,
// ordering and persistence are NATS's; this package only maps bans to
// entries and back, and checks what it is handed.
//
// # Servers
//
// A collector may run the NATS server embedded (StartServer: JetStream on,
// its store under the state directory, NoSigs, explicit memory and disk
// limits, no extra process); three sysbans may cluster their embedded
// servers; a large fleet points every node at an external nats-server
// cluster. Without a fleet: section there is no NATS at all.
//
// # The bucket
//
// One entry per ban, key "<node>.<jail>.<addr>" (key.go): node is the node
// that decided and published it, addr the banned network with '.' and ':'
// written as '-' and its length always present ("203-0-113-7_32",
// "2001-db8-1-2--_64"): a jail's prefix ban, an escalated network and a
// manual ban (`sysban ban`, published by a deciding node like a jail's)
// go out as the prefix they ban. A ban of scope origin has a fourth token,
// its origin ("<node>.<jail>.<addr>.<origin>"), so that bans of one
// address from two hosts' logs (a jail's countby: origin) do not replace
// each other. The value (value.go) holds the decision time, the absolute
// expiry, the deciding node (which must be the key's), the origin host
// whose log showed the failures, the last offending address inside the
// prefix, the scope, the reason and, from a node with an nkey, its
// signature. Entries are decoded, validated and refused with a count
// before anything reaches the kernel.
//
// An unban is a tombstone "<node>._unban.<addr>" (tombs.go): every enforcer
// lifts every ban covering that address or prefix decided before it,
// whoever decided it (an unban of 2001:db8::5 lifts 2001:db8::/64, as a
// local unban does; narrower bans inside stay), and a resync or restart
// never brings one back. The tombstone lives as long as the longest ban it
// lifted.
//
// # Known traps, and what this package does about each
//
//   - kv.Put cannot carry a per-key TTL. Bans are published to the bucket's
//     subject directly with a Nats-TTL header: whole seconds rounded up, at
//     least 1 s (the server's minimum), computed from the absolute expiry at
//     the moment of sending (so a ban that waited in the outbox gets the time
//     it has left); permanent bans carry none (TestPropagationAndTTL).
//   - Creating the bucket with LimitMarkerTTL turns AllowRollup on for good,
//     and one "Nats-Rollup: all" header from any node wipes the bucket.
//     The stream is created by this package (bucket.go): per-message TTL on,
//     rollups off, purge and message deletion denied, no subject delete
//     markers; an existing bucket that differs is refused
//     (TestBucketRefusesWipes). Deletes are KV-Operation: DEL markers that
//     carry a TTL of their own, so unbans do not grow the bucket forever.
//   - After a server restart the client's watcher can stay silent for many
//     seconds. Every (re)connect restarts the watch, and every watch starts
//     with a full resync: the whole bucket is diffed against what is in
//     force here (also every fleet.resync, default 5 min)
//     (TestPartitionOutboxAndReconnectResync).
//   - The KV watcher's push consumer lets the server run up to 32 MiB of
//     messages ahead of the client: a 100,000-ban snapshot piled up whole
//     in the client (about 1 KiB a message decoded) while the resync worked
//     through it. The watch (watch.go) is an ordered pull consumer with at
//     most 512 messages ahead. A server that refuses the pulls (permissions
//     from before, without $JS.API.CONSUMER.MSG.NEXT) gets the KV watcher,
//     with a warning (TestWatchFallsBackWhenPullsAreRefused).
//   - A node's credentials (NodePermissions) allow publishing only under
//     "$KV.<bucket>.<node>.>" and reading the bucket; no purge, no stream
//     update or delete (TestBucketRefusesWipes).
//
// # Trust on the wire
//
// Each node logs in with its own credentials: an nkey (Config.NKeySeed, a
// seed file no one else may read, written by WriteSeed) or a password. The
// embedded server lists every node's public key or password, each with
// NodePermissions, so hosta's key can neither publish under collector's
// name nor log in with another seed (TestNKeys).
//
// TLS (creds.go): the embedded server's listener takes a certificate and,
// with a client CA, requires client certificates too; nodes verify the
// server against fleet.tls.ca (TestTLS). Config.Validate refuses plaintext
// to a host that is not loopback, on both ends and on cluster routes,
// unless AllowPlaintext: a password and the ban list would cross the
// network in clear. Clustered embedded servers' routes verify each other
// against Embedded.ClusterTLS's CA (TestClusterRouteTLS).
//
// Signatures (sign.go): a node with an nkey signs every value it publishes
// (bans and unbans) with the nkey's ed25519 key, over a domain tag, the key
// and the value's JSON without the signature. The value makes one JSON
// round trip before it is signed, and the enforcer verifies the value it
// decoded, re-encoded: what is signed is what the value says, not its
// bytes. An enforcer that knows a node's public key (TrustKeys, plus the
// embedded server's nodes listed with keys) applies that node's entries
// only with a good signature and counts the rest as refused, reason
// "signature" (TestSignaturesRefused). That is what stands between a
// compromised NATS server or account and a forged ban list: it can still
// delete, withhold or replay a node's earlier value for the same key (whose
// absolute expiry stays), but not forge, lengthen or move a ban. Nodes
// whose key the enforcer does not know are accepted unsigned, so a fleet
// can move to keys one node at a time. A check costs one ed25519
// verification (about 65 µs of CPU) per new entry; entries already checked
// are recognised by a secret-keyed hash of key and bytes, so a resync does
// not verify the whole bucket again (BenchmarkSignedEntry, TestCheckedSet).
//
// # Enforcing
//
// The fleet's bans go through the same ban chain as local ones (a Journal
// with Source "fleet:<node>:<origin>", then nft: single addresses to the
// hash sets, prefixes to the interval sets), so Restore and the nft Guard
// put them back like any other.
//
// A resync is streamed (resync.go), so that an enforcer holds no copy of
// the bucket nor of its store: it reads the unban tombstones first (a
// watch of their keys), then the bans, deciding each as it arrives and
// handing the ones it takes to the ban chain in chunks of 4096 while the
// rest still arrives (a late joiner's kernel fills during the snapshot).
// The snapshot's entries are decoded and their signatures verified by a
// worker per core, a few batches of 64 ahead of the decisions, which take
// them in the snapshot's order (BenchmarkLateJoinerSigned100k).
// Node.Joined is closed when the first resync has ended: the daemon
// starts its nft Guard then (at most 10 s after start), whose element
// checks otherwise read a late joiner's filling sets over and over, a
// third of the join's CPU for nothing (TestJoinedAfterFirstResync). The
// resync logs its phases (tombstones read, first ban, snapshot read, last
// chunk in force) at debug level; scripts/bench reads them.
// With the unbans known first, a lifted ban is never applied, not even for
// a moment; an unban that appears during the snapshot lifts what it covers
// when the snapshot ends. Of two nodes' bans of one prefix the longer is
// in force (a later, longer one replaces the kernel's timeout). The bans in
// force here are read one at a time, without their lines (Local.InForce);
// when the snapshot is complete, fleet bans in force that the bucket no
// longer holds are lifted. What the node keeps of the bucket between
// resyncs (known.go) is 40 bytes a ban, without strings or pointers, and
// the prefix in force of each ban it narrowed.
//
// Each enforcer applies its own trust rules (Node.verdict): fleet.jails;
// fleet.maxprefix4 and fleet.maxprefix6 (24 and 48: a wider prefix is
// refused, so a compromised node cannot ban 0.0.0.0/1); its never-ban
// list, exactly as its own prefix bans do (loopback, link-local, own
// addresses, allowed senders, the jail's ignoreip, fleet.ignoreip): a
// fleet prefix that covers one is narrowed to the widest prefix of the
// offending address that covers none (down to the address), and refused
// when even the address is protected or the entry names none (a manual
// prefix ban), counted and logged either way; fleet.maxbantime (longer
// bans are cut to it); and fleet.ratecap: new bans per minute per deciding
// node; beyond it they are held, counted, and released as the cap allows,
// live or at a later resync. Only the first snapshot after start (a late
// joiner) is not capped: it is the fleet's standing list. A ban of scope
// origin is applied only by the enforcer named by its origin
// (fleet.origins maps syslog hostnames or sender addresses to node names).
//
// # Reload
//
// Node.Reload takes what a running node can change (the trust rules above,
// fleet.scope, fleet.origins, fleet.resync) and resyncs, so that the new
// rules apply to what is in force: a ban now refused is lifted, one now
// accepted applied. A change that needs a new connection, server or outbox
// (name, roles, servers, credentials, bucket, replicas, outbox, embedded)
// is refused with the keys named (RestartKeys), and the old config stays.
//
// # The path of a ban, and what is kept off it
//
// A decider publishes a ban the moment the pipeline decides it
// (Node.Decided, the pipeline's Options.Decided), not when the ban worker
// reaches it: during a storm the worker is busy with the batch ahead (a
// store commit with fsync, a kernel write), and the other hosts need not
// wait for this host. The Publisher link of the ban chain publishes only
// what was not published so (bans decided inside the worker: recidive,
// escalation; manual bans). Publications wait in one ordered queue;
// publishLoop sends everything queued at once, in sends of up to 4096,
// and keeps up to two sends in flight (sendQueued): the next goes out while
// the server acknowledges the one before, so in an R3 cluster a storm's
// ban does not wait a quorum round trip for the acks of the send ahead of
// it. Order is kept: one connection carries the sends in order, and a send
// behind one that failed goes whole into the outbox after the failed
// publications, even what the server took (published again: the same keys
// and values), so a failed publication is never overtaken, neither a ban
// by the unban of the same key (TestSendQueuedOrder).
//
// An enforcer applies what its watch has delivered as one batch (one
// kernel write), in order around deletes and unbans, and the store records
// those bans behind the kernel write (cmd/sysban's fleetLocal): the bucket
// is a fleet ban's durable home and a resync restores what a crash between
// the two lost, so the next batch does not wait for this one's fsync;
// it commits at most every 100 ms (fleetRecordGap) unless 4,096 wait or a
// reader needs them, as one commit per batch was two fdatasyncs per
// millisecond in a storm.
// An update that finds the enforcer idle is applied at once; one that
// arrives within a millisecond of the last batch's end belongs to a
// stream, and its batch waits up to a millisecond for more (liveLinger):
// in a storm the watch delivers bans one at a time, and one kernel
// transaction each was most of an enforcer's fixed cost per ban.
// BenchmarkPropagation times each stage through the node's trace hook.
//
// # Offline
//
// Publishing never holds up the ban chain: publications are queued, and
// while NATS is unreachable (or the queue is full) they go to the outbox,
// a bbolt file beside the store, bounded by fleet.outbox and counted; it is
// flushed oldest first on reconnect. A link that dies without a FIN or RST
// is noticed by pings, and a write blocked on it gives up after 3 s (the
// client's default is a minute, during which it holds the connection's
// lock and cannot even send the pings); what the server did not
// acknowledge, or the client refused (its reconnect buffer is off:
// "outbound buffer limit exceeded"), goes to the outbox
// (TestDeadLinkPublicationsGoToOutbox). An enforcer keeps its kernel set as
// it is and resyncs on reconnect; the kernel expires bans on its own either
// way.
package fleet
