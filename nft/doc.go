// Package nft enforces bans in the kernel: it keeps one nftables table whose
// sets hold the banned addresses and whose rules drop or reject their traffic.
// It talks to nf_tables over netlink (github.com/google/nftables) and never
// runs the nft command.
//
// It is the last link of the ban chain (receiver -> pipeline -> store ->
// nft): Backend implements sysban.Applier, called by the store's Journal
// once a batch is recorded, and by store.Store.Restore at start. The Guard
// reads the bans that must be in the kernel from the store (a BanSource).
//
// # Ruleset layout
//
// Everything lives in one table, "table inet sysban" by default. The inet
// family lets one chain see both IPv4 and IPv6 traffic. The table holds:
//
//   - one base chain "input": type filter, hook input, priority -10, policy
//     accept. The chain only ever drops or rejects, so traffic from addresses
//     that are not banned passes on to the host's own firewall untouched.
//   - per jail two named sets, "<jail>_v4" (type ipv4_addr) and "<jail>_v6"
//     (type ipv6_addr), both with "flags timeout" and no default timeout: a
//     timed ban is an element with its own timeout, so the kernel removes it
//     when the ban ends even if the daemon is down; a permanent ban is an
//     element without a timeout. IPv4-mapped IPv6 addresses are stored in the
//     v4 set, because that is how their packets arrive.
//   - per jail two interval sets beside them, "<jail>_v4net" and
//     "<jail>_v6net", for prefix bans (a /64, a /24). The kernel holds the
//     banned space cut into disjoint ranges, which the Backend plans
//     (prefixes.go, prefixbook.go); why two kinds of set and not one is
//     measured there.
//   - at the head of the chain, one port gate per transport (TCP, UDP),
//     described under "Rule order";
//   - per jail and address family one rule (two when the verdict is reject
//     and several protocols are matched, see below), in jail order.
//
// A rule reads, for example:
//
//	meta nfproto ipv4 meta l4proto tcp th dport 22 ip saddr @ssh_v4 drop
//
// (nft prints it as "tcp dport 22 ip saddr @ssh_v4 drop").
//
// The protocol match is "meta l4proto tcp" or "udp"; protocol "all" without
// ports matches any protocol and, with ports, "meta l4proto { tcp, udp, sctp,
// dccp }" (the transports that have a destination port at the same offset).
// Ports are "th dport 22", "th dport 1000-2000" or, for several, an anonymous
// interval set "th dport { 22, 2222-2230 }". No ports means every port. The
// verdict is drop, or reject: "reject with tcp reset" for TCP and "reject
// with icmpx admin-prohibited" for anything else, which is why a reject jail
// over several protocols gets a TCP rule followed by a rule for the others.
// Each rule carries the comment "sysban jail <name>".
//
// # Rule order
//
// A rule's expressions are ANDed and evaluation stops at the first that
// fails, so their order decides the cost, not the meaning. The cheap,
// selective compares come first (family, transport, port) and the lookup
// in the jail's address set last: a packet for another service (a syslog
// datagram reaching the ssh jail's rules) is turned away by a compare of
// a register and never pays the lookups. Before, every rule looked the
// address up first, so every packet of a family paid a hash and an
// interval lookup per jail; with the 21 jails of the bench's UDP daemon
// that was 42 lookups per IPv4 datagram, and the chain cost a datagram
// 2.1-2.4 µs of the sender's CPU, now 1.5-1.6 µs (scripts/bench, section
// prefix, "sysban's chain for traffic it does not ban"). That was still
// walking the rules, four per jail of two to four compares each, so the
// chain now opens with a port gate per transport (gate.go):
//
//	tcp dport != { 22, 80, 443 } accept
//	udp dport != 53 accept
//
// The set holds every port a jail covers for that transport and the NFLOG
// trap ports; a transport no jail and no trap covers gets "meta l4proto udp
// accept", and one that a jail covers on every port gets no gate. A packet
// of TCP or UDP to any other port leaves the chain after one or two rules;
// accept ends only this chain, so the host's own chains see it as before.
// Packets without a port to read (ICMP, a non-first fragment) never match a
// gate and walk the rules as before. Each gate carries the comment "sysban
// gate tcp" or "sysban gate udp"; the Guard expects each gate Setup wrote
// exactly once and repairs a missing one (it only costs time) as well as
// a doubled one or one Setup did not write (foreign: such a gate could let
// a jail's traffic through). The gate
// cut the chain's cost for a syslog datagram from 1.5-1.7 µs to 0.2-0.3
// µs, near the 0.07-0.19 µs an empty base chain costs (docs/performance.md).
// A chain per jail behind one jump rule per jail measured about the same
// (0.2-0.3 µs) but changes the table's layout (chains that Setup, the
// Guard and the tests would all have to know) and still walks a jump rule
// per jail, so the gate, two rules in the one chain, was built instead.
// A table written in an older order, or without gates, is simply
// replaced: Setup rewrites every rule, and the Guard compares rules by
// comment, not by their expressions.
//
// # Why priority -10
//
// Netfilter runs every base chain registered on the input hook in priority
// order, and a drop in any of them is final. At -10 the ban chain runs just
// before the usual filter chains (priority 0: a hand-written "inet filter"
// table, iptables-nft's INPUT, firewalld) so banned packets are discarded
// before those chains spend work on them, count or log them, or feed them to
// meters and dynamic sets. It still runs after conntrack (-200), mangle (-150)
// and destination NAT, so it sees the real source address and a defragmented
// packet, and before source NAT on input (100). An accept elsewhere cannot
// let a banned address through, because our chain drops first.
//
// # Atomic setup and reload
//
// Setup builds the whole table in one netlink batch, which nf_tables applies
// as one transaction: packets see either the old ruleset or the new one. If
// a table of that name exists, the batch removes everything in it (chains,
// rules, sets of jails no longer configured, anything foreign) except the
// sets of jails that remain, which stay in place with every element and its
// exact expiry. So a daemon restart or a configuration reload never opens a
// window in which a banned address gets through, and never loses a ban.
//
// Keeping the sets, rather than reading their elements and writing them
// into a fresh table, is deliberate: a set-element dump of a large set is
// not a reliable snapshot (right after 100,000 insertions one dump listed
// 1,738 elements twice and as many not at all, because the kernel resized
// the hash table between the parts of the dump). Only a set with a jail's
// name but the wrong shape (say, without the timeout flag) is recreated,
// its elements carried into the new set in the same batch, each with its
// remaining lifetime as timeout.
//
// # Bans survive restarts
//
// The daemon never deletes the table when it exits: the kernel keeps
// enforcing every ban, and expires timed ones on schedule, while the daemon
// is stopped or restarting. Only Teardown (tests, explicit uninstall)
// removes it.
//
// # Self-healing
//
// Anyone with CAP_NET_ADMIN can remove the table under the daemon: "nft
// flush ruleset", "nft -f /etc/nftables.conf" (Debian's starts with
// "flush ruleset"), a firewall manager's reload, an admin deleting a rule
// or flushing a set. Backend.Guard puts it back. It listens to nf_tables'
// change notifications and checks at once when another process (another
// netlink port than the Backend's) changed something in the table, and it
// reconciles every Interval (2 s) in case a notification was lost. A check
// compares the layout (table, base chain, the gates and each jail's rule
// count by comment, both sets of each jail) with the last Setup, and the sets'
// elements with the bans the store says are due. A repair runs Setup again
// (atomic; sets that survived keep their elements) and adds what the
// kernel lacks with each ban's remaining time; tests measured 50 to 100 ms
// from the damage to a complete table with notifications, at most one
// Interval without.
//
// Three races are handled. A ban recorded in the store but not yet added
// by Apply, or removed from the kernel before the store, looks missing:
// a ban is restored only when two readings 250 ms apart both miss it. A
// reload (Setup with new rules) during a check makes the layout look wrong:
// the repair only runs if no Setup ran since the check began, and always
// with the current rules. The kernel expires bans on its own clock: bans
// ending within a second are not looked for. Repairs in a quick streak
// (someone re-wiping the table in a loop) pause the checks, doubling from
// Interval up to 8 s, rather than fight in a tight loop; the cap keeps a
// repair within 2 s of damage that comes at most every 10 s, and within
// 15 s of any damage. Failed checks back off from 0.5 s to 30 s.
//
// Reading a set's elements is the expensive part (about 0.9 s of kernel
// time for 100,000), so the periodic comparison of elements is paced to at
// most 5% of the time; layout checks (0.2 ms) run at every tick, and a
// notification of a change to the sets compares at once. While this
// Backend's own Applies stream (less than 0.5 s apart: a ban storm, a fleet
// resync) the element comparison waits for them to pause, for at most 30 s
// since the last one: each Apply moves the generation, and comparing
// 100,000 elements on every tick of a storm took CPU from the storm itself.
// It is also written for memory (guardelems.go): each set is read first
// into sorted 16-byte keys (buffers sized from the last check's count),
// and the store's due bans then stream past them one at a time
// (BanSource.EachDue), each looked up by binary search and not kept.
// The dumps and the change notifications are read into buffers the Guard
// keeps and decoded in place: every element this host adds comes back as a
// notification (100,000 after a late join, 10,000 a second in a storm).
//
// Most checks read nothing at all. Every committed nf_tables transaction
// in the network namespace, by anyone, moves the kernel's ruleset
// generation (NFT_MSG_GETGEN): an element deleted, a set flushed, a table
// dropped, and our own Applies too. The only change to a set that commits
// nothing is an element timing out, and bans ending within a second are
// not looked for. So a check that finds the kernel's generation, the ban
// source's (VersionedBanSource: the store's, which moves after every write
// transaction) and the Setup generation where the last complete check
// found nothing to repair has nothing to compare, and reads neither the
// store nor the kernel: an idle host's reconcile costs one netlink round
// trip, and the store's pages stay cold. Anything that moved, the kernel
// above all, makes the check a full one, so the interval bound on finding
// damage holds without the notifications (TestGuardSkipsOnlyWhatDidNotChange
// deletes an element and flushes a set with the monitor off).
//
// # google/nftables v0.3.0 limits handled here
//
//   - A set-element list is one netlink attribute whose length is a uint16;
//     the library does not check it and silently wraps, so the kernel sees
//     fewer elements. Elements are sent in chunks small enough never to reach
//     64 KiB (see maxChunkSize).
//   - A batch is one sendmsg and every message in it is acknowledged; the
//     socket buffers are raised so large batches neither fail with "message
//     too long" nor lose acknowledgements (ENOBUFS), and a batch that would
//     still not fit is split into several.
//   - The library allocates anonymous set IDs from an unguarded package
//     variable; this package assigns every set ID itself so two Backends in
//     one process never race on it.
//   - The library's Monitor filters event types with an expression that
//     drops everything unless all types are asked for, and decodes every
//     element of every notification; Guard reads the notification socket
//     itself (monitor.go).
//   - GetSetElements decodes a dump into a SetElement (128 bytes, with its
//     own attribute decoders) per element: about 80 MB allocated to read a
//     set of 100,000, which Guard did every ~20 s. Guard reads its element
//     dumps itself into 16-byte keys (dumpKeys; a test compares it with
//     the library on real sets).
package nft
