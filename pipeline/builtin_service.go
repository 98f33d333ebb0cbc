package pipeline

// serviceFilters are the built-in filters for named, openvpn, apache and
// vsftpd.
func serviceFilters() []FilterSpec {
	return []FilterSpec{namedFilter(), openvpnFilter(), apacheFilter(), vsftpdFilter()}
}

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
	// names are the admin's.
	namedClient = `client (?:@0x[0-9A-Fa-f]+ )?<HOST>#\d+(?: \(\S+\))?: (?:view \S+: )?`
	// namedACL is the reason BIND 9.18+ appends to denials.
	namedACL = `(?: \([^()]*\))?`
)

// namedFilter is written from BIND 9's client log messages (categories
// security, queries and xfer-out).
//
// Deliberately not failures: "query failed (SERVFAIL)" and "lame server"
// lines (the remote side's fault, not the client's), and queries for other
// names or types (a resolver's ordinary traffic).
func namedFilter() FilterSpec {
	return FilterSpec{
		Name: "named",
		// named-*: tags an rsyslog imfile input may give the channel files
		// (named-queries, named-security).
		Programs: []string{"named", "named-*"},
		FailRegex: []string{
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied
			// client 192.0.2.7#41234: view external: query 'example.com/A/IN' denied
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/A/IN' denied (allow-query-cache did not match)
			namedPrefix + namedClient + `query(?: \(cache\))? '\S+' denied` + namedACL + `$`,
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): zone transfer 'example.com/AXFR/IN' denied
			namedPrefix + namedClient + `zone transfer '\S+/[AI]XFR/\S+' denied` + namedACL + `$`,
			// client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): update 'example.com/IN' denied
			namedPrefix + namedClient + `update '\S+' denied` + namedACL + `$`,
			// The seed's reflection flood (named.log, category queries):
			// 28-Jun-2013 15:40:23.888 info: client 67.220.66.3#40117: view external: query: 1rip.com IN ANY +E (192.168.11.242)
			// client @0x7f3a1c0d2168 192.0.2.7#40117 (isc.org): query: isc.org IN ANY +E(0)K (192.0.2.53)
			// Only for the configured domains: ANY queries for other names
			// are legitimate. Resolvers randomise the case (0x20), hence (?i).
			namedPrefix + namedClient + `query: (?i:<VAR:domains>)\.? IN ANY [+-]\S*(?: \(\S+\))?$`,
		},
		Vars: map[string][]string{
			// The domains seed 000's DNS server saw ANY floods for.
			"domains": {"ripe.net", "isc.org", "1rip.com"},
		},
	}
}

// OpenVPN pieces. A log file line starts with the time (2.4 and older:
// "Tue Jun 10 18:57:41 2014 ", 2.5+: "2024-06-10 18:57:41 "); syslog lines
// do not. A server prefixes per-client lines with the peer, "IP:port " or,
// once a certificate authenticated it, "CN/IP:port "; some versions print
// the address family ("[AF_INET]", "[AF_INET6]").
//
// The CN is the client's (certificate holder's) text and comes first, so
// it may be anything, "10.0.0.1:1 TLS Error: TLS handshake failed" included.
// Every pattern that binds the leading peer therefore ends in fixed text and
// $: the peer is the "IP:port" that the fixed tail follows at the end of the
// line, whatever the CN says. VERIFY ERROR ends in free text, so there the
// CN must be one word (ovpnPeerWord) and IgnoreRegex covers the rest.
const (
	ovpnTime     = `^(?:[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2} \d{4} |\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} )?`
	ovpnPeer     = `(?:.*/)?(?:\[AF_INET6?\])?<HOST>:\d+ `
	ovpnPeerWord = `(?:\S+/)?(?:\[AF_INET6?\])?<HOST>:\d+ `
	// ovpnAnyPeer is the optional prefix of lines whose peer is bound
	// elsewhere (after "from", at the end of the line).
	ovpnAnyPeer = `(?:(?:.*/)?(?:\[AF_INET6?\])?[0-9A-Fa-f.:]+:\d+ )?`
	ovpnFrom    = ` from (?:\[AF_INET6?\])?<HOST>:\d+$`
)

