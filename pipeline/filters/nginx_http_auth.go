package filters

import "slices"

// nginxPrefix is what nginx writes before every error-log message, in its
// error_log file and through "error_log syslog:..." alike (the syslog
// writer sends the whole line): "2026/11/01 15:00:00 [error] 1234#1234: *5 ".
// The time is optional for lines a relay has trimmed; the level, pid#tid
// and connection number are nginx's.
const nginxPrefix = `^(?:\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} )?\[(?:emerg|alert|crit|error|warn|notice|info)\] \d+#\d+: (?:\*\d+ )?`

// nginxClient is the context nginx's HTTP log handler appends to every
// message of a request: ", client: ADDR, server: NAME" and then the
// request line, upstream, Host and Referer, which are the client's.
const nginxClient = `, client: <HOST>, server: .*$`

// nginxHTTPAuth is written from ngx_http_auth_basic_module (nginx 1.0 to
// 1.29) and, in modes "ddos" and "aggressive", ngx_http_limit_req_module
// and ngx_http_limit_conn_module.
//
// Not a failure: "no user/password was provided for basic authentication",
// which every browser's first request to a protected page causes.
func nginxHTTPAuth() Spec {
	limits := []string{
		// *20 limiting requests, excess: 10.520 by zone "one", client: 192.0.2.7, server: example.com, request: "POST /login HTTP/1.1", host: "example.com"
		// *22 limiting requests, dry run, excess: 1.000 by zone "one", client: 192.0.2.7, ...   (1.17.1+)
		// *23 limiting connections by zone "addr", client: 192.0.2.7, ...
		// Leftmost rule: only nginx's words and the admin's zone name
		// come before the client; the request after it is the client's.
		// ("delaying request" is a burst nginx still serves: not counted.)
		nginxPrefix + `limiting (?:requests(?:, dry run)?, excess: [\d.]+|connections(?:, dry run)?) by zone "[^"]*"` + nginxClient,
	}
	return Spec{
		Name:    "nginx-http-auth",
		Trust:   Trust{Users: []string{"root", "www-data", "nginx"}, Exes: []string{"nginx"}, Units: []string{"nginx.service"}},
		Summary: "basic-auth unknown users and password mismatches; limit_req/limit_conn in `ddos`",
		// nginx: the ident of error_log syslog:...; nginx-*: tags an
		// rsyslog imfile input gives its error log (nginx-error).
		Programs: []string{"nginx", "nginx-*"},
		FailRegex: []string{
			// *5 user "admin" was not found in "/etc/nginx/.htpasswd", client: 192.0.2.7, server: example.com, request: "GET /private/ HTTP/1.1", host: "example.com"
			// *6 user "bob": password mismatch, client: 192.0.2.7, server: example.com, request: "GET /private/ HTTP/1.1", host: "example.com"
			// The user name (before the client) and the request and Host
			// (after it) are the client's, written unescaped: see
			// IgnoreRegex.
			nginxPrefix + `user ".*"(?: was not found in ".*"|: password mismatch)` + nginxClient,
			// *24470 PAM: user 'bob' - not authenticated: Authentication failure, client: 192.0.2.7, server: dav.example.com, request: "GET / HTTP/2.0", host: "dav.example.com"
			// ngx_http_auth_pam_module (Debian's libnginx-mod-http-auth-pam):
			// PAM's verdict; the user name is the client's, as above.
			nginxPrefix + `PAM: user '.*' - not authenticated: [A-Za-z ]+` + nginxClient,
		},
		IgnoreRegex: []string{
			// With client text on both sides of the address, a forged
			// ", client: 10.0.0.1, server: " in the user name or the
			// request cannot be told from nginx's own: a basic-auth line
			// holding two is not counted.
			nginxPrefix + `(?:user "|PAM: user ').*, client: .*, client: `,
		},
		Modes: map[string][]string{
			"ddos": limits,
			// [crit] 1234#1234: *5 SSL_do_handshake() failed (SSL: error:1408F0C6:SSL routines:ssl3_get_record:packet length too long) while SSL handshaking, client: 192.0.2.7, server: 0.0.0.0:443
			// Garbage on the TLS port, before any request: scanners, and
			// now and then a broken client, hence aggressive only. The
			// OpenSSL reason is nginx's and OpenSSL's text, and no client
			// text can follow before the address.
			"aggressive": append(slices.Clone(limits),
				nginxPrefix+`SSL_do_handshake\(\) failed \(SSL: [^()]*(?:\([^()]*\)[^()]*)*\) while SSL handshaking, client: <HOST>, server: \S+$`),
		},
	}
}
