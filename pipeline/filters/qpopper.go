package filters

// qpopper is written from qpopper's (4.x) failed-login lines (USER/PASS,
// PAM and APOP; pop_msg logs every -ERR as "user at host (IP): -ERR ...",
// "(null)" before USER) and from
// FreeBSD inetd's tcpwrappers refusal of the qpopper service (FreeBSD
// writes both to /var/log/all.log and auth.log).
func qpopper() Spec {
	return Spec{
		Name:    "qpopper",
		Summary: "wrong passwords, APOP failures, refused users, tcpwrappers refusals",
		Trust:   Trust{Users: []string{"root"}},
		// qpopper's binary is popper; builds differ in the ident. The
		// refusals come from inetd (FreeBSD's built-in tcpwrappers), the
		// only logger that names the service refused (tcpd does not, so
		// its lines would count refusals of every wrapped service).
		Programs: []string{"qpopper", "popper", "inetd"},
		FailRegex: []string{
			// foo@example.com at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "foo@example.com" is incorrect.
			// The user is attacker-written and comes first and again at
			// the end; it must be free of spaces and quotes (else a miss),
			// which leaves one place for " at name (IP): -ERR".
			`^[^\s"]+ at [^\s()]+ \(<HOST>\): -ERR (?:\[AUTH\] )?Password supplied for "[^"]*" is incorrect\.$`,
			// foo at client.example.org (192.0.2.7): -ERR [AUTH] PAM authentication failed for user "foo": Authentication failure (7)
			`^[^\s"]+ at [^\s()]+ \(<HOST>\): -ERR (?:\[AUTH\] )?PAM authentication failed for user "[^"]*": [A-Za-z ]+(?: \(\d+\))?$`,
			// root@example.com at client.example.org (192.0.2.7): -ERR [AUTH] "root": access denied.
			// bob at client.example.org (192.0.2.7): -ERR [AUTH] Permission denied.
			// The user is refused by the nonauthfile/authfile lists, or is
			// root over APOP (4.x pop_pass.c, pop_apop.c).
			`^[^\s"]+ at [^\s()]+ \(<HOST>\): -ERR \[AUTH\] (?:"[^"]*": access denied|Permission denied)\.$`,
			// bob at client.example.org (192.0.2.7): -ERR [AUTH] authentication failure
			// bob at client.example.org (192.0.2.7): -ERR [AUTH] not authenticated
			// APOP: a wrong digest, a user without an APOP secret.
			`^[^\s"]+ at [^\s()]+ \(<HOST>\): -ERR \[AUTH\] (?:authentication failure|not authenticated)$`,
			// refused connection from 192.0.2.7, service qpopper (tcp)
			// The client is "[ident@]host-or-address"; neither can hold a
			// space or comma.
			`^refused connection from (?:[^\s@,]+@)?<HOST>, service (?:q?popper|pop3s?) \(tcp6?\)$`,
		},
	}
}
