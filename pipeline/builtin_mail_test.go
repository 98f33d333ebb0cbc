package pipeline

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// mailCase is one line through one built-in mail filter. host "" means the
// line must not count: no pattern matched, or an ignoreregex vetoed it.
type mailCase struct {
	name, prog, line, host string
}

// mailNopBanner discards bans: these tests only ask Check.
type mailNopBanner struct{}

func (mailNopBanner) Apply(context.Context, []sysban.Ban) error { return nil }

// mailPipeline builds a pipeline with one jail on the built-in filter, for
// Pipeline.Check (which answers in normal mode for every filter).
func mailPipeline(t testing.TB, filter string) *Pipeline {
	t.Helper()
	p, err := New(Config{Jails: []JailSpec{{
		Name: "j", Filter: filter,
		MaxRetry: 5, FindTime: time.Minute, BanTime: time.Minute,
	}}}, mailNopBanner{}, Options{})
	if err != nil {
		t.Fatalf("New(%s): %v", filter, err)
	}
	return p
}

// mailTester runs the built-in filter alone in mode, as the daemon routes
// and matches.
func mailTester(t testing.TB, filter, mode string) *Tester {
	t.Helper()
	tester, err := NewTester([]FilterSpec{BuiltinFilters()[filter]}, TesterOptions{Mode: mode})
	if err != nil {
		t.Fatalf("NewTester(%s, mode %q): %v", filter, mode, err)
	}
	return tester
}

// countedHost is the host of the first match of filter in ms that counts
// as a failure, "" when none does.
func countedHost(ms []Match, filter string) (string, netip.Addr) {
	for _, m := range ms {
		if m.Filter == filter && !m.Ignored && !m.Pending {
			return m.Host, m.Addr
		}
	}
	return "", netip.Addr{}
}

