// Package pipeline turns parsed syslog messages into ban decisions.
//
// Its one job: route each sysban.Message by program to the filters that care
// about it, match the text against those filters' anchored patterns to find
// the offending address, count failures per address per jail in a sliding
// findtime window, and when an address reaches maxretry hand a sysban.Ban to
// the next link of the ban chain (a sysban.Applier: the store's Journal,
// which passes them on to nft) in batches. A ban is announced (the "ban"
// log line, TotalBanned, CurrentlyBanned) only once the Applier took it,
// that is once it is in the store (worker.go announce); until then it sits
// in a bounded queue whose depth Stats.Queued reports, and already makes
// further failures of its address "already banned".
//
// A filter (FilterSpec, declared in package filters, where the built-in
// ones live one to a file) is data: programs, failregexes with <HOST> and
// <VAR:name> placeholders, ignoreregexes, modes (extra failregexes a jail
// can select, like sshd's "ddos") and correlations: failures told by two
// lines with a common key (sendmail's queue id, sshd's pid), other lines in
// between. A hostname where <HOST> stands is resolved off the hot path
// (JailSpec.UseDNS) and never banned unless it resolves. The Tester runs
// filters exactly as the daemon does, without jails or bans, for `sysban
// test` and the annotated samples in filters/testdata/.
//
// The path of one line, file by file: routes.go maps the message's
// program to the filters that read it and the jails they feed (built from
// the config, swapped whole on Reload); match.go runs a filter over the
// text (failregexes behind the literal prefilter of prefilter.go, whose
// literals needle.go finds, then ignoreregexes, then correlations, whose
// pending opens live in correlate.go) and returns one result naming the
// pattern that decided;
// pipeline.go's Handle counts a failure in each jail (jail.go), and a
// decided ban goes to the worker (worker.go) that hands batches to the
// next stage. filter.go and pattern.go compile a FilterSpec; the built-in
// specs are package filters, their annotated samples filters/testdata.
//
// Provenance (provenance.go): a filter declares whom it trusts (users,
// executables, systemd units); a failure whose Message.Origin is vouched
// for and not one of those is dropped and counted as untrusted, and with
// JailSpec.Provenance "require" so is one whose origin nobody vouches
// for. Only failures are checked, never the rest of the traffic.
//
// Repeat offenders: a jail's BanIncrement lengthens the ban of an address
// banned before in that jail (the count comes from an OffenceCounter, the
// store's ban history, asked only when a ban is decided), and jails whose
// filter is RecidiveFilter count the bans the other jails applied instead
// of log lines, banning addresses that keep coming back.
//
// The rules a filter or jail spec must follow are in validate.go
// (ValidateFilter, ValidateJail, and Filters, the one merge of built-in and
// user filters): New and Validate apply them, and the config loader asks
// the same functions and puts the file and key in front of their reasons.
//
// The jail's rule (jail.go: maxretry failures within findtime) is kept apart
// from the bounded table it counts in (addrtable.go: hash index, LRU order,
// failure rings; addrtable_lines.go: the byte ring of failure lines).
// A jail counts and bans by network prefix (JailSpec.IPv6Prefix, a /64 by
// default in the config): jailprefix.go holds the key mask and the bans of
// other lengths; control.go's narrow keeps a prefix ban off protected
// addresses; escalate.go bans the network around several prefix bans.
//
// Data flows one way (receiver -> pipeline -> store -> nft); Pipeline
// implements the receiver's Handler and needs only a sysban.Applier from the
// next stage. Memory is bounded: routing caches, tracked addresses per jail
// (a pointer-free record of 40 bytes each), the failure lines they keep (a
// byte ring per jail shard), pending multi-line opens, the DNS queue and
// cache and the ban queue all have fixed limits, because every byte of input
// comes from the network.
package pipeline
