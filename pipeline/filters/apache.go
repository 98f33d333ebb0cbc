package filters

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
	apacheLevel  = `(?:\[(?:[a-z0-9_]*:)?(?:emerg|alert|crit|error|warn|notice|info|debug|trace[1-8])\] )?`
	apachePid    = `(?:\[pid \d+(?::tid \d+)?\] )?`
	apacheSource = `(?:[a-z0-9_]+\.c\(\d+\): )?` // %F at debug level
	apacheAPR    = `(?:\(\d+\)[^\[\]:]*: )?`     // %E, e.g. "(13)Permission denied: "
	// "[remote IP:port]": 2.4 (log.c) writes "remote" instead of "client"
	// for a connection without a scoreboard handle, as mod_http2's stream
	// connections are; their address is the client's. Proxy backend
	// connections are the other case: they log no request-side failure.
	apacheClient = `\[(?:client|remote) <HOST>(?::\d+\] AH\d{5}:|\]) ` // see above
	apachePrefix = `^` + apacheTime + apacheLevel + apachePid + apacheSource + apacheAPR + apacheClient
	// apacheReferer is what Apache appends when the request had one.
	apacheReferer = `(?:, referer: .*)?`
)

// apache is written from the error_log messages of Apache httpd 2.2
// and 2.4 core, mod_cgi, mod_authz_core/mod_access_compat, mod_auth_basic
// and mod_auth_digest.
//
// Deliberately not failures: "File does not exist" for paths outside
// Vars["paths"] (browsers ask for favicon.ico, robots.txt and stale links
// all day) and "Directory index forbidden".
func apache() Spec {
	return Spec{
		Name:    "apache",
		Trust:   Trust{Users: []string{"root", "www-data", "apache"}, Units: []string{"apache2.service", "httpd.service"}},
		Summary: "admin-path probes, missing scripts, denied clients, basic/digest auth failures",
		// apache-*, apache2-*, httpd-*: tags rsyslog imfile inputs give
		// error logs (apache-error, httpd-ssl-error).
		// httpd/NAME: ErrorLog "syslog:local1" with a tag per virtual host.
		Programs: []string{"apache", "apache2", "httpd", "apache-*", "apache2-*", "httpd-*", "httpd/*", "apache2/*"},
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
			// [error] [client 192.0.2.7] script '/var/www/timthumb.php' not found or unable to stat   (2.2's older mod_cgi and PHP handlers)
			// The path is the client's; Apache's words end the line.
			apachePrefix + `script '.*' not found or unable to stat$`,
			// [cgi:error] [pid 123:tid 123] [client 192.0.2.7:51234] AH02811: stderr from /usr/lib/cgi-bin/nothere.cgi: script not found or unable to stat   (2.4, Debian 12's 2.4.6x)
			// The same event in mod_cgi's newer wording: the file name
			// first, Apache's reason last. The file name is mapped from the
			// client's URL (it may hold ": "), so the reason is bound to
			// the end of the line; the host is bound by apachePrefix.
			apachePrefix + `stderr from /.*: script not found or unable to stat$`,
			// [proxy_fcgi:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01071: Got error 'Primary script unknown'
			// [proxy_fcgi:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01071: Got error 'Primary script unknown\n'
			// (2.4 with PHP-FPM.) The same event as AH01264 when the scripts
			// run under FPM: FPM's answer for a PHP file that is not there.
			// The text is FPM's, bound to the end of the line.
			apachePrefix + `Got error 'Primary script unknown(?:\\n)?'` + apacheReferer + `$`,
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
			// [auth_basic:error] [pid 123] [client 192.0.2.7:51234] AH01614: client used wrong authentication scheme: /private
			// [auth_digest:error] [pid 123] [client 192.0.2.7:51234] AH01788: realm mismatch - got `admin' but expected `private'
			// [auth_digest:error] [pid 123] [client 192.0.2.7:51234] AH01776: invalid nonce abc received - hash is not def
			// [authnz_ldap:info] [pid 123] [client 192.0.2.7:51234] AH01695: auth_ldap authenticate: user bob authentication failed; URI /private [ldap_search_ext_s() for user failed][No such object]
			// Leftmost rule: realms, nonces, user names and URIs follow the client.
			// [auth_digest:error] [pid 123] [client 192.0.2.7:51234] AH01789: unknown algorithm `x' received: /private
			// [auth_digest:error] [pid 123] [client 192.0.2.7:51234] AH01793: invalid qop `auth' received: /private
			// [error] [client 192.0.2.7] Digest: invalid nonce abc received - length is not 52
			// [auth_digest:error] [pid 123] [client 192.0.2.7:51234] AH01775: invalid nonce abc received - length is not 52
			// An invalid nonce hash (AH01776) is left out: browsers send one
			// after the server restarts with a new secret; so is "user
			// attempted time travel" (AH01777), a valid nonce after the
			// server's clock stepped back. A nonce of the wrong length was
			// never one this server issued.
			apachePrefix + `(?:client used wrong authentication scheme: |(?:Digest: )?realm mismatch - got |(?:Digest: )?unknown algorithm |(?:Digest: )?invalid qop |(?:Digest: )?invalid nonce .* received - length is not |auth_ldap authenticate: user \S.* authentication failed; URI ).*$`,
			// [error] [client 192.0.2.7] Authorization of user bob to access /private/x failed, reason: file owner alice does not match.
			// [authz_owner:error] [pid 123] [client 192.0.2.7:51234] AH01637: Authorization of user bob to access /x failed, reason: ...
			// [authz_core:error] [pid 123] [client 192.0.2.7:51234] AH01631: user bob: authorization failure for "/private":
			// A user refused what the server's rules keep from them.
			apachePrefix + `(?:Authorization of user .* to access .* failed, reason: |user .*: authorization failure for ").*$`,
		},
		Modes: map[string][]string{
			"aggressive": {
				// [core:error] [pid 123] [client 192.0.2.7:51234] AH00126: Invalid URI in request GET /../../etc/passwd HTTP/1.1
				// [core:error] [pid 123] [client 192.0.2.7:51234] AH10244: invalid URI path (/cgi-bin/.%2e/.%2e/bin/sh)   (2.4.49+)
				// [core:error] [pid 123] [client 192.0.2.7:51234] AH00135: Invalid method in request \x16\x03\x01
				// Request lines no browser sends: TLS spoken to the HTTP
				// port, path traversal. Leftmost rule: the request follows.
				apachePrefix + `(?:Invalid URI in request |invalid URI path \(|Invalid method in request ).*$`,
			},
		},
		Vars: map[string][]string{
			// Admin tools and logins scanners probe for, as an Apache 2.2
			// host on CentOS 5 saw them; matched case-insensitively, so "pma" covers "PMA".
			"paths": {
				"phpmyadmin", "phpmyadmin2", "pma", "pma2005", "pma2006", "myadmin",
				"mysqladmin", "mysql-admin", "mysqlmanager", "sqlmanager", "sqlweb",
				"websql", "webdb", "webadmin", "dbadmin", "admin", "administrator",
				"wp-login.php", "wp-admin", "xmlrpc.php", "roundcube", "roundcubemail",
			},
		},
	}
}
