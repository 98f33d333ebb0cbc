package filters_test

import (
	"testing"
)

func TestDovecotFilter(t *testing.T) {
	runCases(t, "dovecot", "", []lineCase{
		// Dovecot 1.0 on CentOS 5; the second as pasted from a web
		// page that ate the user=<...>.
		{"1.0 aborted login", "dovecot", "pop3-login: Aborted login: user=<everstar>, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9", "::ffff:198.24.142.139"},
		{"1.0 as pasted from a web page, user eaten", "dovecot", "pop3-login: Aborted login: user=, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9", "::ffff:198.24.142.139"},
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
	runCases(t, "dovecot", "aggressive", []lineCase{
		{"auth failed still", "dovecot", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1", "192.0.2.7"},
		{"no auth attempts", "dovecot", "imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"plaintext disallowed", "dovecot", "pop3-login: Disconnected (tried to use disallowed plaintext auth): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>", "192.0.2.7"},
		{"before greeting", "dovecot", "imap-login: Disconnected: Connection closed (disconnected before greeting, waited 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1", "192.0.2.7"},
		{"login success", "dovecot", "imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, mpid=4242, TLS, session=<x8Kp2Zd7>", ""},
	})
}
