package pipeline

import (
	"strings"
	"testing"

	"github.com/sysban/sysban"
)

// serviceCase is one line through one built-in service filter. host "" means
// the line must not count as a failure (no pattern matched, or an
// ignoreregex vetoed it).
type serviceCase struct {
	name, prog, line, host string
}

// runServiceCases runs cases through the built-in filter alone, as the
// daemon routes and matches them, and through the compiled filter without
// the literal prefilter, which must not change any verdict.
func runServiceCases(t *testing.T, filter string, cases []serviceCase) {
	t.Helper()
	spec, ok := BuiltinFilters()[filter]
	if !ok {
		t.Fatalf("no built-in filter %q", filter)
	}
	tester, err := NewTester([]FilterSpec{spec}, TesterOptions{})
	if err != nil {
		t.Fatalf("NewTester(%s): %v", filter, err)
	}
	f, err := CompileFilter(spec)
	if err != nil {
		t.Fatalf("CompileFilter(%s): %v", filter, err)
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			for _, m := range tester.Test(&sysban.Message{AppName: tt.prog, Text: tt.line}) {
				if m.Filter == filter && !m.Ignored && !m.Pending {
					got = m.Host
				}
			}
			if got != tt.host {
				t.Errorf("%s %q: host %q, want %q", tt.prog, tt.line, got, tt.host)
			}
			if !f.Wants(tt.prog) {
				return
			}
			text := strings.TrimRight(tt.line, " \t\r\n")
			slow := f.match(text, false)
			slowHost := ""
			if slow.pattern >= 0 && slow.ignore < 0 {
				slowHost = slow.host
			}
			if slowHost != got {
				t.Errorf("%q: without prefilter host %q, with %q", tt.line, slowHost, got)
			}
		})
	}
}

