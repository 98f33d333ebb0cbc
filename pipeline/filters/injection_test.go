package filters_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// injectionFuzzed lists the built-in filters whose lines the injection
// fuzz targets fill with attacker text: FuzzSSHDInjection,
// FuzzAuthInjection, FuzzMailInjection, FuzzServiceInjection,
// FuzzPortprobeInjection and FuzzFamilyInjection.
var injectionFuzzed = []string{
	"sshd",
	"sendmail-auth", "saslauthd",
	"dovecot", "postfix", "postfix-sasl", "sendmail-reject", "qpopper", "qmail", "squirrelmail",
	"named", "openvpn", "apache", "vsftpd",
	"portprobe",
	// FuzzFamilyInjection:
	"nginx-http-auth", "exim", "courier", "proftpd", "pure-ftpd", "mysqld",
}

// TestEveryBuiltinInjectionFuzzed fails when a built-in filter is added
// without templates in one of the injection fuzz targets: arbitrary text
// (pipeline.FuzzBuiltinFilters) rarely lands exactly where a daemon logs
// what the attacker chose, and that is where a filter is fooled into
// banning a bystander.
func TestEveryBuiltinInjectionFuzzed(t *testing.T) {
	for name := range pipeline.BuiltinFilters() {
		if !slices.Contains(injectionFuzzed, name) {
			t.Errorf("built-in filter %s has no injection fuzz templates: add its lines with attacker-chosen fields to an injection fuzz target and its name to injectionFuzzed", name)
		}
	}
}

