// Package sysban holds the domain types that flow through the daemon's
// stages — Message (receiver -> pipeline), Failure and Ban (pipeline ->
// store -> nft) and the jail rule shape the nft backend enforces — and the
// small interfaces between the stages, so that every stage can see them
// without importing another stage. It has no behaviour of its own beyond
// small value helpers.
//
// Data flows one way:
//
//	receiver -> pipeline -> store (journal) -> nft
//
// A message goes from receiver to pipeline through receiver.Handler; a ban
// from pipeline through store to nft through Applier, the one interface of
// the ban chain, which the store's Journal and the nft Backend implement and
// the pipeline and the Journal call. cmd/sysban wires the concrete types
// together and nothing else knows about flags.
//
// # Life of a message
//
// One RFC 3164 datagram, "<38>Dec  6 10:00:00 host sshd[42]: Failed
// password for root from 203.0.113.7 port 52211 ssh2", sent to sysban's
// UDP listener, the third such line from that address within findtime:
//
//  1. receiver/listen_dgram.go: the listener's goroutine reads up to a
//     batch of datagrams with one recvmmsg (serveUDP, on buffers and
//     headers made once in dgram_batch.go) and reads the clock once for
//     the batch. handleDatagram refuses senders outside
//     listen.allow, drops oversized datagrams and senders over their rate
//     limit (counted by reason, ratelimit.go), and splits a datagram that
//     carries several messages (format.go).
//  2. receiver/receiver.go deliver: the bytes are parsed into a
//     sysban.Message that the goroutine reuses for every message
//     (parse.go; the hand-written fast path for the usual headers in
//     parse_fast.go, timestamps in stamp.go). A line that does not parse is
//     still delivered with its raw text. Message.Origin says who sent it as
//     far as the kernel vouches (origin.go): nobody, on UDP; the sender's
//     uid on unix sockets and TCP from this host; a forwarder's
//     [sysban@32473] data from a forwarder's socket. The Handler is called
//     inline: no queue, the socket buffer is the only backlog.
//  3. pipeline/pipeline.go Handle: the program name ("sshd") picks the
//     routes (filters and the jails fed by them); each filter's anchored
//     patterns run on the text, after text.go undid vendor prefixes and
//     relay repeat reductions (filter.go; multi-line failures in
//     correlate.go, hostnames resolved off the hot path in resolve.go).
//     The address found at <HOST> is canonicalised; a protected address
//     (own, loopback, the sender itself) is never counted, nor a failure
//     whose vouched origin the filter does not trust (provenance.go).
//  4. pipeline/jail.go failure: the jail's rule. The address's failure is
//     noted in the shard's bounded address table (addrtable.go, which keeps
//     each address's last maxretry failures and their lines); as the third
//     inside findtime it is a ban: the jail remembers it (further failures
//     count as already banned) and decide hands a sysban.Ban to the bounded
//     ban queue (pipeline/worker.go enqueue). Nothing is announced yet.
//  5. pipeline/worker.go Run: the ban worker drains the queue into a batch
//     (a storm of bans becomes few large batches) and calls Applier.Apply,
//     retrying with backoff. Only when Apply returned nil does announce log
//     "ban" and count it (TotalBanned, CurrentlyBanned): a ban is announced
//     once it is kept, never before.
//  6. cmd/sysban/banner.go: the daemon's announcer passes the batch on and,
//     once it went through, hands each ban to the notifier (notify/).
//  7. store/journal.go Apply: the batch is recorded in one fsync'd bbolt
//     transaction (store/store.go Record: the current bans and the ban
//     history), then passed on to the kernel. The store comes first because
//     it is what every restore reads: a ban only in the kernel would not
//     survive a flushed ruleset and a restart, a ban only in the store is
//     put back by the Guard or the next start.
//  8. nft/elements.go Apply: the bans become elements of the jail's sets
//     ("sshd_v4") with their remaining time as kernel timeout, in one
//     netlink batch. From here the kernel drops 203.0.113.7's packets in
//     the table's input chain (nft/setup.go), and lifts the ban itself when
//     the timeout ends, whether or not sysban still runs.
//
// Afterwards the nft Guard (nft/guard.go) puts back what a flushed ruleset
// removed, from the bans the store says are due, and at the next start
// store.Store.Restore replays them through the same Applier.
package sysban
