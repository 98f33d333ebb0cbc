package filters

// Dovecot login processes ("imap-login: ...") and their trailing fields.
// user=<...> is attacker-written and may hold ", rip=10.0.0.1, lip=..." of
// its own; it is matched greedily (rightmost rule): after the real rip=
// dovecot writes only lip= and its own flags (TLS, session=<id>, mpid=).
const (
	// dovecotOutcome is what a passdb reports for a rejected password or
	// user, with the hash auth_verbose_passwords=sha1 appends.
	dovecotOutcome = `(?:pam_authenticate\(\) failed: [A-Za-z ]+(?: \([A-Za-z ?]+\))?|unknown user|[Pp]assword mismatch(?: \(for LDAP bind\))?|User not known to the underlying authentication module|invalid credentials)(?: \(SHA1 of given password: [0-9a-f]+\))?`
	// dovecotStamp is the TAI64N stamp of multilog (Dovecot run under
	// daemontools, as qmail toasters do), kept when the file is forwarded.
	dovecotStamp = `^(?:@[0-9a-f]{24} )?`
	// dovecotLogin is the login process's prefix through syslog (and in
	// a multilog file). In Dovecot's own log file (log_path) the process
	// is the line's tag ("pop3-login: Info: ..."), so the text starts at
	// "Info: ": dovecotFileLogin. Each pattern comes in both forms, so
	// that each keeps a literal for the prefilter.
	dovecotLogin     = dovecotStamp + `(?:imap|pop3|managesieve|submission)-login: (?:Info: )?`
	dovecotFileLogin = `^Info: `
	// dovecotReason is the login process's disconnect reason before the
	// parenthesis with the verdict: Dovecot's words, with an error
	// string that may hold its own parentheses ("read(size=1017) failed:
	// Connection reset by peer").
	dovecotReason = `(?:Aborted login|Disconnected|Login aborted|Client has quit the connection|Remote closed connection|Connection closed)(?:: [^()]*(?:\([^()]*\)[^()]*)*)?`
	// dovecotAuth is the auth process's prefix: "auth: ", "auth-worker(N):
	// ", 2.3's "conn unix:auth-worker (pid=N,uid=N): auth-worker<N>: "; in
	// the log file the process is the tag and the text starts after it.
	dovecotAuth     = `^auth(?:-worker)?(?:\([^)]*\))?: (?:Info: )?` + dovecotAuthConn
	dovecotFileAuth = `^Info: ` + dovecotAuthConn
	dovecotAuthConn = `(?:conn unix:\S+ \((?:pid=\d+,)?uid=\d+\): auth-worker<\d+>: )?`
	// dovecotAuthAny is either, for the attempt rules.
	dovecotAuthAny = `^(?:auth(?:-worker)?(?:\([^)]*\))?: (?:Info: )?|Info: )` + dovecotAuthConn
	// dovecotPassdb names the passdb drivers whose verdicts count.
	dovecotPassdb = `(?:pam|passwd-file|passwd|shadow|sql|ldap|checkpassword|bsdauth|vpopmail|lua|dict|static|oauth2)\(.*,<HOST>(?:,(?:<[^<>\s]*>)?)?\): ` + dovecotOutcome + `$`
	// dovecotFailed is the verdict of a login that failed.
	dovecotFailed = dovecotReason + ` \((?:auth failed, \d+ attempts(?: in \d+ secs)?|\d+ authentication attempts?|proxy dest auth failed)\)(?: \(auth_failed\))?: ` + dovecotTail
	// dovecotNoAuth is the verdict of a login process that saw no
	// authentication (aggressive).
	dovecotNoAuth = dovecotReason + ` \((?:no auth attempts(?: in \d+ secs)?|tried to use (?:disabled|disallowed) (?:plaintext|cleartext) auth|disconnected before (?:greeting|auth was ready)(?:, waited \d+ secs)?|disconnected while authenticating(?:, waited \d+ secs)?|disconnected during TLS handshake|client didn't finish SASL auth(?:, waited \d+ secs)?)\)(?: \([a-z_]+\))?: ` + dovecotTail
	dovecotTail   = `(?:user=<.*>, )?(?:method=[^,\s]+, )?rip=<HOST>(?:, lip=[^,\s]+)?(?:, .*)?$`
)