// runMailCases runs cases through the built-in filter in mode with a
// Tester, through Pipeline.Check in normal mode, and through the compiled
// filter without the literal prefilter, which must not change any verdict.
func runMailCases(t *testing.T, filter, mode string, cases []mailCase) {
	t.Helper()
	tester := mailTester(t, filter, mode)
	p := mailPipeline(t, filter)
	f, err := CompileFilterMode(BuiltinFilters()[filter], mode)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := countedHost(tester.Test(&sysban.Message{AppName: tt.prog, Text: tt.line}), filter)
			if got != tt.host {
				t.Errorf("%s: %q: host %q, want %q", tt.prog, tt.line, got, tt.host)
			}
			if mode == "" {
				if viaCheck, _ := countedHost(p.Check(tt.line, tt.prog), filter); viaCheck != got {
					t.Errorf("%q: Pipeline.Check host %q, Tester %q", tt.line, viaCheck, got)
				}
			}
			if !f.Wants(tt.prog) {
				return
			}
			slow := f.match(strings.TrimRight(tt.line, " \t\r\n"), false)
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

func TestMailFiltersCompile(t *testing.T) {
	names := []string{"dovecot", "postfix", "postfix-sasl", "sendmail-reject", "qpopper", "qmail", "squirrelmail"}
	builtins := BuiltinFilters()
	for _, spec := range mailFilters() {
		if builtins[spec.Name].Name != spec.Name {
			t.Errorf("%s: not in BuiltinFilters", spec.Name)
		}
	}
	if got := len(mailFilters()); got != len(names) {
		t.Errorf("mailFilters() has %d filters, want %d", got, len(names))
	}
	for _, name := range names {
		spec, ok := builtins[name]
		if !ok {
			t.Errorf("no built-in filter %q", name)
			continue
		}
		modes := []string{""}
		for m := range spec.Modes {
			modes = append(modes, m)
		}
		for _, mode := range modes {
			f, err := CompileFilterMode(spec, mode)
			if err != nil {
				t.Errorf("%s mode %q: %v", name, mode, err)
				continue
			}
			// Every pattern must give the prefilter something to
			// reject lines on, or it runs the regex over every line of
			// the program.
			for i, p := range f.fail {
				if len(p.prefix)+len(p.literal) < 6 {
					t.Errorf("%s failregex %d %q: prefilter prefix %q literal %q too weak", name, i, p.src, p.prefix, p.literal)
				}
			}
		}
	}
}

func TestDovecotFilter(t *testing.T) {
	runMailCases(t, "dovecot", "", []mailCase{
		// CentOS 5, dovecot 1.0 (seed 000; user=<...> was lost with the
		// page's HTML).
		{"1.0 aborted login", "dovecot", "pop3-login: Aborted login: user=<everstar>, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9", "::ffff:198.24.142.139"},
		{"seed 000 as saved, user eaten", "dovecot", "pop3-login: Aborted login: user=, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9", "::ffff:198.24.142.139"},
		{"1.0 aborted login empty user", "dovecot", "pop3-login: Aborted login: user=<>, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9", "::ffff:198.24.142.139"},
		{"1.0 disconnected with method", "dovecot", "imap-login: Disconnected: user=<bob>, method=PLAIN, rip=::ffff:192.0.2.7, lip=::ffff:198.51.100.1, TLS", "::ffff:192.0.2.7"},
		{"1.1 authentication attempts", "dovecot", "pop3-login: Aborted login (1 authentication attempts): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1", "192.0.2.7"},
		// Dovecot 2.x.
		{"2.x disconnected auth failed", "dovecot", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"2.x aborted auth failed", "dovecot", "pop3-login: Aborted login (auth failed, 3 attempts in 15 secs): user=<bob>, method=PLAIN, rip=::ffff:192.0.2.7, lip=::ffff:198.51.100.1", "::ffff:192.0.2.7"},
		{"2.x no user", "dovecot", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"2.3 connection closed", "dovecot", "imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 4 secs): user=<bob>, method=LOGIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"2.3 login aborted", "dovecot", "imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 4 secs) (auth_failed): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"managesieve ipv6", "dovecot", "managesieve-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=2001:db8::7, lip=2001:db8::1, session=<x8Kp2Zd7>", "2001:db8::7"},
		{"file form Info", "dovecot", "imap-login: Info: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1", "192.0.2.7"},
		{"passwd-file unknown user", "dovecot", "auth: passwd-file(bob,192.0.2.7,<x8Kp2Zd7>): unknown user", "192.0.2.7"},
		{"passwd-file unknown user sha1", "dovecot", "auth: passwd-file(bob,192.0.2.7,<x8Kp2Zd7>): unknown user (SHA1 of given password: 011c94)", "192.0.2.7"},
		{"password mismatch", "dovecot", "auth: passwd-file(bob,192.0.2.7,<x8Kp2Zd7>): Password mismatch", "192.0.2.7"},
		{"password mismatch old", "dovecot", "auth: passwd-file(bob,192.0.2.7): password mismatch", "192.0.2.7"},
		{"pam worker", "dovecot", "auth-worker(4242): pam(bob,192.0.2.7,<x8Kp2Zd7>): pam_authenticate() failed: Authentication failure (Password mismatch?)", "192.0.2.7"},
		{"pam worker 2.3 conn", "dovecot", "auth-worker(4242): conn unix:auth-worker (pid=4240,uid=97): auth-worker<1>: pam(bob,192.0.2.7,<x8Kp2Zd7>): pam_authenticate() failed: Authentication failure (Password mismatch?)", "192.0.2.7"},
		{"sql unknown 2.3 conn", "dovecot", "auth-worker(4242): conn unix:auth-worker (pid=4240,uid=97): auth-worker<1>: sql(bob,192.0.2.7,<x8Kp2Zd7>): unknown user", "192.0.2.7"},
		{"1.x auth default", "dovecot", "auth(default): pam(bob,192.0.2.7): pam_authenticate() failed: User not known to the underlying authentication module", "192.0.2.7"},
		{"auth file form Info", "dovecot", "auth: Info: passwd-file(bob,2001:db8::7,<x8Kp2Zd7>): unknown user", "2001:db8::7"},
		{"pam_unix dovecot", "dovecot", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.7  user=bob", "192.0.2.7"},
		{"pam_unix dovecot-auth program", "dovecot-auth", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.7", "192.0.2.7"},
		{"pam_unix auth program", "auth", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser= rhost=::ffff:192.0.2.7 user=bob", "::ffff:192.0.2.7"},
		{"pam_unix hostname", "dovecot", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=client.example.org", "client.example.org"},

		// Benign.
		{"login success", "dovecot", "imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, mpid=4242, TLS, session=<x8Kp2Zd7>", ""},
		{"logged out", "dovecot", "IMAP(bob): Disconnected: Logged out bytes=12/345", ""},
		{"logged out 2.x", "dovecot", "imap(bob)<4242><x8Kp2Zd7>: Disconnected: Logged out in=12 out=345", ""},
		{"no auth attempts normal", "dovecot", "imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>", ""},
		{"1.0 aborted without method", "dovecot", "pop3-login: Aborted login: user=<>, rip=::ffff:192.0.2.7, lip=::ffff:198.51.100.1", ""},
		{"pam session opened", "dovecot", "pam_unix(dovecot:session): session opened for user bob by (uid=0)", ""},
		{"pam check pass", "dovecot", "pam_unix(dovecot:auth): check pass; user unknown", ""},
		{"other program", "postfix/smtpd", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1", ""},
		{"auth debug lookup", "dovecot", "auth: Debug: pam(bob,192.0.2.7,<x8Kp2Zd7>): lookup service=dovecot", ""},

		// Hostile: the user name is the attacker's.
		{"user with rip", "dovecot", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=10.0.0.1, lip=10.0.0.2>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"1.0 user with rip", "dovecot", "pop3-login: Aborted login: user=<x>, method=PLAIN, rip=10.0.0.1, lip=y>, method=PLAIN, rip=::ffff:192.0.2.7, lip=::ffff:198.51.100.1", "::ffff:192.0.2.7"},
		{"passdb user with ip", "dovecot", "auth: passwd-file(x,10.0.0.1,<a>): unknown user,192.0.2.7,<x8Kp2Zd7>): unknown user", "192.0.2.7"},
		{"passdb user with ip closing paren", "dovecot", "auth-worker(4242): pam(a,10.0.0.1),192.0.2.7,<x8Kp2Zd7>): pam_authenticate() failed: Authentication failure (Password mismatch?)", "192.0.2.7"},
		// A non-failure message whose user name fakes a failure must not
		// count the injected address.
		{"passdb injection into other message", "dovecot", "auth: passwd-file(x,10.0.0.1): unknown user,192.0.2.7,<x8Kp2Zd7>): Debug: lookup", ""},
		{"plaintext password not trusted", "dovecot", "auth: passwd-file(bob,192.0.2.7,<x8Kp2Zd7>): Password mismatch (given password: ),10.0.0.1): Password mismatch ()", ""},
		{"pam ruser with rhost", "dovecot", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=a rhost=10.0.0.1 b rhost=192.0.2.7  user=a rhost=10.0.0.1 b", ""},
		{"pam ruser is rhost", "dovecot", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=rhost=10.0.0.1 rhost=192.0.2.7  user=rhost=10.0.0.1", "192.0.2.7"},
	})
	runMailCases(t, "dovecot", "aggressive", []mailCase{
		{"auth failed still", "dovecot", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1", "192.0.2.7"},
		{"no auth attempts", "dovecot", "imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"plaintext disallowed", "dovecot", "pop3-login: Disconnected (tried to use disallowed plaintext auth): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"before greeting", "dovecot", "imap-login: Disconnected: Connection closed (disconnected before greeting, waited 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1", "192.0.2.7"},
		{"login success", "dovecot", "imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, mpid=4242, TLS, session=<x8Kp2Zd7>", ""},
	})
}

func TestPostfixFilter(t *testing.T) {
	runMailCases(t, "postfix", "", []mailCase{
		{"relay denied", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <victim@example.net>: Relay access denied; from=<spam@example.org> to=<victim@example.net> proto=ESMTP helo=<WIN-X>", "192.0.2.7"},
		{"user unknown", "postfix/smtpd", "NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table; from=<> to=<nobody@example.com> proto=ESMTP helo=<mx.example.org>", "192.0.2.7"},
		{"user unknown virtual", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@example.org> to=<nobody@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"rbl", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.7; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"rbl postscreen", "postfix/postscreen", "NOQUEUE: reject: RCPT from [192.0.2.7]:51234: 550 5.7.1 Service unavailable; client [192.0.2.7] blocked using zen.spamhaus.org; from=<a@example.org>, to=<b@example.com>, proto=ESMTP, helo=<x>", "192.0.2.7"},
		{"no reverse hostname", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"helo rejected queue id", "postfix/smtpd", "4Bc5Qk3R5Vz9sWl: reject: RCPT from unknown[192.0.2.7]: 504 5.5.2 <x>: Helo command rejected: need fully-qualified hostname; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"ipv6 port logging", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[2001:db8::7]:41234: 554 5.7.1 <victim@example.net>: Relay access denied; from=<a@example.org> to=<victim@example.net> proto=ESMTP helo=<x>", "2001:db8::7"},
		{"submission instance", "postfix/submission/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <victim@example.net>: Relay access denied; from=<a@example.org> to=<victim@example.net> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"smtps instance", "postfix/smtps/smtpd", "lost connection after AUTH from unknown[192.0.2.7]", "192.0.2.7"},
		{"other instance", "postfix-xyz/smtpd", "too many errors after RCPT from unknown[192.0.2.7]", "192.0.2.7"},
		{"other instance submission", "postfix-out/submission/smtpd", "too many errors after AUTH from unknown[192.0.2.7]", "192.0.2.7"},
		{"too many errors data", "postfix/smtpd", "too many errors after DATA (0 bytes) from unknown[192.0.2.7]", "192.0.2.7"},
		{"lost after auth", "postfix/smtpd", "lost connection after AUTH from unknown[192.0.2.7]", "192.0.2.7"},
		{"pipelining", "postfix/smtpd", `improper command pipelining after CONNECT from unknown[192.0.2.7]: EHLO x\r\nMAIL FROM:<a@b>\r\n`, "192.0.2.7"},
		{"pipelining no text", "postfix/smtpd", "improper command pipelining after EHLO from mx.example.org[192.0.2.7]", "192.0.2.7"},

		// Benign.
		{"connect", "postfix/smtpd", "connect from unknown[192.0.2.7]", ""},
		{"lost after ehlo", "postfix/smtpd", "lost connection after EHLO from unknown[192.0.2.7]", ""},
		{"disconnect", "postfix/smtpd", "disconnect from unknown[192.0.2.7] ehlo=1 quit=1 commands=2", ""},
		{"sender domain not found", "postfix/smtpd", "NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 450 4.1.8 <a@nowhere.example>: Sender address rejected: Domain not found; from=<a@nowhere.example> to=<b@example.com> proto=ESMTP helo=<mx.example.org>", ""},
		{"greylist", "postfix/smtpd", "NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 450 4.2.0 <b@example.com>: Recipient address rejected: Greylisted; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<mx.example.org>", ""},
		{"sasl not here", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure", ""},
		{"qmgr", "postfix/qmgr", "4Bc5Qk3R5Vz9sWl: from=<a@example.org>, size=1234, nrcpt=1 (queue active)", ""},
		{"cleanup not smtpd", "postfix/cleanup", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <v@example.net>: Relay access denied; from=<a@example.org> to=<v@example.net> proto=ESMTP helo=<x>", ""},

		// Hostile: envelope addresses and HELO are the client's.
		{"helo with client", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <v@example.net>: Relay access denied; from=<a@example.org> to=<v@example.net> proto=ESMTP helo=<unknown[10.0.0.1]>", "192.0.2.7"},
		{"recipient with client", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <RCPT from unknown[10.0.0.1]: x>: Relay access denied; from=<a@example.org> to=<RCPT from unknown[10.0.0.1]: x> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"pipelining payload", "postfix/smtpd", `improper command pipelining after CONNECT from unknown[192.0.2.7]: from unknown[10.0.0.1]\r\n`, "192.0.2.7"},
	})
	runMailCases(t, "postfix", "aggressive", []mailCase{
		{"sasl", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure", "192.0.2.7"},
		{"non-smtp", "postfix/smtpd", "warning: non-SMTP command from unknown[192.0.2.7]: GET / HTTP/1.1", "192.0.2.7"},
		{"relay still", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <v@example.net>: Relay access denied; from=<a@example.org> to=<v@example.net> proto=ESMTP helo=<x>", "192.0.2.7"},
	})
}

func TestPostfixSASLFilter(t *testing.T) {
	runMailCases(t, "postfix-sasl", "", []mailCase{
		// Seed 001 (FreeBSD).
		{"seed login", "postfix/smtpd", "warning: unknown[194.33.191.13]: SASL LOGIN authentication failed: authentication failure, sasl_username=ishoika@mail.kuji-clinic.info", "194.33.191.13"},
		{"seed login no user", "postfix/smtpd", "warning: unknown[94.156.102.204]: SASL LOGIN authentication failed: authentication failure", "94.156.102.204"},
		{"plain challenge", "postfix/smtpd", "warning: mx.example.org[192.0.2.7]: SASL PLAIN authentication failed: UGFzc3dvcmQ6", "192.0.2.7"},
		{"cram ipv6", "postfix/submission/smtpd", "warning: unknown[2001:db8::7]: SASL CRAM-MD5 authentication failed: authentication failure", "2001:db8::7"},
		{"no reason", "postfix/smtps/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed", "192.0.2.7"},
		{"port logging", "postfix-xyz/smtpd", "warning: unknown[192.0.2.7]:41234: SASL PLAIN authentication failed: ", "192.0.2.7"},
		// Benign and ignored.
		{"auth server lost", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: Connection lost to authentication server", ""},
		{"success", "postfix/smtpd", "4Bc5Qk3R5Vz9sWl: client=unknown[192.0.2.7], sasl_method=PLAIN, sasl_username=bob", ""},
		{"other warning", "postfix/smtpd", "warning: hostname x.example.org does not resolve to address 192.0.2.7", ""},
		// Hostile: sasl_username is the client's.
		{"username with client", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure, sasl_username=warning: unknown[10.0.0.1]: x", "192.0.2.7"},
		{"username fakes ignore", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure, sasl_username=x: Connection lost to authentication server", "192.0.2.7"},
	})
}

func TestSendmailRejectFilter(t *testing.T) {
	runMailCases(t, "sendmail-reject", "", []mailCase{
		// Seeds 000 and 003.
		{"seed did not issue", "sendmail", "s538V2ge001857: [114.97.113.212] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "114.97.113.212"},
		{"seed did not issue forged", "sendmail", "s0QBU1Ir002370: 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged) did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "218.18.59.223"},
		{"did not issue ipv6", "sm-mta", "u5N1ABC012345: [IPv6:2001:db8::7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA-v6", "2001:db8::7"},
		{"relaying denied", "sm-mta", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=[192.0.2.7], reject=550 5.7.1 <victim@example.net>... Relaying denied", "192.0.2.7"},
		{"relaying denied forged", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=x.example.org [192.0.2.7] (may be forged), reject=550 5.7.1 <victim@example.net>... Relaying denied. IP name possibly forged [192.0.2.7]", "192.0.2.7"},
		{"relaying denied auth", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=x.example.org [192.0.2.7], reject=550 5.7.1 <victim@example.net>... Relaying denied. Proper authentication required.", "192.0.2.7"},
		{"relaying denied ipv6", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=[IPv6:2001:db8::7], reject=550 5.7.1 <victim@example.net>... Relaying denied", "2001:db8::7"},
		{"check_relay dnsbl", "sendmail", "u5N1ABC012345: ruleset=check_relay, arg1=[192.0.2.7], arg2=192.0.2.7, relay=[192.0.2.7], reject=550 5.7.1 Rejected: 192.0.2.7 listed at zen.spamhaus.org", "192.0.2.7"},
		{"smtp attack", "sendmail", "u5N1ABC012345: x.example.org [192.0.2.7]: possible SMTP attack: command=AUTH, count=6", "192.0.2.7"},
		{"vrfy rejected", "sendmail", "u5N1ABC012345: x.example.org [192.0.2.7]: VRFY root [rejected]", "192.0.2.7"},
		{"pregreet", "sendmail", "rejecting commands from x.example.org [192.0.2.7] due to pre-greeting traffic after 0 seconds", "192.0.2.7"},
		{"ident", "sendmail", "u5N1ABC012345: root@x.example.org [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "192.0.2.7"},

		// Benign, or only in mode aggressive.
		{"connect forged normal", "sendmail", "NOQUEUE: connect from 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged)", ""},
		{"lost input normal", "sendmail", "u5N1ABC012345: lost input channel from x.example.org [192.0.2.7] to MTA after rcpt", ""},
		{"auth failure is sendmail-auth's", "sendmail", "s0QBU1Ir002370: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed", ""},
		{"delivery", "sendmail", "u5N1ABC012345: from=<a@example.org>, size=1234, class=0, nrcpts=1, msgid=<x@example.org>, proto=ESMTP, daemon=MTA, relay=x.example.org [192.0.2.7]", ""},
		{"user unknown no host", "sendmail", "u5N1ABC012345: <nobody@example.com>... User unknown", ""},
		{"other program", "postfix/smtpd", "s538V2ge001857: [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", ""},

		// Hostile: recipients, ident replies and reverse names.
		{"recipient fakes relay", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<a>, relay=[10.0.0.1], reject=550 5.7.1 <a>, relay=[192.0.2.7], reject=550 5.7.1 <a>, relay=[10.0.0.1], reject=550 5.7.1 <a>... Relaying denied", ""},
		{"recipient with bracket", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<x [10.0.0.1] y@example.net>, relay=[192.0.2.7], reject=550 5.7.1 <x [10.0.0.1] y@example.net>... Relaying denied", "192.0.2.7"},
		{"ident with space", "sendmail", "u5N1ABC012345: a [10.0.0.1]@x.example.org [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", ""},
		{"vrfy argument", "sendmail", "u5N1ABC012345: x.example.org [192.0.2.7]: VRFY [10.0.0.1] [rejected]", "192.0.2.7"},
	})
	runMailCases(t, "sendmail-reject", "aggressive", []mailCase{
		{"connect forged", "sendmail", "NOQUEUE: connect from 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged)", "218.18.59.223"},
		{"connect not forged", "sendmail", "NOQUEUE: connect from x.example.org [192.0.2.7]", ""},
		{"lost input", "sendmail", "u5N1ABC012345: lost input channel from x.example.org [192.0.2.7] to MTA after rcpt", "192.0.2.7"},
		{"did not issue still", "sendmail", "s538V2ge001857: [114.97.113.212] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "114.97.113.212"},
	})
}

func TestQpopperFilter(t *testing.T) {
	runMailCases(t, "qpopper", "", []mailCase{
		// Seed 001, its masked address replaced.
		{"seed password", "qpopper", `foo@example.com at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "foo@example.com" is incorrect.`, "192.0.2.7"},
		{"seed refused", "inetd", "refused connection from 192.0.2.7, service qpopper (tcp)", "192.0.2.7"},
		{"refused hostname", "inetd", "refused connection from client.example.org, service qpopper (tcp)", "client.example.org"},
		{"refused ipv6", "inetd", "refused connection from 2001:db8::7, service qpopper (tcp6)", "2001:db8::7"},
		{"popper ident", "popper", `bob at 192.0.2.7 (192.0.2.7): -ERR [AUTH] Password supplied for "bob" is incorrect.`, "192.0.2.7"},
		{"old without tag", "qpopper", `bob at client.example.org (192.0.2.7): -ERR Password supplied for "bob" is incorrect.`, "192.0.2.7"},
		{"pam", "qpopper", `bob at client.example.org (192.0.2.7): -ERR [AUTH] PAM authentication failed for user "bob": Authentication failure (7)`, "192.0.2.7"},
		// Benign.
		{"refused other service", "inetd", "refused connection from 192.0.2.7, service sshd (tcp)", ""},
		{"stats", "qpopper", "Stats: bob 0 0 3 4567 client.example.org 192.0.2.7", ""},
		{"io error", "qpopper", "(null) at client.example.org (192.0.2.7): -ERR POP EOF or I/O Error", ""},
		// Hostile: the user is written twice, first and last.
		{"user with peer", "qpopper", `x at y (10.0.0.1): -ERR [AUTH] Password supplied for "x at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "x at y (10.0.0.1): -ERR [AUTH] Password supplied for "x" is incorrect.`, ""},
		{"user with paren", "qpopper", `x(10.0.0.1) at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "x(10.0.0.1)" is incorrect.`, "192.0.2.7"},
	})
}

func TestQmailFilter(t *testing.T) {
	runMailCases(t, "qmail", "", []mailCase{
		{"password fail", "vpopmail", "vchkpw-smtp: password fail (pass: 'secret') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password fail no pass", "vpopmail", "vchkpw-pop3: password fail bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password fail tag program", "vchkpw-smtp", "password fail (pass: 'secret') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"user not found", "vpopmail", "vchkpw-pop3: vpopmail user not found nobody@example.com:192.0.2.7", "192.0.2.7"},
		{"user not found empty domain", "vpopmail", "vchkpw-pop3: vpopmail user not found nobody@:192.0.2.7", "192.0.2.7"},
		{"user not found mapped", "vpopmail", "vchkpw-smtp: vpopmail user not found nobody@example.com:::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"rblsmtpd", "qmail-smtpd", "rblsmtpd: 192.0.2.7 pid 4242: 451 Blocked, look at http://www.spamhaus.org/query/bl?ip=192.0.2.7", "192.0.2.7"},
		{"rblsmtpd multilog", "qmail-smtpd", "@400000004b1e6a4c2c8e4b14 rblsmtpd: 192.0.2.7 pid 4242: 451 Blocked", "192.0.2.7"},
		{"chkuser relaying", "qmail-smtpd", "CHKUSER rejected relaying: from <a@example.org::> remote <helo:client.example.org:192.0.2.7> rcpt <b@example.net> : client not allowed to relay", "192.0.2.7"},
		{"chkuser rcpt", "qmail", "@400000004b1e6a4c2c8e4b14 CHKUSER rejected rcpt: from <a@example.org::> remote <helo:unknown:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", "192.0.2.7"},
		{"chkuser empty host", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <mx:client.example.org:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", "192.0.2.7"},
		// Benign.
		{"login success", "vpopmail", "vchkpw-pop3: (PLAIN) login success bob@example.com:192.0.2.7", ""},
		{"chkuser accepted", "qmail-smtpd", "CHKUSER accepted rcpt: from <a@example.org::> remote <helo:client.example.org:192.0.2.7> rcpt <bob@example.com> : found existing recipient", ""},
		{"tcpserver", "qmail-smtpd", "tcpserver: ok 4242 mail.example.com:198.51.100.1:25 client.example.org:192.0.2.7::41234", ""},
		// Hostile: password, user, domain, HELO and envelope are the
		// client's.
		{"password with address", "vpopmail", "vchkpw-smtp: password fail (pass: 'x') a@b:10.0.0.1') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password with colons", "vpopmail", "vchkpw-smtp: password fail (pass: 'a@b:c:d') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password ending like a peer", "vpopmail", "vchkpw-smtp: password fail (pass: 'x bob@example.com:10.0.0.1') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"domain forging ipv6", "vpopmail", "vchkpw-pop3: vpopmail user not found x@a:2001:db8::192.0.2.7", ""},
		{"domain forging mapped", "vpopmail", "vchkpw-pop3: vpopmail user not found x@a::ffff:10.0.0.1::192.0.2.7", ""},
		{"domain colon", "vpopmail", "vchkpw-pop3: vpopmail user not found x@a:10.0.0.1:192.0.2.7", ""},
		{"helo with colons", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <x:y:10.0.0.1:client.example.org:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", "192.0.2.7"},
		{"helo fakes fields", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <x:y:10.0.0.1> rcpt <z> : not existing recipient:unknown:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", ""},
		{"rcpt fakes fields", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <helo:unknown:192.0.2.7> rcpt <x> remote <h:u:10.0.0.1> rcpt <y> : not existing recipient", ""},
	})
}

func TestSquirrelmailFilter(t *testing.T) {
	runMailCases(t, "squirrelmail", "", []mailCase{
		{"english", "squirrelmail", "[LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unknown user or password incorrect.", "192.0.2.7"},
		{"italian seed", "squirrelmail", "[LOGIN_ERROR] bob (example.com) from 192.0.2.7: Utente sconosciuto o password errata", "192.0.2.7"},
		{"german file form", "squirrelmail", "10/15/2011 14:31:03 [LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unbekannter Benutzer oder falsches Passwort.", "192.0.2.7"},
		{"japanese", "squirrel_logger", "[LOGIN_ERROR] bob (example.com) from 2001:db8::7: ユーザ名またはパスワードが正しくありません", "2001:db8::7"},
		{"no domain", "squirrelmail", "[LOGIN_ERROR] bob from 192.0.2.7: Unknown user or password incorrect.", "192.0.2.7"},
		// Benign.
		{"login", "squirrelmail", "[LOGIN] bob (example.com) from 192.0.2.7: Successful login", ""},
		{"logout", "squirrelmail", "[LOGOUT] bob (example.com) from 192.0.2.7: Logout", ""},
		{"other program", "apache2", "[LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unknown user or password incorrect.", ""},
		// Hostile: the user name is the attacker's.
		{"user with from", "squirrelmail", "[LOGIN_ERROR] x from 10.0.0.1: y (example.com) from 192.0.2.7: Unknown user or password incorrect.", "192.0.2.7"},
		{"user fakes tag", "squirrelmail", "[LOGIN] [LOGIN_ERROR] x (example.com) from 10.0.0.1: y (example.com) from 192.0.2.7: Successful login", ""},
	})
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
	testers := map[string]*Tester{}
	for _, tt := range templates {
		for _, mode := range []string{"", "aggressive"} {
			if testers[tt.filter+mode] == nil {
				if _, ok := BuiltinFilters()[tt.filter].Modes[mode]; ok || mode == "" {
					testers[tt.filter+mode] = mailTester(f, tt.filter, mode)
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