func TestNamedFilter(t *testing.T) {
	runServiceCases(t, "named", []serviceCase{
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

		// The seed's ANY flood for the configured domains.
		{"seed flood file form", "named", "28-Jun-2013 15:40:23.888 info: client 67.220.66.3#40117: view external: query: 1rip.com IN ANY +E (192.168.11.242)", "67.220.66.3"},
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

func TestOpenVPNFilter(t *testing.T) {
	const badLen = "WARNING: Bad encapsulated packet length from peer (36695), which must be > 0 and <= 1560 -- please ensure that --tun-mtu or --link-mtu is equal on both peers -- this condition could also indicate a possible active attack on the TCP link -- [Attempting restart...]"
	runServiceCases(t, "openvpn", []serviceCase{
		{"bad length seed file form", "openvpn", "Tue Jun 10 18:57:41 2014 176.114.32.92:3509 " + badLen, "176.114.32.92"},
		{"bad length syslog", "openvpn", "58.60.243.60:26629 " + badLen, "58.60.243.60"},
		{"bad length short", "openvpn", "192.0.2.7:51234 WARNING: Bad encapsulated packet length from peer (5635), which must be > 0 and <= 1627 -- please ensure that --tun-mtu or --link-mtu is equal on both peers", "192.0.2.7"},
		{"bad length iso time", "openvpn", "2024-06-10 18:57:41 192.0.2.7:51234 " + badLen, "192.0.2.7"},
		{"connection reset", "openvpn", "192.0.2.7:51234 Connection reset, restarting [0]", "192.0.2.7"},
		{"connection reset file form", "openvpn", "Tue Jun 10 19:00:43 2014 192.0.2.7:51234 Connection reset, restarting [0]", "192.0.2.7"},
		{"connection reset minus one", "ovpn-server", "192.0.2.7:51234 Connection reset, restarting [-1]", "192.0.2.7"},
		{"handshake failed", "openvpn", "192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"handshake failed af_inet", "openvpn", "[AF_INET]192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"handshake failed cn", "openvpn", "client1/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"handshake failed ipv6", "openvpn", "2001:db8::7:51234 TLS Error: TLS handshake failed", "2001:db8::7"},
		{"handshake failed mapped", "openvpn", "[AF_INET6]::ffff:192.0.2.7:51234 TLS Error: TLS handshake failed", "::ffff:192.0.2.7"},
		{"hmac auth failed", "openvpn", "192.0.2.7:51234 TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"hmac auth failed no prefix", "openvpn", "TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"hmac auth failed v6", "openvpn", "TLS Error: incoming packet authentication failed from [AF_INET6]2001:db8::7:1194", "2001:db8::7"},
		{"hmac auth failed old", "openvpn", "TLS Error: incoming packet authentication failed from 192.0.2.7:51234", "192.0.2.7"},
		{"tls-crypt", "openvpn", "TLS Error: tls-crypt unwrapping failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"tls-crypt iso time", "openvpn", "2024-06-10 18:57:41 TLS Error: tls-crypt unwrapping failed from [AF_INET6]2001:db8::7:51234", "2001:db8::7"},
		{"no hmac", "openvpn", "TLS Error: cannot locate HMAC in incoming packet from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"verify error", "openvpn", "192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate has expired: CN=client1", "192.0.2.7"},
		{"verify error old subject", "openvpn", "192.0.2.7:51234 VERIFY ERROR: depth=1, error=unable to get local issuer certificate: /C=US/O=x/CN=ca", "192.0.2.7"},
		{"auth user pass", "openvpn", "192.0.2.7:51234 TLS Auth Error: Auth Username/Password verification failed for peer", "192.0.2.7"},

		// Benign lines.
		{"peer connection initiated", "openvpn", "192.0.2.7:51234 [client1] Peer Connection Initiated with [AF_INET]192.0.2.7:51234", ""},
		{"tls key negotiation", "openvpn", "192.0.2.7:51234 TLS Error: TLS key negotiation failed to occur within 60 seconds (check your network connectivity)", ""},
		{"verify ok", "openvpn", "192.0.2.7:51234 VERIFY OK: depth=0, CN=client1", ""},
		{"init complete", "openvpn", "Initialization Sequence Completed", ""},
		{"wrong program", "sshd", "192.0.2.7:51234 TLS Error: TLS handshake failed", ""},

		// Hostile: the CN and certificate subject are the client's.
		{"cn with host", "openvpn", "10.0.0.1:1194/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"cn with slash and host", "openvpn", "x/10.0.0.1:1/192.0.2.7:51234 Connection reset, restarting [0]", "192.0.2.7"},
		{"cn with spaces", "openvpn", "10.0.0.1:1 TLS Error: TLS handshake failed/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"cn with client tag", "openvpn", "[client 10.0.0.1]/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"cn with spaces verify", "openvpn", "my client/192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=my client", ""},
		{"cn faking verify", "openvpn", "10.0.0.1:1 VERIFY ERROR: depth=0, error=x/192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=x", ""},
		{"subject with host", "openvpn", "192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=from [AF_INET]10.0.0.1:1", "192.0.2.7"},
		{"from trailing garbage", "openvpn", "TLS Error: tls-crypt unwrapping failed from [AF_INET]192.0.2.7:51234 from [AF_INET]10.0.0.1:1", ""},
		{"cn before from", "openvpn", "x from [AF_INET]10.0.0.1:1/192.0.2.7:51234 TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
	})
}

func TestApacheFilter(t *testing.T) {
	const t24 = "[Thu Jun 09 10:11:12.123456 2011] "
	runServiceCases(t, "apache", []serviceCase{
		// 2.2 error_log (seed 000) and the same through syslog.
		{"seed phpMyAdmin version", "httpd", "[Sat Jun 30 04:09:24 2012] [error] [client 118.142.43.102] File does not exist: /data/www/html/phpMyAdmin-2.8.3", "118.142.43.102"},
		{"seed admin", "httpd", "[Tue Nov 29 10:50:12 2011] [error] [client 188.40.53.213] File does not exist: /data/www/html/admin", "188.40.53.213"},
		{"2.2 syslog no date", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/pma", "192.0.2.7"},
		{"2.2 bare client", "apache2", "[client 192.0.2.7] File does not exist: /var/www/html/wp-login.php", "192.0.2.7"},
		{"2.2 referer", "apache2", "[client 192.0.2.7] File does not exist: /var/www/html/PMA, referer: http://example.com/", "192.0.2.7"},
		{"2.2 ipv6", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 2001:db8::7] File does not exist: /var/www/html/phpmyadmin", "2001:db8::7"},
		{"2.2 script not found", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] script not found or unable to stat: /var/www/cgi-bin/php5", "192.0.2.7"},
		{"2.2 client denied", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] client denied by server configuration: /var/www/private", "192.0.2.7"},
		{"2.2 user not found", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] user admin not found: /private", "192.0.2.7"},
		{"2.2 password mismatch", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] user bob: authentication failure for \"/private\": Password Mismatch", "192.0.2.7"},
		{"2.2 digest not found", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] Digest: user `bob' in realm `private' not found: /private", "192.0.2.7"},
		{"2.2 digest mismatch", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] Digest: user bob: password mismatch: /private", "192.0.2.7"},

		// 2.4 error_log and through syslog.
		{"2.4 file does not exist", "apache2", t24 + "[core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/phpMyAdmin", "192.0.2.7"},
		{"probe not last component", "apache2", t24 + "[core:info] [pid 123] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/myadmin/index.php", ""},
		{"2.4 syslog", "apache2", "[core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/mysqladmin", "192.0.2.7"},
		{"2.4 bare client", "apache-error", "[client 192.0.2.7:51234] AH00128: File does not exist: /srv/www/wp-admin", "192.0.2.7"},
		{"2.4 ipv6 port", "apache2", t24 + "[core:info] [pid 123:tid 456] [client 2001:db8::7:1234] AH00128: File does not exist: /var/www/html/pma", "2001:db8::7"},
		{"2.4 script not found", "apache2", t24 + "[cgi:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01264: script not found or unable to stat: /usr/lib/cgi-bin/php", "192.0.2.7"},
		{"2.4 client denied", "apache2", t24 + "[authz_core:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01630: client denied by server configuration: /var/www/private", "192.0.2.7"},
		{"2.4 access_compat denied", "apache2", t24 + "[access_compat:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01797: client denied by server configuration: /var/www/private", "192.0.2.7"},
		{"2.4 user not found", "apache2", t24 + "[auth_basic:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01618: user admin not found: /private", "192.0.2.7"},
		{"2.4 password mismatch", "apache2", t24 + "[auth_basic:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01617: user bob: authentication failure for \"/private\": Password Mismatch", "192.0.2.7"},
		{"2.4 password mismatch referer", "apache2", t24 + "[auth_basic:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01617: user bob: authentication failure for \"/private\": Password Mismatch, referer: https://example.com/", "192.0.2.7"},
		{"2.4 digest not found", "apache2", t24 + "[auth_digest:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01790: user `bob' in realm `private' not found: /private", "192.0.2.7"},
		{"2.4 apr error", "apache2", t24 + "[core:error] [pid 123:tid 456] (13)Permission denied: [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/admin", "192.0.2.7"},

		// Benign lines.
		{"favicon", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] File does not exist: /var/www/html/favicon.ico", ""},
		{"robots 2.4", "apache2", t24 + "[core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/robots.txt", ""},
		{"admin as prefix of word", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/administrivia", ""},
		{"admin directory with missing file", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/admin/html/logo.png", ""},
		{"directory index", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] Directory index forbidden by Options directive: /var/www/html/", ""},
		{"notice", "httpd", "[Thu Jun 09 10:11:12 2011] [notice] Apache/2.2.15 (Unix) DAV/2 configured -- resuming normal operations", ""},
		{"2.4 mpm", "apache2", t24 + "[mpm_event:notice] [pid 123:tid 456] AH00489: Apache/2.4.57 (Debian) configured -- resuming normal operations", ""},
		{"wrong program", "sshd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/pma", ""},

		// Hostile: paths, user names and the Referer are the client's.
		{"path with client tag", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/[client 10.0.0.1] File does not exist: /var/www/html/pma", "192.0.2.7"},
		{"user with client tag", "httpd", "[error] [client 192.0.2.7] user [client 10.0.0.1] user x not found: /private", "192.0.2.7"},
		{"user with client tag 2.4", "apache2", t24 + "[auth_basic:error] [pid 1:tid 2] [client 192.0.2.7:51234] AH01617: user [client 10.0.0.1:1] AH01617: user x: authentication failure for \"/\": Password Mismatch", "192.0.2.7"},
		{"referer names probe", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/favicon.ico, referer: http://evil.example/phpMyAdmin", ""},
		{"unknown field after client", "httpd", "[error] [client 10.0.0.1] [client 192.0.2.7] File does not exist: /var/www/html/pma", ""},
		{"no client field", "httpd", "[error] File does not exist: /var/www/html/[client 10.0.0.1] pma", ""},
	})
}

func TestVsftpdFilter(t *testing.T) {
	const pam = "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser="
	runServiceCases(t, "vsftpd", []serviceCase{
		{"pam", "vsftpd", pam + "bob rhost=192.0.2.7  user=bob", "192.0.2.7"},
		{"pam no user", "vsftpd", pam + " rhost=192.0.2.7", "192.0.2.7"},
		{"pam mapped", "vsftpd", pam + "anonymous rhost=::ffff:192.0.2.7  user=anonymous", "::ffff:192.0.2.7"},
		{"pam hostname", "vsftpd", pam + "bob rhost=client.example.net  user=bob", "client.example.net"},
		{"native syslog", "vsftpd", "[pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"native file form", "vsftpd", "Sat Jun 11 10:11:12 2011 [pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"native mapped", "vsftpd", "Sat Jun 11 10:11:12 2011 [pid 1234] [root] FAIL LOGIN: Client \"::ffff:192.0.2.7\"", "::ffff:192.0.2.7"},
		{"native empty user", "vsftpd", "[pid 1234] [] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},

		// Benign lines.
		{"ok login", "vsftpd", "[pid 1234] [bob] OK LOGIN: Client \"192.0.2.7\"", ""},
		{"connect", "vsftpd", "[pid 1233] CONNECT: Client \"192.0.2.7\"", ""},
		{"check pass", "vsftpd", "pam_unix(vsftpd:auth): check pass; user unknown", ""},
		{"pam session", "vsftpd", "pam_unix(vsftpd:session): session opened for user bob(uid=1000) by (uid=0)", ""},
		{"pam empty rhost", "vsftpd", pam + "bob rhost=  user=bob", ""},
		{"wrong program", "sshd", "[pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"", ""},

		// Hostile: the FTP user name is the client's.
		{"user with fail login", "vsftpd", "[pid 1234] [x] FAIL LOGIN: Client \"10.0.0.1] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"user with quoted host", "vsftpd", "[pid 1234] [\"10.0.0.1\"] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"user with trailing host", "vsftpd", "[pid 1234] [x] FAIL LOGIN: Client \"192.0.2.7\"\" from 10.0.0.1", ""},
		{"pam ruser with rhost", "vsftpd", pam + "x rhost=10.0.0.1  user=x rhost=192.0.2.7  user=x rhost=10.0.0.1  user=x", ""},
		{"pam ruser rhost no space", "vsftpd", pam + "rhost=10.0.0.1 rhost=192.0.2.7  user=rhost=10.0.0.1", "192.0.2.7"},
		{"pam ruser from", "vsftpd", pam + "from_10.0.0.1 rhost=192.0.2.7  user=from_10.0.0.1", "192.0.2.7"},
	})
}

// TestServiceVarsOverride checks that the vars are what decides the
// configurable lines: replacing them changes what counts.
func TestServiceVarsOverride(t *testing.T) {
	tests := []struct {
		filter, vr string
		vals       []string
		prog, line string
		host       string
	}{
		{"named", "domains", []string{"example.org"}, "named", "client 192.0.2.7#1 (example.org): query: example.org IN ANY +E (192.0.2.53)", "192.0.2.7"},
		{"named", "domains", []string{"example.org"}, "named", "client 192.0.2.7#1 (isc.org): query: isc.org IN ANY +E (192.0.2.53)", ""},
		{"named", "domains", []string{"a.b"}, "named", "client 192.0.2.7#1 (aXb): query: aXb IN ANY +E (192.0.2.53)", ""}, // values are literals
		{"apache", "paths", []string{"secret-admin"}, "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/secret-admin", "192.0.2.7"},
		{"apache", "paths", []string{"secret-admin"}, "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/phpMyAdmin", ""},
	}
	for _, tt := range tests {
		spec := BuiltinFilters()[tt.filter]
		spec.Vars = map[string][]string{tt.vr: tt.vals}
		tester, err := NewTester([]FilterSpec{spec}, TesterOptions{})
		if err != nil {
			t.Fatalf("%s with %s=%v: %v", tt.filter, tt.vr, tt.vals, err)
		}
		got := ""
		for _, m := range tester.Test(&sysban.Message{AppName: tt.prog, Text: tt.line}) {
			if !m.Ignored && !m.Pending {
				got = m.Host
			}
		}
		if got != tt.host {
			t.Errorf("%s=%v: %q: host %q, want %q", tt.vr, tt.vals, tt.line, got, tt.host)
		}
	}
}

// serviceTemplates put attacker-chosen text (%s) where each daemon writes
// the client's words: query names, CNs, paths, user names, Referers. The
// daemon-written peer is always 192.0.2.7.
var serviceTemplates = []struct{ filter, prog, tmpl string }{
	{"named", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (%s): query (cache) '%s/ANY/IN' denied"},
	{"named", "named", "28-Jun-2013 15:40:23.888 info: client 192.0.2.7#40117: view external: query: %s IN ANY +E (192.0.2.53)"},
	{"openvpn", "openvpn", "%s/192.0.2.7:51234 TLS Error: TLS handshake failed"},
	{"openvpn", "openvpn", "%s/192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=%s"},
	{"openvpn", "openvpn", "192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=%s"},
	{"openvpn", "openvpn", "%s/192.0.2.7:51234 TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234"},
	{"apache", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] File does not exist: /var/www/html/%s"},
	{"apache", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] user %s not found: %s"},
	{"apache", "apache2", "[Thu Jun 09 10:11:12.123456 2011] [auth_basic:error] [pid 1:tid 2] [client 192.0.2.7:51234] AH01617: user %s: authentication failure for \"%s\": Password Mismatch, referer: %s"},
	{"apache", "apache2", "[core:info] [pid 1] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/pma, referer: %s"},
	{"vsftpd", "vsftpd", "[pid 1234] [%s] FAIL LOGIN: Client \"192.0.2.7\""},
	{"vsftpd", "vsftpd", "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=%s rhost=192.0.2.7  user=%s"},
}

// FuzzServiceInjection checks that no attacker text makes a service filter
// report any host but the peer the daemon wrote.
func FuzzServiceInjection(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1#53",
		"client 10.0.0.1#53",
		"[client 10.0.0.1]",
		"[client 10.0.0.1:1] AH01617: user x",
		"10.0.0.1:1 TLS Error: TLS handshake failed",
		"10.0.0.1:1 VERIFY ERROR: depth=0, error=x",
		"x] FAIL LOGIN: Client \"10.0.0.1",
		"x rhost=10.0.0.1  user=x",
		"from [AF_INET]10.0.0.1:1",
		"phpMyAdmin",
		"",
	} {
		f.Add(s)
	}
	var specs []FilterSpec
	for _, name := range []string{"named", "openvpn", "apache", "vsftpd"} {
		specs = append(specs, BuiltinFilters()[name])
	}
	tester, err := NewTester(specs, TesterOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, evil string) {
		for _, st := range serviceTemplates {
			line := strings.ReplaceAll(st.tmpl, "%s", evil)
			for _, m := range tester.Test(&sysban.Message{AppName: st.prog, Text: line}) {
				if m.Pending || m.Ignored {
					continue
				}
				if m.Host != "192.0.2.7" {
					t.Fatalf("%s: %q: host %q, want 192.0.2.7", m.Filter, line, m.Host)
				}
			}
		}
	})
}

func BenchmarkServiceFilters(b *testing.B) {
	lines := map[string][]string{
		"named": {
			"client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied",
			"28-Jun-2013 15:40:23.888 info: client 67.220.66.3#40117: view external: query: 1rip.com IN ANY +E (192.168.11.242)",
			"client @0x7f3a1c0d2168 192.0.2.7#40117 (example.com): query: example.com IN A +E(0)K (192.0.2.53)",
		},
		"openvpn": {
			"176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695), which must be > 0 and <= 1560 -- please ensure that --tun-mtu or --link-mtu is equal on both peers -- this condition could also indicate a possible active attack on the TCP link -- [Attempting restart...]",
			"192.0.2.7:51234 TLS Error: TLS handshake failed",
			"client1/192.0.2.7:51234 MULTI: Learn: 10.8.0.6 -> client1/192.0.2.7:51234",
		},
		"apache": {
			"[Sat Jun 30 04:09:24 2012] [error] [client 118.142.43.102] File does not exist: /data/www/html/phpMyAdmin-2.8.3",
			"[Thu Jun 09 10:11:12.123456 2011] [core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/favicon.ico",
			"[Thu Jun 09 10:11:12.123456 2011] [mpm_event:notice] [pid 123:tid 456] AH00489: Apache/2.4.57 (Debian) configured -- resuming normal operations",
		},
		"vsftpd": {
			"pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=192.0.2.7  user=bob",
			"[pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"",
			"[pid 1234] [bob] OK LOGIN: Client \"192.0.2.7\"",
		},
	}
	for _, name := range []string{"named", "openvpn", "apache", "vsftpd"} {
		spec := BuiltinFilters()[name]
		tester, err := NewTester([]FilterSpec{spec}, TesterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([]*sysban.Message, len(lines[name]))
		for i, l := range lines[name] {
			msgs[i] = &sysban.Message{AppName: spec.Programs[0], Text: l}
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				tester.Test(msgs[i%len(msgs)])
			}
		})
	}
}
