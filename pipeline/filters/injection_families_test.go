package filters_test

import (
	"strings"
	"testing"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// familyTemplates put attacker-chosen text (%s) in every field where a
// daemon writes the client's words, for the families written from the
// daemons' sources (docs/filters.md, "Message families"): the new
// filters, and the families added to the older ones. The daemon-written
// peer is always 192.0.2.7 (written as such or IPv4-mapped).
var familyTemplates = []struct{ filter, prog, tmpl string }{
	{"sshd", "sshd", "Failed none for invalid user %s from 192.0.2.7 port 22 ssh2"},
	{"sshd", "sshd", "Failed keyboard-interactive for %s from 192.0.2.7"},
	{"sshd", "sshd", "Failed publickey for %s from 192.0.2.7 port 22 ssh2: ED25519-CERT SHA256:abc ID %s (serial 1) CA ED25519 SHA256:def"},
	{"sshd", "sshd", `Failed hostbased for %s from 192.0.2.7 port 22 ssh2: RSA SHA256:abc, client user "%s", client host "%s"`},
	{"sshd", "sshd", "[ID 800047 auth.info] Failed password for %s from 192.0.2.7 port 22 ssh2"},
	{"sshd", "sshd", "error: PAM: authentication error for %s from 192.0.2.7 via 198.51.100.1"},
	{"sshd", "sshd", "refused connect from %s@host.example (192.0.2.7)"},
	{"sshd", "sshd", "error: Received disconnect from 192.0.2.7: 11: %s [preauth]"},
	{"sshd", "sshd", "Disconnected from invalid user %s 192.0.2.7 port 22 [preauth]"},
	{"dovecot", "dovecot", "auth(%s,192.0.2.7,sasl:plain)<x8Kp2Zd7>: Info: sql: Password mismatch"},
	{"dovecot", "dovecot", "auth-worker(%s,192.0.2.7)<4242><x8Kp2Zd7>: request [3]: Info: passwd-file: unknown user"},
	{"dovecot", "dovecot", "imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=<%s>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>"},
	{"postfix", "postfix/postscreen", `PREGREET 11 after 0.1 from [192.0.2.7]:51234: %s`},
	{"postfix", "postfix/smtpd", "NOQUEUE: reject: EHLO from unknown[192.0.2.7]: 504 5.5.2 <%[1]s>: Helo command rejected: need fully-qualified hostname; proto=ESMTP helo=<%[1]s>"},
	{"postfix", "postfix/smtpd", "warning: Illegal address syntax from unknown[192.0.2.7] in RCPT command: <%s>"},
	{"named", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234 (%[1]s): bad zone transfer request: '%[1]s/IN': non-authoritative zone (NOTAUTH)"},
	{"openvpn", "openvpn", "%s/192.0.2.7:51234 TLS Error: unknown opcode received from [AF_INET]192.0.2.7:51234 op=9"},
	{"apache", "httpd", "[authnz_ldap:info] [pid 1] [client 192.0.2.7:51234] AH01695: auth_ldap authenticate: user %[1]s authentication failed; URI %[1]s [x][y]"},
	{"apache", "httpd", "[core:error] [pid 1] [client 192.0.2.7:51234] AH00126: Invalid URI in request %s"},
	{"apache", "apache2", "[auth_basic:error] [pid 1:tid 1] [remote 192.0.2.7:51234] AH01618: user %[1]s not found: /%[1]s"},
	{"apache", "httpd", "[auth_digest:error] [pid 1] [client 192.0.2.7:51234] AH01775: invalid nonce %s received - length is not 52"},
	{"apache", "apache2", "[cgi:error] [pid 1:tid 1] [client 192.0.2.7:51234] AH02811: stderr from /usr/lib/cgi-bin/%s: script not found or unable to stat"},
	{"vsftpd", "vsftpd", `[%s] FAIL LOGIN: Client "192.0.2.7"`},
	{"qmail", "qmail-smtpd", "tcpserver: deny 4242 mail.example.com:198.51.100.1:25 host.example:192.0.2.7:%s:41234"},
	{"nginx-http-auth", "nginx", `2026/11/01 15:00:00 [error] 1234#1234: *5 user "%[1]s" was not found in "/etc/nginx/.htpasswd", client: 192.0.2.7, server: example.com, request: "GET /%[1]s HTTP/1.1", host: "%[1]s"`},
	{"nginx-http-auth", "nginx", `2026/11/01 15:00:00 [error] 1234#1234: *5 user "%[1]s": password mismatch, client: 192.0.2.7, server: example.com, request: "GET /%[1]s HTTP/1.1", host: "%[1]s"`},
	{"nginx-http-auth", "nginx", `2026/11/01 15:00:00 [error] 1234#1234: *5 limiting requests, excess: 1.000 by zone "one", client: 192.0.2.7, server: example.com, request: "GET /%[1]s HTTP/1.1", host: "%[1]s"`},
	{"exim", "exim", "dovecot_login authenticator failed for (x) [192.0.2.7]:51234: 535 Incorrect authentication data (set_id=%s)"},
	{"exim", "exim", "H=(x) [192.0.2.7]:51234 F=<%[1]s> rejected RCPT <%[1]s>: relay not permitted"},
	{"exim", "exim", `SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[192.0.2.7]:51234 input="%s"`},
	{"exim", "exim", `SMTP call from (x) [192.0.2.7]:51234 dropped: too many syntax or protocol errors (last command was "%s", C=EHLO)`},
	// A junk HELO (helo_accept_junk_hosts) in every client field.
	{"exim", "exim", "login authenticator failed for (%[1]s) [192.0.2.7]:51234: 535 Incorrect authentication data (set_id=%[1]s)"},
	{"exim", "exim", "H=(%[1]s) [192.0.2.7]:51234 F=<%[1]s> rejected RCPT <%[1]s>: relay not permitted"},
	{"exim", "exim", `SMTP call from (%[1]s) [192.0.2.7] dropped: too many nonmail commands (last was "%[1]s")`},
	{"exim", "exim", `SMTP protocol synchronization error (next input sent too soon: pipelining was not advertised): rejected "%[1]s" H=(%[1]s) [192.0.2.7]:51234 next input="%[1]s"`},
	{"exim", "exim", `SMTP protocol error in "%[1]s" H=(%[1]s) [192.0.2.7]:51234 AUTH command used when not advertised`},
	{"courier", "imapd", "INFO: LOGIN FAILED, user=%s, ip=[::ffff:192.0.2.7], port=[51234]"},
	{"courier", "courieresmtpd", `error,relay=::ffff:192.0.2.7,ident="%s",msg="535 Authentication failed.",cmd: AUTH PLAIN`},
	{"courier", "courieresmtpd", "error,relay=::ffff:192.0.2.7,from=<%[1]s>,to=<%[1]s>: 550 User unknown."},
	{"courier", "courieresmtpd", `error,relay=::ffff:192.0.2.7,msg="535 Authentication failed.",cmd: %s`},
	{"courier", "courieresmtpd", "error,relay=::ffff:192.0.2.7,from=<%[1]s>,to=<%[1]s>: 550 User <%[1]s> unknown"},
	{"proftpd", "proftpd", "ftp.example.com (client.example.org[192.0.2.7]) - USER %s (Login failed): Incorrect password"},
	{"proftpd", "proftpd", "ftp.example.com (client.example.org[192.0.2.7]) - USER %[1]s: no such user found from %[1]s [192.0.2.7] to 198.51.100.1:21"},
	{"pure-ftpd", "pure-ftpd", "(?@192.0.2.7) [WARNING] Authentication failed for user [%s]"},
	{"sendmail-reject", "sendmail", "u5N1ABR012360: %s@x.example.org [192.0.2.7]: probable open proxy: command=GET %s"},
	{"sendmail-reject", "sendmail", "u5N1ABT012362: %s@x.example.org [192.0.2.7]: Possible SMTP RCPT flood, throttling."},
	{"sendmail-reject", "sendmail", "u5N1ABU012363: ruleset=check_mail, arg1=<%[1]s>, relay=x.example.org [192.0.2.7], reject=553 5.1.8 <%[1]s>... Domain of sender address %[1]s does not exist"},
	{"sendmail-reject", "sendmail", "u5N1ABX012366: ruleset=check_rcpt, arg1=<%[1]s>, relay=[192.0.2.7], reject=550 5.1.1 <%[1]s>... User unknown"},
	{"qpopper", "qpopper", `%[1]s at client.example.org (192.0.2.7): -ERR [AUTH] "%[1]s": access denied.`},
	{"qpopper", "qpopper", "%s at client.example.org (192.0.2.7): -ERR [AUTH] authentication failure"},
	{"mysqld", "mysqld", "2026-03-01 13:00:00 12 [Warning] Access denied for user '%s'@'192.0.2.7' (using password: YES)"},
	{"mysqld", "mariadbd", "2026-03-01 13:00:00 12 [Warning] Access denied for user '%s'@'192.0.2.7'"},
	// Families added by the audit of real lines (issue 9).
	{"sshd", "sshd", "Disconnecting invalid user %[1]s 192.0.2.7 port 22: Change of username or service not allowed: (%[1]s,ssh-connection) -> (%[1]s,ssh-connection) [preauth]"},
	{"sshd", "sshd", "error: PAM: unknown user for illegal user %s from 192.0.2.7"},
	{"sshd", "sshd", "pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7 user=%s"},
	{"apache", "apache2", "[proxy_fcgi:error] [pid 1:tid 1] [client 192.0.2.7:51234] AH01071: Got error 'Primary script unknown', referer: %s"},
	{"vsftpd", "vsftpd", `[pid 1] [%s] FTP response: Client "192.0.2.7", "530 Permission denied."`},
	{"proftpd", "proftpd", "(client.example.org[192.0.2.7]): USER %s (Login failed): Incorrect password"},
	{"qmail", "vpopmail", "vchkpw: password fail %[1]s@%[1]s:192.0.2.7"},
	{"qmail", "qmail-smtpd", "CHKUSER rejected intrusion: from <%[1]s::> remote <%[1]s:unknown:192.0.2.7> rcpt <%[1]s> : rcpt ignored, session over intrusion threshold"},
	{"sendmail-reject", "sendmail", "u5N1ABY012367: ruleset=check_rcpt, arg1=<%[1]s>, relay=%[1]s@x.example.org [192.0.2.7] (may be forged), reject=553 5.1.8 <%[1]s>... Domain of sender address %[1]s does not exist"},
	{"named", "named", "client 192.0.2.7#1036: view %s: query (cache) denied"},
	{"named", "named", "client @0x7f3a1c0d2168 192.0.2.7#41234/key k (%[1]s): update '%[1]s/IN' denied due to allow-query"},
	{"exim", "exim", "SMTP connection from (%s) [192.0.2.7]:44884 I=[198.51.100.1]:25 Ci=1 closed by DROP in ACL"},
	{"exim", "exim", "H=(%[1]s) [192.0.2.7]:3755 I=[198.51.100.1]:25 F=%[1]s rejected RCPT %[1]s: relay not permitted"},
	{"exim", "exim", `SMTP protocol error in "%[1]s" H=(%[1]s) [192.0.2.7]:4816 LOGIN authentication mechanism not supported`},
	{"qmail", "qmail", "rblsmtpd: 192.0.2.7 pid 19597 %s: 451 http://www.spamhaus.org/query/bl?ip=192.0.2.7"},
	{"qmail", "rblsmtpd", "relays.example.org blocked 192.0.2.7 %s -"},
	{"vsftpd", "vsftpd", `[pid 1] [%[1]s] FAIL LOGIN: Client "192.0.2.7", "User is not in the allow user list."`},
	{"proftpd", "proftpd", "proftpd[1] ftp.example.com (client.example.org[192.0.2.7]): USER %s (Login failed): Incorrect password"},
	{"dovecot", "pop3-login", "Info: Aborted login (auth failed, 1 attempts in 2 secs): user=<%s>, method=PLAIN, rip=192.0.2.7"},
	{"dovecot", "auth-worker(1)", "Info: sql(%s,192.0.2.7,<x8Kp2Zd7>): Password mismatch"},
	{"dovecot", "dovecot", "imap-login: Disconnected (proxy dest auth failed): user=<%s>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1"},
	{"sendmail-reject", "sm-mta", "ruleset=check_relay, arg1=%[1]s, arg2=192.0.2.7, relay=%[1]s [192.0.2.7], reject=421 4.3.2 Connection rate limit exceeded."},
	{"sendmail-reject", "sm-mta", "u5N1ABY012368: ruleset=check_rcpt, arg1=<%[1]s>, relay=[192.0.2.7], reject=550 5.7.1 <%[1]s>... Rejected: 192.0.2.7 listed at %[1]s"},
	{"apache", "apache2", "[authz_owner:error] [pid 1:tid 1] [client 192.0.2.7:51234] AH01637: Authorization of user %[1]s to access %[1]s failed, reason: %[1]s"},
	{"apache", "apache2", "[error] [client 192.0.2.7] script '%s' not found or unable to stat"},
	{"postfix", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 <%[1]s>: Recipient address rejected: undeliverable address: %[1]s; from=<%[1]s> to=<%[1]s> proto=ESMTP helo=<%[1]s>"},
	{"nginx-http-auth", "nginx", `2026/02/11 08:05:17 [error] 1#1: *2 PAM: user '%[1]s' - not authenticated: Authentication failure, client: 192.0.2.7, server: x, request: "GET /%[1]s HTTP/2.0", host: "%[1]s"`},
	{"sshd", "sshd", "error: PAM: authentication failure for %s from 192.0.2.7 via 198.51.100.1"},
}

// FuzzFamilyInjection checks, in every mode of every filter it covers,
// that no attacker text makes a filter count any host but the peer the
// daemon wrote: the real client or nothing.
func FuzzFamilyInjection(f *testing.F) {
	for _, s := range []string{
		"x from 10.0.0.1 port 1 ssh2",
		"x 10.0.0.1 port 1",
		`x", client host "y from 10.0.0.1 port 1 ssh2: RSA SHA256:a, client user "a`,
		"x,10.0.0.1,sasl:plain)<a>: Info: sql: Password mismatch",
		"x>, method=PLAIN, rip=10.0.0.1, lip=10.0.0.2",
		"[10.0.0.1]:1",
		`x", client: 10.0.0.1, server: y`,
		"(x) [10.0.0.1]:1",
		"x) [10.0.0.1]: 535 y (z",
		"x) [10.0.0.1] F=<a> rejected RCPT <b>: c (d",
		"x) [10.0.0.1] dropped: too many nonmail commands (y",
		`x" H=(y) [10.0.0.1]:1 next input="z`,
		"x, ip=[10.0.0.1], port=[1]",
		"x (y[10.0.0.1]) - USER z",
		"x'@'10.0.0.1' (using password: YES)",
		"x] (?@10.0.0.1) [WARNING] Authentication failed for user [y",
		"[client 10.0.0.1:1] AH01618: user x",
		"10.0.0.1#53",
		"a:10.0.0.1:1",
		"a>, relay=[10.0.0.1], reject=553 5.1.8 <b",
		"x [10.0.0.1]: probable open proxy: command=",
		`x at y (10.0.0.1): -ERR [AUTH] "x": access denied.`,
		"x 10.0.0.1 port 1: Change of username or service not allowed: (a,b) -> (c,d)",
		`x] FTP response: Client "10.0.0.1", "530 Permission denied.`,
		"x@y:10.0.0.1",
		"x[10.0.0.1]): USER y",
		"x 10.0.0.1 port 1 ssh2",
		"x>, method=PLAIN, rip=10.0.0.1",
		"x,10.0.0.1,<a>): Password mismatch",
		"x [10.0.0.1], reject=421 4.3.2 Connection rate limit exceeded.",
		"x, client: 10.0.0.1, server: y",
		"[client 10.0.0.1:1] AH01637: x",
		"x:y:10.0.0.1> rcpt <z> : not existing recipient",
		"",
	} {
		f.Add(s)
	}
	type key struct{ filter, mode string }
	testers := map[key]*pipeline.Tester{}
	for _, ft := range familyTemplates {
		spec := pipeline.BuiltinFilters()[ft.filter]
		modes := []string{"normal"}
		for m := range spec.Modes {
			modes = append(modes, m)
		}
		for _, m := range modes {
			if testers[key{ft.filter, m}] == nil {
				testers[key{ft.filter, m}] = newTester(f, ft.filter, m)
			}
		}
	}
	f.Fuzz(func(t *testing.T, evil string) {
		if strings.ContainsAny(evil, "\n\r") {
			return // one syslog message is one line
		}
		for _, ft := range familyTemplates {
			line := strings.ReplaceAll(strings.ReplaceAll(ft.tmpl, "%[1]s", evil), "%s", evil)
			for k, tester := range testers {
				if k.filter != ft.filter {
					continue
				}
				for _, m := range tester.Test(&sysban.Message{AppName: ft.prog, ProcID: "1", Text: line}) {
					if m.Pending || m.Ignored {
						continue
					}
					if m.Host != "192.0.2.7" && m.Host != "::ffff:192.0.2.7" {
						t.Fatalf("%s mode %s: %q: host %q, want 192.0.2.7", ft.filter, k.mode, line, m.Host)
					}
				}
			}
		}
	})
}

// TestFamilyTemplatesMatch: with harmless text in the client's fields,
// every template is a failure of 192.0.2.7 in the filter's widest mode, so
// the fuzz target above exercises the patterns, not lines they miss.
func TestFamilyTemplatesMatch(t *testing.T) {
	for _, ft := range familyTemplates {
		spec := pipeline.BuiltinFilters()[ft.filter]
		mode := "normal"
		if _, ok := spec.Modes["aggressive"]; ok {
			mode = "aggressive"
		}
		line := strings.ReplaceAll(strings.ReplaceAll(ft.tmpl, "%[1]s", "bob"), "%s", "bob")
		host, _ := countedHost(newTester(t, ft.filter, mode).Test(&sysban.Message{AppName: ft.prog, ProcID: "1", Text: line}), ft.filter)
		if host != "192.0.2.7" && host != "::ffff:192.0.2.7" {
			t.Errorf("%s mode %s: %q: host %q, want 192.0.2.7", ft.filter, mode, line, host)
		}
	}
}