// openvpnFilter is written from the messages OpenVPN 2.x prints about
// peers that fail the TLS handshake, its HMAC/tls-crypt firewall, certificate
// or password checks, or that speak something else than OpenVPN to a TCP
// port.
//
// Deliberately not failures: "TLS key negotiation failed to occur within 60
// seconds" (always followed by "TLS handshake failed", so it would count
// twice) and the "TLS_ERROR: BIO read tls_read_plaintext error" lines that
// accompany a failed handshake.
func openvpnFilter() FilterSpec {
	return FilterSpec{
		Name: "openvpn",
		// ovpn-*: the name "--daemon NAME" and distribution units give.
		Programs: []string{"openvpn", "ovpn-*"},
		FailRegex: []string{
			// 176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695), which must be > 0 and <= 1560 -- please ensure that --tun-mtu or --link-mtu is equal on both peers -- this condition could also indicate a possible active attack on the TCP link -- [Attempting restart...]
			// A TCP peer sending non-OpenVPN bytes: port scanners and probes.
			ovpnTime + ovpnPeer + `WARNING: Bad encapsulated packet length from peer \(\d+\), which must be > 0 and <= \d+ -- please ensure that --tun-mtu or --link-mtu is equal on both peers(?: -- this condition could also indicate a possible active attack on the TCP link)?(?: -- \[Attempting restart\.\.\.\])?$`,
			// 192.0.2.7:51234 Connection reset, restarting [0]
			ovpnTime + ovpnPeer + `Connection reset, restarting \[-?\d+\]$`,
			// 192.0.2.7:51234 TLS Error: TLS handshake failed
			ovpnTime + ovpnPeer + `TLS Error: TLS handshake failed$`,
			// 192.0.2.7:51234 TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234
			// Packets without the tls-auth HMAC: the "from" address is
			// the packet's source, bound there; the prefix may be absent.
			ovpnTime + ovpnAnyPeer + `TLS Error: incoming packet authentication failed` + ovpnFrom,
			// TLS Error: tls-crypt unwrapping failed from [AF_INET]192.0.2.7:51234
			ovpnTime + ovpnAnyPeer + `TLS Error: tls-crypt unwrapping failed` + ovpnFrom,
			// TLS Error: cannot locate HMAC in incoming packet from [AF_INET]192.0.2.7:51234
			ovpnTime + ovpnAnyPeer + `TLS Error: cannot locate HMAC in incoming packet` + ovpnFrom,
			// 192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate has expired: CN=client1
			// The subject at the end is the peer's text; see IgnoreRegex.
			ovpnTime + ovpnPeerWord + `VERIFY ERROR: depth=\d+, error=.*$`,
			// 192.0.2.7:51234 TLS Auth Error: Auth Username/Password verification failed for peer
			ovpnTime + ovpnPeer + `TLS Auth Error: Auth Username/Password verification failed for peer$`,
		},
		IgnoreRegex: []string{
			// VERIFY ERROR ends in free text, so the trailing $ does not
			// protect it: a CN with spaces such as
			// "10.0.0.1:1 VERIFY ERROR: depth=0, error=x" would put a
			// second address first. A genuine line says VERIFY ERROR once.
			`^.* VERIFY ERROR: .* VERIFY ERROR: `,
		},
	}
}

// Apache error_log pieces. 2.2 writes
//
//	[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] File does not exist: /var/www/html/phpMyAdmin
//
// and 2.4 (default ErrorLogFormat)
//
//	[Thu Jun 09 10:11:12.123456 2011] [core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/phpMyAdmin
//
// Through syslog the time (and with some setups the level) is dropped, so
// the message may start at "[client". Everything before "[client" is
// daemon-written and matched field by field, never with .*, because the
// text after it (user names, paths, the Referer) is the client's and may
// read "[client 10.0.0.1]".
//
// The client field is "[client IP]" in 2.2 and "[client IP:port] AHnnnnn:"
// in 2.4. An IPv6 address followed by ":port" is ambiguous on its own
// (2001:db8::1:1234 is an address too), so the port is required exactly
// when the AH code follows, which tells the versions apart.
const (
	apacheTime   = `(?:\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4}\] )?`
	apacheLevel  = `(?:\[(?:[a-z0-9_]+:)?(?:emerg|alert|crit|error|warn|notice|info|debug|trace[1-8])\] )?`
	apachePid    = `(?:\[pid \d+(?::tid \d+)?\] )?`
	apacheSource = `(?:[a-z0-9_]+\.c\(\d+\): )?`            // %F at debug level
	apacheAPR    = `(?:\(\d+\)[^\[\]:]*: )?`                // %E, e.g. "(13)Permission denied: "
	apacheClient = `\[client <HOST>(?::\d+\] AH\d{5}:|\]) ` // see above
	apachePrefix = `^` + apacheTime + apacheLevel + apachePid + apacheSource + apacheAPR + apacheClient
	// apacheReferer is what Apache appends when the request had one.
	apacheReferer = `(?:, referer: .*)?`
)

