package filters

// BIND writes the same client lines to syslog and to its own channel files;
// a file line forwarded by rsyslog imfile keeps the file's prefix, so the
// prefix is optional. print-time gives "28-Jun-2013 15:40:23.888 ",
// print-category and print-severity give up to two "word: " fields
// ("queries: info: ", "debug 3: "). All of it is daemon-written and comes
// before "client", so the host right after it is the one BIND wrote.
const (
	namedPrefix = `^(?:\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)? )?(?:[a-z][a-z0-9_-]*(?: \d+)?: ){0,2}`
	// namedClient is the peer: BIND 9.10+ prints the client object's
	// address ("@0x7f..."), 9.9+ the query name in parentheses. Names are
	// printed escaped and never contain spaces, so \S bounds them even
	// when the attacker writes "10.0.0.1#53" into the query name. View
	// names are the admin's. A request whose TSIG verified carries
	// "/key NAME" after the port (9.11-9.20 ns_client_logv): a key this
	// server holds, printed escaped like the query name.
	namedClient = `client (?:@0x[0-9A-Fa-f]+ )?<HOST>#\d+(?:/key \S+)?(?: \(\S+\))?: (?:view \S+: )?`
	// namedACL is the reason BIND 9.18+ appends to denials.
	namedACL = `(?: \([^()]*\))?`
)

// named is written from BIND 9's client log messages (categories
// security, queries and xfer-out).
//
// Deliberately not failures: "query failed (SERVFAIL)" and "lame server"
// lines (the remote side's fault, not the client's), and queries for other
// names or types (a resolver's ordinary traffic).
func named() Spec {
	return Spec{
		Name:    "named",
		Trust:   Trust{Users: []string{"root", "bind", "named"}, Exes: []string{"named"}, Units: []string{"named.service", "bind9.service"}},
		Summary: "denied queries/transfers/updates, ANY floods for listed domains",
		// named-*: tags an rsyslog imfile input may give the channel files
		// (named-queries, named-security).
		Programs: []string{"named", "named-*"},
		FailRegex: []string{
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied
			// client 192.0.2.7#41234: view external: query 'example.com/A/IN' denied
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/A/IN' denied (allow-query-cache did not match)
			// client 192.0.2.7#1036: query (cache) denied   (BIND 9.2, RHEL 4: no query name)
			namedPrefix + namedClient + `query(?: \(cache\))?(?: '\S+')? denied` + namedACL + `$`,
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): zone transfer 'example.com/AXFR/IN' denied
			namedPrefix + namedClient + `zone transfer '\S+/[AI]XFR/\S+' denied` + namedACL + `$`,
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): update 'example.com/IN' denied
			// client 192.0.2.7#41234: update forwarding 'example.com/IN' denied
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): update 'example.com/IN' denied due to allow-query
			// client @0x7f3a1c0d2168 192.0.2.7#41234/key ddns-key (host.example.com): update 'example.com/IN' denied
			// The last (9.11-9.20 update.c) is an update from a client the
			// zone does not even answer; the update ACL is not checked
			// after it, so it is the attempt's only line.
			namedPrefix + namedClient + `update(?: forwarding)? '\S+' denied(?: due to allow-query)?` + namedACL + `$`,
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.net): bad zone transfer request: 'example.net/IN': non-authoritative zone (NOTAUTH)
			// A transfer asked of a zone this server does not serve: a scanner.
			namedPrefix + namedClient + `bad zone transfer request: '\S+': non-authoritative zone \(NOTAUTH\)$`,
			// A reflection flood as BIND 9.3 on CentOS 5 logged it (named.log,
			// category queries):
			// 28-Jun-2013 15:40:23.888 info: client 67.220.66.3#40117: view external: query: 1rip.com IN ANY +E (192.168.11.242)
			// client @0x7f3a1c0d2168 192.0.2.7#40117 (isc.org): query: isc.org IN ANY +E(0)K (192.0.2.53)
			// Only for the configured domains: ANY queries for other names
			// are legitimate. Resolvers randomise the case (0x20), hence (?i).
			namedPrefix + namedClient + `query: (?i:<VAR:domains>)\.? IN ANY [+-]\S*(?: \(\S+\))?$`,
		},
		Vars: map[string][]string{
			// The domains a BIND 9.3 server on CentOS 5 saw ANY floods for.
			"domains": {"ripe.net", "isc.org", "1rip.com"},
		},
	}
}