// dovecot is written from what Dovecot 1.0 (as CentOS 5 shipped it)
// through 2.3 print when a client fails to log in, when a passdb rejects a
// password, and what pam_unix prints under dovecot's PAM service.
//
// Not failures: "Login: user=<...>" (success), "Disconnected: Logged out"
// (a user's session ending, which fail2ban setups of Dovecot 1.0 on
// CentOS 5 ignored too), and in normal mode the
// disconnects without any authentication attempt, which mail clients
// produce when they probe capabilities; mode "aggressive" counts those too.
func dovecot() Spec {
	return Spec{
		Name:    "dovecot",
		Trust:   Trust{Users: []string{"root", "dovecot", "dovenull"}, Units: []string{"dovecot.service"}},
		Summary: "failed IMAP/POP3 logins, passdb and PAM failures",
		// Dovecot 2.x relays every process's log through its log process
		// under the ident "dovecot" ("imap-login: ...", "auth: ...").
		// Dovecot 1.x's auth process logged as "dovecot-auth"; pam_unix in
		// 2.x's auth process logs under the binary's name, "auth" or
		// "auth-worker".
		// Dovecot's own log file (log_path) names the process as the tag:
		// imap-login, auth-worker(4242).
		Programs: []string{"dovecot", "dovecot-auth", "auth", "auth-worker", "*-login", "auth-worker(*)"},
		FailRegex: []string{
			// imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>
			// pop3-login: Aborted login (auth failed, 3 attempts in 15 secs): user=<bob>, method=PLAIN, rip=::ffff:192.0.2.7, lip=::ffff:198.51.100.1
			// imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 4 secs): user=<bob>, method=LOGIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>
			// imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 4 secs) (auth_failed): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>
			// pop3-login: Aborted login (1 authentication attempts): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1   (1.1, 1.2)
			// Rightmost rule (dovecotTail).
			// imap-login: Disconnected (proxy dest auth failed): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1   (a proxy whose backend refused the login)
			// submission-login: Client has quit the connection (auth failed, 1 attempts in 2 secs): user=<bob>, method=LOGIN, rip=192.0.2.7, lip=198.51.100.1
			dovecotLogin + dovecotFailed,
			// Jan 29 09:33:58 pop3-login: Info: Aborted login (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7   (log_path file)
			dovecotFileLogin + dovecotFailed,
			// pop3-login: Aborted login: user=<bob>, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9   (1.0, CentOS 5)
			// Dovecot 1.0 gives no reason; method= shows an authentication
			// was attempted and, the login not having succeeded, failed.
			// "user=," is accepted too: it is how such lines read once a
			// web page has eaten the "<bob>", and admins paste such lines
			// into `sysban test`.
			dovecotLogin + `(?:Aborted login|Disconnected): user=(?:<.*>)?, method=[^,\s]+, rip=<HOST>(?:, lip=[^,\s]+)?(?:, .*)?$`,
			// auth: passwd-file(bob,192.0.2.7,<x8Kp2Zd7>): unknown user
			// auth: passwd-file(bob,192.0.2.7,<x8Kp2Zd7>): Password mismatch
			// auth-worker(4242): pam(bob,192.0.2.7,<x8Kp2Zd7>): pam_authenticate() failed: Authentication failure (Password mismatch?)
			// auth-worker(4242): conn unix:auth-worker (pid=4240,uid=97): auth-worker<1>: sql(bob,192.0.2.7,<x8Kp2Zd7>): unknown user
			// auth(default): pam(bob,192.0.2.7): pam_authenticate() failed: User not known to the underlying authentication module   (1.x)
			// Rightmost rule: the user name may hold "x,10.0.0.1)"; after
			// the real address come only the session id and one of the
			// fixed outcomes to the end of the line. The plaintext
			// "(given password: ...)" of auth_verbose_passwords=plain is
			// attacker-written and deliberately not accepted there.
			// auth: Info: ldap(bob,192.0.2.7,): invalid credentials   (2.2 LDAP bind; empty session id)
			dovecotAuth + dovecotPassdb,
			// Jan 29 13:54:06 auth-worker(22401): Info: sql(bob,192.0.2.7,<x8Kp2Zd7>): unknown user   (log_path file)
			dovecotFileAuth + dovecotPassdb,
			// auth(bob,192.0.2.7,sasl:plain)<x8Kp2Zd7>: Info: passwd-file: Password mismatch   (2.4)
			// auth-worker(bob,192.0.2.7)<4242><x8Kp2Zd7>: request [12]: Info: sql: unknown user
			// Dovecot 2.4 names the request first and the passdb (by its
			// configured name) after. After the real address only the
			// mechanism, the pids and session id and a fixed outcome
			// follow, to the end of the line, so exactly one ",ADDRESS"
			// can be followed by a valid tail, wherever the user name put
			// its own; the lazy .*? keeps the flag ",master" from being
			// read as a host name.
			`^auth(?:-worker)?\(.*?,<HOST>(?:,sasl:[a-z0-9_-]+)?(?:,master)?\)(?:<\d+>)?(?:<[^<>\s]*>)?(?:: request \[\d+\])?: (?:Info: )?[A-Za-z0-9_.-]+: ` + dovecotOutcome + `$`,
			// pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.7  user=bob
			// ruser and user are the login name: \S* keeps a name with
			// " rhost=10.0.0.1" in it from reaching past the real rhost
			// (such a line is a miss, not a wrong host).
			dovecotStamp + `(?:dovecot-auth: )?pam_(?:unix|sss)\(dovecot:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=\S*)?$`,
		},
		Modes: map[string][]string{
			"aggressive": {
				// imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>
				// pop3-login: Disconnected (tried to use disallowed plaintext auth): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>
				// imap-login: Disconnected: Connection closed (disconnected before greeting, waited 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1
				// imap-login: Disconnected (disconnected before auth was ready, waited 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1
				// imap-login: Login aborted: Connection closed: SSL_accept() failed: error:0A0000C1:SSL routines::no shared cipher (disconnected during TLS handshake) (tls_handshake_not_finished): user=<>, rip=192.0.2.7, lip=198.51.100.1   (2.4)
				dovecotLogin + dovecotNoAuth,
				dovecotFileLogin + dovecotNoAuth,
			},
		},
		// Dovecot, a wrong password: each passdb's verdict
		// ("passwd-file(...): Password mismatch", "pam(...):
		// pam_authenticate() failed") with auth_verbose = yes, and
		// pam_unix's line; a passdb that does not know the user says so and
		// the next one decides (quiet). The login process's "Disconnected
		// (auth failed, N attempts)" ends the session: with auth_verbose =
		// no and a passwd-file it is the only line.
		Attempts: &AttemptRules{
			Lines: []string{
				dovecotStamp + `(?:dovecot-auth: )?pam_unix\(dovecot:auth\): authentication failure;`,
				// SSSD's module (RHEL, FreeIPA) prints the same line after
				// pam_unix's for the same attempt.
				dovecotStamp + `(?:dovecot-auth: )?pam_sss\(dovecot:auth\): authentication failure;`,
				dovecotAuthAny + `pam\(`,
				dovecotAuthAny + `[a-z0-9-]+\(`,
			},
			Quiet: []string{
				dovecotAuthAny + `[a-z0-9-]+\(.*\): (?:unknown user|User not known to the underlying authentication module)$`,
			},
			Ends: []string{
				`^(?:@[0-9a-f]{24} )?(?:(?:imap|pop3|managesieve|submission)-login: (?:Info: )?|Info: )` + dovecotReason + ` \(auth failed, (?P<n>\d+) attempts`,
				`^(?:@[0-9a-f]{24} )?(?:(?:imap|pop3|managesieve|submission)-login: (?:Info: )?|Info: )` + dovecotReason + ` \((?P<n>\d+) authentication attempts?\)`,
				`^(?:@[0-9a-f]{24} )?(?:(?:imap|pop3|managesieve|submission)-login: (?:Info: )?|Info: )` + dovecotReason + ` \(proxy dest auth failed\)`,
				dovecotLogin + `(?:Aborted login|Disconnected): user=(?:<.*>)?, method=`,
			},
		},
	}
}