// apacheFilter is written from the error_log messages of Apache httpd 2.2
// and 2.4 core, mod_cgi, mod_authz_core/mod_access_compat, mod_auth_basic
// and mod_auth_digest.
//
// Deliberately not failures: "File does not exist" for paths outside
// Vars["paths"] (browsers ask for favicon.ico, robots.txt and stale links
// all day) and "Directory index forbidden".
func apacheFilter() FilterSpec {
	return FilterSpec{
		Name: "apache",
		// apache-*, apache2-*, httpd-*: tags rsyslog imfile inputs give
		// error logs (apache-error, httpd-ssl-error).
		Programs: []string{"apache", "apache2", "httpd", "apache-*", "apache2-*", "httpd-*"},
		FailRegex: []string{
			// [Sat Jun 30 04:09:24 2012] [error] [client 118.142.43.102] File does not exist: /data/www/html/phpMyAdmin-2.8.3
			// [core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/wp-login.php
			// Only probes: the path's last component (Apache stops at the
			// first missing one) is a listed name, alone or followed by a
			// version or extension. [^,] keeps the match out of the
			// Referer, which a third party's page chooses.
			apachePrefix + `File does not exist: (?:[^,]*/)?(?i:<VAR:paths>)(?:[-._][^/,]*)?` + apacheReferer + `$`,
			// [error] [client 192.0.2.7] script not found or unable to stat: /var/www/cgi-bin/php5
			// [cgi:error] [pid 123] [client 192.0.2.7:51234] AH01264: script not found or unable to stat: /usr/lib/cgi-bin/php
			apachePrefix + `script not found or unable to stat: .*$`,
			// [error] [client 192.0.2.7] client denied by server configuration: /var/www/private
			// [authz_core:error] [pid 123] [client 192.0.2.7:51234] AH01630: client denied by server configuration: /var/www/private
			apachePrefix + `client denied by server configuration: .*$`,
			// [error] [client 192.0.2.7] user admin not found: /private
			// [auth_basic:error] [pid 123] [client 192.0.2.7:51234] AH01618: user admin not found: /private
			// [error] [client 192.0.2.7] Digest: user `bob' in realm `private' not found: /private
			// [auth_digest:error] [pid 123] [client 192.0.2.7:51234] AH01790: user `bob' in realm `private' not found: /private
			apachePrefix + `(?:Digest: )?user .* not found: .*$`,
			// [error] [client 192.0.2.7] user bob: authentication failure for "/private": Password Mismatch
			// [auth_basic:error] [pid 123] [client 192.0.2.7:51234] AH01617: user bob: authentication failure for "/private": Password Mismatch
			apachePrefix + `user .*: authentication failure for ".*": Password Mismatch` + apacheReferer + `$`,
			// [error] [client 192.0.2.7] Digest: user bob: password mismatch: /private
			apachePrefix + `(?:Digest: )?user .*: password mismatch: .*$`,
		},
		Vars: map[string][]string{
			// Admin tools and logins scanners probe for, from seed 000's
			// list; matched case-insensitively, so "pma" covers "PMA".
			"paths": {
				"phpmyadmin", "phpmyadmin2", "pma", "pma2005", "pma2006", "myadmin",
				"mysqladmin", "mysql-admin", "mysqlmanager", "sqlmanager", "sqlweb",
				"websql", "webdb", "webadmin", "dbadmin", "admin", "administrator",
				"wp-login.php", "wp-admin", "xmlrpc.php", "roundcube", "roundcubemail",
			},
		},
	}
}

// vsftpdFilter is written from vsftpd's own log line (vsftpd.log, or
// syslog with syslog_enable=YES) and what pam_unix logs for the vsftpd
// service.
//
// Deliberately not failures: "pam_unix(vsftpd:auth): check pass; user
// unknown" and pam_listfile refusals (no address in them; the FAIL LOGIN
// line of the same attempt carries it).
func vsftpdFilter() FilterSpec {
	return FilterSpec{
		Name:     "vsftpd",
		Programs: []string{"vsftpd"},
		FailRegex: []string{
			// pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=192.0.2.7  user=bob
			// Unlike sshd, vsftpd passes the FTP user name as ruser, which
			// comes before rhost and again as user after it. Both are
			// \S*: a name with spaces ("x rhost=10.0.0.1  user=x") could
			// otherwise put a forged rhost first; such a line is missed
			// rather than pinned on someone else (the FAIL LOGIN line of
			// the same attempt still counts).
			`^pam_unix\(vsftpd:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=\S*)?$`,
			// [pid 1234] [bob] FAIL LOGIN: Client "192.0.2.7"
			// Sat Jun 11 10:11:12 2011 [pid 1234] [bob] FAIL LOGIN: Client "::ffff:192.0.2.7"
			// The user name is the client's and may hold `] FAIL LOGIN:
			// Client "10.0.0.1`; the peer is the quoted address that ends
			// the line.
			`^(?:[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2} \d{4} )?\[pid \d+\] \[.*\] FAIL LOGIN: Client "<HOST>"$`,
		},
	}
}