// FuzzMailInjection puts arbitrary attacker-chosen text where the mail
// daemons log attacker-chosen text and checks that the only address ever
// counted is the peer the daemon wrote (192.0.2.7, as written or mapped).
func FuzzMailInjection(f *testing.F) {
	type tmpl struct{ filter, prog, line string }
	templates := []tmpl{
		{"dovecot", "dovecot", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<%s>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>"},
		{"dovecot", "dovecot", "pop3-login: Aborted login: user=<%s>, method=PLAIN, rip=::ffff:192.0.2.7, lip=::ffff:198.51.100.1"},
		{"dovecot", "dovecot", "auth: passwd-file(%s,192.0.2.7,<x8Kp2Zd7>): unknown user"},
		{"dovecot", "dovecot", "auth-worker(4242): pam(%s,192.0.2.7,<x8Kp2Zd7>): pam_authenticate() failed: Authentication failure (Password mismatch?)"},
		{"dovecot", "dovecot", "auth: Debug: pam(%s,192.0.2.7,<x8Kp2Zd7>): lookup service=dovecot"},
		{"dovecot", "dovecot", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=%[1]s rhost=192.0.2.7  user=%[1]s"},
		{"postfix", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <%[1]s>: Relay access denied; from=<%[1]s> to=<%[1]s> proto=ESMTP helo=<%[1]s>"},
		{"postfix", "postfix/smtpd", "improper command pipelining after CONNECT from unknown[192.0.2.7]: %s"},
		{"postfix-sasl", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure, sasl_username=%s"},
		{"sendmail-reject", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<%[1]s>, relay=[192.0.2.7], reject=550 5.7.1 <%[1]s>... Relaying denied"},
		{"sendmail-reject", "sendmail", "u5N1ABC012345: %s@x.example.org [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA"},
		{"sendmail-reject", "sendmail", "u5N1ABC012345: x.example.org [192.0.2.7]: VRFY %s [rejected]"},
		{"qpopper", "qpopper", `%[1]s at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "%[1]s" is incorrect.`},
		{"qmail", "vpopmail", "vchkpw-smtp: password fail (pass: '%[1]s') %[1]s@%[1]s:192.0.2.7"},
		{"qmail", "vpopmail", "vchkpw-pop3: vpopmail user not found %[1]s@%[1]s:192.0.2.7"},
		{"qmail", "qmail-smtpd", "CHKUSER rejected rcpt: from <%[1]s> remote <%[1]s:unknown:192.0.2.7> rcpt <%[1]s> : not existing recipient"},
		{"squirrelmail", "squirrelmail", "[LOGIN_ERROR] %s (example.com) from 192.0.2.7: Unknown user or password incorrect."},
	}
	for _, s := range []string{
		"x from 10.0.0.1",
		"x>, method=PLAIN, rip=10.0.0.1, lip=10.0.0.2",
		"x,10.0.0.1,<a>): unknown user",
		"x rhost=10.0.0.1",
		"unknown[10.0.0.1]",
		"a>, relay=[10.0.0.1], reject=550 5.7.1 <a",
		"a [10.0.0.1]",
		"a:2001:db8:",
		"a:b:10.0.0.1> rcpt <x> : not existing recipient",
		`x at y (10.0.0.1): -ERR [AUTH] Password supplied for "x`,
		"x from 10.0.0.1: y",
		"",
	} {
		f.Add(s)
	}
	testers := map[string]*pipeline.Tester{}
	for _, tt := range templates {
		for _, mode := range []string{"", "aggressive"} {
			if testers[tt.filter+mode] == nil {
				if _, ok := pipeline.BuiltinFilters()[tt.filter].Modes[mode]; ok || mode == "" {
					testers[tt.filter+mode] = newTester(f, tt.filter, mode)
				}
			}
		}
	}
	peer := netip.MustParseAddr("192.0.2.7")
	f.Fuzz(func(t *testing.T, evil string) {
		if strings.ContainsAny(evil, "\n\r") {
			return // one syslog message is one line
		}
		for _, tt := range templates {
			line := fmt.Sprintf(tt.line, evil)
			for _, mode := range []string{"", "aggressive"} {
				tester := testers[tt.filter+mode]
				if tester == nil {
					continue
				}
				host, addr := countedHost(tester.Test(&sysban.Message{AppName: tt.prog, Text: line}), tt.filter)
				// A hostname is never banned as such; an address must be
				// the peer's.
				if addr.IsValid() && addr != peer {
					t.Fatalf("%s mode %q: %q: counted %s (host %q), want only %s", tt.filter, mode, line, addr, host, peer)
				}
			}
		}
	})
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
	var specs []pipeline.FilterSpec
	for _, name := range []string{"named", "openvpn", "apache", "vsftpd"} {
		specs = append(specs, pipeline.BuiltinFilters()[name])
	}
	tester, err := pipeline.NewTester(specs, pipeline.TesterOptions{})
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

// FuzzAuthInjection puts attacker-chosen text where sendmail and Cyrus log
// client-chosen text (user names, envelope senders, reverse-DNS names)
// and checks that the only address ever reported is the client the daemon
// wrote, on single lines and through correlation.
func FuzzAuthInjection(f *testing.F) {
	const qid = "s0QBU1Ir002370"
	const open = qid + ": AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed"
	type tmpl struct {
		prog, line string
		opened     bool // an AUTH failure of qid came first
		// must: the inputs the daemon can log there. The line must then
		// be a failure of 192.0.2.7; other inputs are skipped, since a
		// daemon never writes them (a reverse-DNS name with a blank).
		must func(s string) bool
	}
	// '.' does not cross lines; daemons escape newlines anyway.
	any := func(s string) bool { return !strings.Contains(s, "\n") }
	// A reverse-DNS name as the resolver hands it out: host-name
	// characters only (glibc rejects others and gives the address).
	dnsName := func(s string) bool {
		return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
	}
	templates := []tmpl{
		{"sendmail", qid + ": AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=%s, relay=[192.0.2.7]", false, any},
		{"sendmail", "AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=%s, relay=host.example [192.0.2.7] (may be forged)", false, any},
		{"sendmail", qid + ": %s [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", true, dnsName},
		{"sendmail", qid + ": lost input channel from %s [192.0.2.7] to MTA after auth", true, dnsName},
		{"sendmail", qid + ": from=<%s>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[192.0.2.7]", true, any},
		{"sendmail", qid + ": %s [192.0.2.7]: possible SMTP attack: command=AUTH, count=5", false, dnsName},
		{"imap", "badlogin: [192.0.2.7] plaintext %s SASL(-13): authentication failure: checkpass failed", false, any},
		{"imap", "badlogin: %s [192.0.2.7] PLAIN [SASL(-13): authentication failure: checkpass failed]", false, dnsName},
	}
	for _, s := range []string{
		"x, relay=[10.0.0.1]",
		"x [10.0.0.1] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA",
		"10.0.0.1",
		"[10.0.0.1]",
		"from 10.0.0.1",
		qid + ": [10.0.0.1]",
		"",
	} {
		f.Add(s)
	}
	specs := []pipeline.FilterSpec{pipeline.BuiltinFilters()["sendmail-auth"], pipeline.BuiltinFilters()["saslauthd"]}
	// One tester for the run (fuzz calls are sequential per process): an
	// open of the same queue id replaces the last one, so state does not
	// leak from one input to the next.
	tester, err := pipeline.NewTester(specs, pipeline.TesterOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, user string) {
		for _, tp := range templates {
			if !tp.must(user) {
				continue
			}
			if tp.opened {
				tester.Test(&sysban.Message{AppName: "sendmail", ProcID: "1", Text: open})
			}
			line := strings.Replace(tp.line, "%s", user, 1)
			ms := tester.Test(&sysban.Message{AppName: tp.prog, ProcID: "1", Text: line})
			failures := 0
			for _, m := range ms {
				if m.Pending || m.Ignored {
					continue
				}
				failures++
				if m.Host != "192.0.2.7" {
					t.Fatalf("%s %q: host %q, want 192.0.2.7", m.Filter, line, m.Host)
				}
			}
			if failures == 0 {
				t.Fatalf("%q: no failure: %+v", line, ms)
			}
		}
	})
}
