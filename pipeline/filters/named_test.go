package filters_test

import (
	"testing"
)

func TestNamedFilter(t *testing.T) {
	runCases(t, "named", "", []lineCase{
		// Denied queries and transfers, syslog form, BIND 9.10+ and older.
		{"query cache denied ptr", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied", "192.0.2.7"},
		{"query cache denied no ptr", "named", "client 192.0.2.7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied", "192.0.2.7"},
		{"query denied old", "named", "client 192.0.2.7#41234: query 'example.com/A/IN' denied", "192.0.2.7"},
		{"query denied view", "named", "client 192.0.2.7#41234: view external: query (cache) 'example.com/A/IN' denied", "192.0.2.7"},
		{"query denied acl reason", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/A/IN' denied (allow-query-cache did not match)", "192.0.2.7"},
		{"query denied ipv6", "named", "client @0x7f3a1c0d2168 2001:db8::7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied", "2001:db8::7"},
		{"query denied category severity", "named", "security: info: client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied", "192.0.2.7"},
		{"zone transfer denied", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): zone transfer 'example.com/AXFR/IN' denied", "192.0.2.7"},
		{"zone transfer denied old", "named", "client 192.0.2.7#41234: zone transfer 'example.com/AXFR/IN' denied", "192.0.2.7"},
		{"ixfr denied", "named", "client 192.0.2.7#41234 (example.com): zone transfer 'example.com/IXFR/IN' denied", "192.0.2.7"},
		{"update denied", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): update 'example.com/IN' denied", "192.0.2.7"},
		// Denials in the log-file form, forwarded by rsyslog imfile.
		{"file form denied", "named", "09-Jun-2011 10:11:12.123 client 192.0.2.7#41234: query (cache) 'x/ANY/IN' denied", "192.0.2.7"},
		{"file form category severity", "named", "09-Jun-2011 10:11:12.123 security: info: client @0x7f3a1c0d2168 192.0.2.7#41234 (x): query (cache) 'x/ANY/IN' denied", "192.0.2.7"},
		{"file form debug level", "named", "09-Jun-2011 10:11:12.123 xfer-out: debug 3: client 192.0.2.7#41234 (example.com): zone transfer 'example.com/AXFR/IN' denied", "192.0.2.7"},
		{"imfile tag glob", "named-security", "09-Jun-2011 10:11:12.123 client 192.0.2.7#41234: query (cache) 'x/ANY/IN' denied", "192.0.2.7"},

		// BIND 9.3's (CentOS 5) ANY flood for the configured domains.
		{"9.3 flood file form", "named", "28-Jun-2013 15:40:23.888 info: client 67.220.66.3#40117: view external: query: 1rip.com IN ANY +E (192.168.11.242)", "67.220.66.3"},
		{"flood isc.org 9.10", "named", "client @0x7f3a1c0d2168 192.0.2.7#40117 (isc.org): query: isc.org IN ANY +E(0)K (192.0.2.53)", "192.0.2.7"},
		{"flood ripe.net syslog", "named", "client 192.0.2.7#40117 (ripe.net): query: ripe.net IN ANY +ED (192.0.2.53)", "192.0.2.7"},
		{"flood 0x20 case", "named", "client 192.0.2.7#40117 (IsC.oRg): query: IsC.oRg IN ANY +E(0) (192.0.2.53)", "192.0.2.7"},
		{"flood category", "named", "28-Jun-2013 15:40:23.888 queries: info: client @0x7f3a1c0d2168 192.0.2.7#40117 (isc.org): query: isc.org IN ANY +E(0)K (192.0.2.53)", "192.0.2.7"},

		// Benign lines.
		{"query other domain any", "named", "client @0x7f3a1c0d2168 192.0.2.7#40117 (example.com): query: example.com IN ANY +E(0)K (192.0.2.53)", ""},
		{"query listed domain A", "named", "client @0x7f3a1c0d2168 192.0.2.7#40117 (isc.org): query: isc.org IN A +E(0)K (192.0.2.53)", ""},
		{"subdomain of listed domain", "named", "client 192.0.2.7#40117 (www.isc.org): query: www.isc.org IN ANY +E (192.0.2.53)", ""},
		{"domain suffix trick", "named", "client 192.0.2.7#40117 (notisc.org): query: notisc.org IN ANY +E (192.0.2.53)", ""},
		{"transfer started", "named", "client @0x7f3a1c0d2168 192.0.2.8#53 (example.com): transfer of 'example.com/IN': AXFR started (serial 2024010101)", ""},
		{"lame server", "named", "lame-servers: info: lame server resolving 'example.net' (in 'example.net'?): 192.0.2.9#53", ""},
		{"query failed", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query failed (SERVFAIL) for example.com/IN/A at query.c:5871", ""},
		{"zone loaded", "named", "zone example.com/IN: loaded serial 2024010101", ""},
		{"wrong program", "sshd", "client 192.0.2.7#41234: query (cache) 'x/ANY/IN' denied", ""},
		{"empty", "named", "", ""},

		// Hostile: the query name is the client's.
		{"query name with host", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (10.0.0.1#53): query (cache) '10.0.0.1#53/ANY/IN' denied", "192.0.2.7"},
		{"query name fake client", "named", "client 192.0.2.7#41234 (client): query (cache) 'client\\03210.0.0.1#53:/A/IN' denied", "192.0.2.7"},
		{"query name quote trick", "named", "client 192.0.2.7#41234 (x'): query (cache) 'x'/A/IN' denied", "192.0.2.7"},
		{"flood name with host", "named", "client 192.0.2.7#40117 (10.0.0.1#53): query: 10.0.0.1#53 IN ANY +E (192.0.2.53)", ""},
		{"no client prefix", "named", "query (cache) 'client 10.0.0.1#53/ANY/IN' denied", ""},
		{"trailing garbage", "named", "client 192.0.2.7#41234: query (cache) 'x/ANY/IN' denied client 10.0.0.1#53", ""},
	})
}
