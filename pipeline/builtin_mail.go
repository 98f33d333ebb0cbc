package pipeline

// mailFilters are the built-in filters for mail daemons: dovecot, postfix,
// postfix-sasl, sendmail-reject, qpopper, qmail and squirrelmail.
//
// Mail lines are full of attacker-written text: user names, passwords,
// HELO names, envelope addresses, ident replies. Each pattern binds <HOST>
// by one of two rules, and the comment above it says which:
//
//   - leftmost: the peer comes right after a fixed daemon-written prefix,
//     reached through fields the attacker cannot write or that cannot
//     contain a space or a bracket (postfix's "RCPT from name[IP]"), so
//     attacker text can only come after it;
//   - rightmost: attacker text comes first (a greedy .* over it) and
//     everything after the peer is daemon-written and matched strictly to
//     the end of the line, so the last candidate is the real one.
//
// Where attacker text sits on both sides of the peer (sendmail's echoed
// recipient, qmail's CHKUSER fields), the attacker fields are matched by
// classes that cannot hold their own delimiters: a line whose attacker
// fields contain them is a miss, never a wrong host.
func mailFilters() []FilterSpec {
	return []FilterSpec{
		dovecotFilter(),
		postfixFilter(),
		postfixSASLFilter(),
		sendmailRejectFilter(),
		qpopperFilter(),
		qmailFilter(),
		squirrelmailFilter(),
	}
}

// Dovecot login processes ("imap-login: ...") and their trailing fields.
// user=<...> is attacker-written and may hold ", rip=10.0.0.1, lip=..." of
// its own; it is matched greedily (rightmost rule): after the real rip=
// dovecot writes only lip= and its own flags (TLS, session=<id>, mpid=).
const (
	dovecotLogin = `^(?:imap|pop3|managesieve|submission)-login: (?:Info: )?`
	dovecotTail  = `(?:user=<.*>, )?(?:method=[^,\s]+, )?rip=<HOST>, lip=[^,\s]+(?:, .*)?$`
)

// dovecotFilter is written from what Dovecot 1.0 (CentOS 5, seed 000)
// through 2.3 print when a client fails to log in, when a passdb rejects a
// password, and what pam_unix prints under dovecot's PAM service.
//
// Not failures: "Login: user=<...>" (success), "Disconnected: Logged out"
// (a user's session ending, seed 000's ignoreregex), and in normal mode the
// disconnects without any authentication attempt, which mail clients
// produce when they probe capabilities; mode "aggressive" counts those too.
func dovecotFilter() FilterSpec {
	return FilterSpec{
		Name: "dovecot",
		// Dovecot 2.x relays every process's log through its log process
		// under the ident "dovecot" ("imap-login: ...", "auth: ...").
		// Dovecot 1.x's auth process logged as "dovecot-auth"; pam_unix in
		// 2.x's auth process logs under the binary's name, "auth" or
		// "auth-worker".
		Programs: []string{"dovecot", "dovecot-auth", "auth", "auth-worker"},
		FailRegex: []string{
			// imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>
			// pop3-login: Aborted login (auth failed, 3 attempts in 15 secs): user=<bob>, method=PLAIN, rip=::ffff:192.0.2.7, lip=::ffff:198.51.100.1
			// imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 4 secs): user=<bob>, method=LOGIN, rip=192.0.2.7, lip=198.51.100.1, TLS, session=<x8Kp2Zd7>
			// imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 4 secs) (auth_failed): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>
			// pop3-login: Aborted login (1 authentication attempts): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=198.51.100.1   (1.1, 1.2)
			// Rightmost rule (dovecotTail).
			dovecotLogin + `(?:Aborted login|Disconnected|Login aborted)(?:: [^(]*)? \((?:auth failed, \d+ attempts(?: in \d+ secs)?|\d+ authentication attempts?)\)(?: \(auth_failed\))?: ` + dovecotTail,
			// pop3-login: Aborted login: user=<bob>, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9   (1.0, seed 000)
			// Dovecot 1.0 gives no reason; method= shows an authentication
			// was attempted and, the login not having succeeded, failed.
			// "user=," is accepted too: it is how seed 000's lines read
			// once HTML has eaten the "<bob>", and admins paste such lines
			// into `sysban test`.
			dovecotLogin + `(?:Aborted login|Disconnected): user=(?:<.*>)?, method=[^,\s]+, rip=<HOST>, lip=[^,\s]+(?:, .*)?$`,
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
			`^auth(?:-worker)?(?:\([^)]*\))?: (?:Info: )?(?:conn unix:\S+ \(pid=\d+,uid=\d+\): auth-worker<\d+>: )?(?:pam|passwd-file|passwd|shadow|sql|ldap|checkpassword|bsdauth|vpopmail|lua|dict|static|oauth2)\(.*,<HOST>(?:,<[^<>\s]*>)?\): (?:pam_authenticate\(\) failed: [A-Za-z ]+(?: \([A-Za-z ?]+\))?|unknown user|[Pp]assword mismatch|User not known to the underlying authentication module)(?: \(SHA1 of given password: [0-9a-f]+\))?$`,
			// pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.7  user=bob
			// ruser and user are the login name: \S* keeps a name with
			// " rhost=10.0.0.1" in it from reaching past the real rhost
			// (such a line is a miss, not a wrong host).
			`^pam_unix\(dovecot:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=\S*)?$`,
		},
		Modes: map[string][]string{
			"aggressive": {
				// imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>
				// pop3-login: Disconnected (tried to use disallowed plaintext auth): user=<>, rip=192.0.2.7, lip=198.51.100.1, session=<x8Kp2Zd7>
				// imap-login: Disconnected: Connection closed (disconnected before greeting, waited 0 secs): user=<>, rip=192.0.2.7, lip=198.51.100.1
				dovecotLogin + `(?:Aborted login|Disconnected|Login aborted)(?:: [^(]*)? \((?:no auth attempts(?: in \d+ secs)?|tried to use (?:disabled|disallowed) plaintext auth|disconnected before greeting(?:, waited \d+ secs)?|disconnected while authenticating(?:, waited \d+ secs)?|client didn't finish SASL auth(?:, waited \d+ secs)?)\)(?: \([a-z_]+\))?: ` + dovecotTail,
			},
		},
	}
}

// postfixPrograms are the smtpd names of a postfix instance: the default
// one (postfix/smtpd), master.cf services with their own syslog_name
// (postfix/submission/smtpd, postfix/smtps/smtpd) and further instances
// (postfix-out/smtpd, postfix-xyz/submission/smtpd). path.Match's * stops
// at "/", hence the two depths.
var postfixPrograms = []string{"postfix*/smtpd", "postfix*/*/smtpd", "postfix*/postscreen"}

// pfClient is postfix's "name[address]" (name "unknown" when the reverse
// lookup failed or did not confirm), with the port when
// smtpd_client_port_logging is on and in postscreen's "[address]:port".
// The name is a verified DNS name: no spaces or brackets, so the address
// is always the first bracketed field after the fixed prefix (leftmost
// rule).
const pfClient = `[^\s\[\]]*\[<HOST>\](?::\d+)?`

// postfixFilter is written from postfix's smtpd and postscreen messages
// for rejected recipients and misbehaving clients. SASL failures are the
// postfix-sasl filter's (mode "aggressive" adds them here, for one jail
// doing both); a jail on each counts each line once per jail.
//
// Not failures: rejects a legitimate but misconfigured sender also causes
// (sender domain not found, greylisting 450s), "lost connection after"
// anything but AUTH (networks drop connections), and "NOQUEUE: reject"
// lines for other reasons.
func postfixFilter() FilterSpec {
	return FilterSpec{
		Name:     "postfix",
		Programs: postfixPrograms,
		FailRegex: []string{
			// NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <victim@example.net>: Relay access denied; from=<spam@example.org> to=<victim@example.net> proto=ESMTP helo=<WIN-X>
			// NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table; from=<> to=<nobody@example.com> proto=ESMTP helo=<mx.example.org>
			// NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.7; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>
			// NOQUEUE: reject: RCPT from [192.0.2.7]:51234: 550 5.7.1 Service unavailable; client [192.0.2.7] blocked using zen.spamhaus.org; from=<a@example.org>, to=<b@example.com>, proto=ESMTP, helo=<x>   (postscreen)
			// NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>
			// 4Bc5Qk3R5Vz9sWl: reject: RCPT from unknown[192.0.2.7]: 504 5.5.2 <x>: Helo command rejected: need fully-qualified hostname; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>
			// Leftmost rule: envelope addresses and HELO come after.
			`^(?:NOQUEUE|[0-9A-Za-z]+): reject: (?:RCPT|VRFY) from ` + pfClient + `: [45]\d\d [45]\.\d{1,3}\.\d{1,3} (?:<.*>: )?(?:Relay access denied|Recipient address rejected: User unknown in [a-z ]+ table|Service unavailable; [Cc]lient(?: host)? \[[^\]\s]*\] blocked using \S+|Client host rejected: cannot find your (?:reverse )?hostname|Helo command rejected: (?:Host not found|need fully-qualified hostname|Invalid name))(?:[;,] .*)?$`,
			// too many errors after RCPT from unknown[192.0.2.7]
			// too many errors after DATA (0 bytes) from unknown[192.0.2.7]
			`^too many errors after [A-Za-z-]+(?: [A-Za-z]+)?(?: \(\d+ bytes\))? from ` + pfClient + `$`,
			// lost connection after AUTH from unknown[192.0.2.7]
			// A client that drops the connection right after a failed AUTH
			// is a password guesser saving a round trip.
			`^lost connection after AUTH from ` + pfClient + `$`,
			// improper command pipelining after CONNECT from unknown[192.0.2.7]: EHLO x\r\nMAIL FROM:<a@b>\r\n
			// Leftmost rule: what follows ": " is the client's own bytes.
			`^improper command pipelining after [A-Za-z-]+ from ` + pfClient + `(?:: .*)?$`,
		},
		Modes: map[string][]string{
			"aggressive": {
				postfixSASLFail,
				// warning: non-SMTP command from unknown[192.0.2.7]: GET / HTTP/1.1
				`^warning: non-SMTP command from ` + pfClient + `: .*$`,
			},
		},
	}
}

// postfixSASLFail is smtpd's SASL failure for any mechanism:
//
//	warning: unknown[194.33.191.13]: SASL LOGIN authentication failed: authentication failure, sasl_username=a@example.com
//	warning: mx.example.org[192.0.2.7]: SASL PLAIN authentication failed: UGFzc3dvcmQ6
//	warning: unknown[2001:db8::7]: SASL CRAM-MD5 authentication failed: authentication failure
//
// Leftmost rule: sasl_username and the server's challenge come after.
const postfixSASLFail = `^warning: ` + pfClient + `: SASL [A-Z0-9-]+ authentication failed(?::.*)?$`

// postfixSASLFilter counts SMTP AUTH failures (seeds 001 and 004).
//
// Not failures: "Connection lost to authentication server" is smtpd
// losing its own link to dovecot's or cyrus' auth service: the client did
// nothing wrong, and banning on it would ban every user during an outage.
func postfixSASLFilter() FilterSpec {
	return FilterSpec{
		Name:      "postfix-sasl",
		Programs:  postfixPrograms,
		FailRegex: []string{postfixSASLFail},
		IgnoreRegex: []string{
			// warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: Connection lost to authentication server
			// Anchored through the reason, which smtpd writes right after
			// "failed: ", so a sasl_username cannot trigger it.
			`^warning: [^\s\[\]]*\[[^\]\s]*\](?::\d+)?: SASL [A-Z0-9-]+ authentication failed: Connection lost to authentication server$`,
		},
	}
}

// srRelay is how sendmail writes the peer: "[IP]", "name [IP]",
// "ident@name [IP]" (with IDENT lookups) and "[IPv6:2001:db8::7]", then
// " (may be forged)" when the reverse name did not confirm. The part before
// the bracket has no space or bracket, so an ident reply or reverse name
// cannot move the address (a line where it would is a miss).
const srRelay = `(?:[^\s\[\]]+ )?\[(?:IPv6:)?<HOST>\](?: \(may be forged\))?`

// srQID is sendmail's queue id, or NOQUEUE before one is assigned.
const srQID = `^(?:NOQUEUE|[0-9A-Za-z]+): `

// sendmailRejectFilter is written from sendmail's (8.13-8.18) log lines
// for clients it refused or that misbehaved. AUTH failures are the
// sendmail-auth filter's: sendmail logs them without the address.
//
// Decisions: "did not issue MAIL/EXPN/VRFY/ETRN" is a failure (seeds 000
// and 003 ban on it: scanners and password guessers connect and leave).
// "(may be forged)" alone only says the reverse DNS does not confirm,
// which plenty of legitimate senders have, and "lost input channel" is
// also a broken network: both count only in mode "aggressive".
func sendmailRejectFilter() FilterSpec {
	return FilterSpec{
		Name:     "sendmail-reject",
		Programs: []string{"sendmail", "sm-mta"},
		FailRegex: []string{
			// s538V2ge001857: [114.97.113.212] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
			// s0QBU1Ir002370: 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged) did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
			// u5N1ABC012345: [IPv6:2001:db8::7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA-v6
			srQID + srRelay + ` did not issue MAIL/EXPN/VRFY/ETRN during connection to \S+$`,
			// u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=[192.0.2.7], reject=550 5.7.1 <victim@example.net>... Relaying denied
			// u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=x.example.org [192.0.2.7] (may be forged), reject=550 5.7.1 <victim@example.net>... Relaying denied. IP name possibly forged [192.0.2.7]
			// The recipient is attacker-written and echoed after the
			// relay: both copies are matched by [^<>]*, so a recipient
			// holding "<", ">" (and so a fake ", relay=[...]") is a miss.
			srQID + `ruleset=check_rcpt, arg1=<[^<>]*>, relay=` + srRelay + `, reject=550 5\.7\.1 <[^<>]*>\.\.\. Relaying denied(?:\. [^<>\[\]]*(?: \[[^\]\s]*\])?)?$`,
			// u5N1ABC012345: ruleset=check_relay, arg1=[192.0.2.7], arg2=192.0.2.7, relay=[192.0.2.7], reject=550 5.7.1 Rejected: 192.0.2.7 listed at zen.spamhaus.org
			// access db and DNSBL rejects of the client itself; arg1/arg2
			// are its reverse name and address.
			srQID + `ruleset=check_relay, arg1=\S+, arg2=\S+, relay=` + srRelay + `, reject=5\d\d 5\.\d\.\d .*$`,
			// u5N1ABC012345: x.example.org [192.0.2.7]: possible SMTP attack: command=AUTH, count=6
			srQID + srRelay + `: possible SMTP attack: command=[A-Za-z]+, count=\d+$`,
			// u5N1ABC012345: x.example.org [192.0.2.7]: VRFY root [rejected]
			// Leftmost rule: the probed name comes after.
			srQID + srRelay + `: (?:EXPN|VRFY|expn|vrfy) .* \[rejected\]$`,
			// rejecting commands from x.example.org [192.0.2.7] due to pre-greeting traffic after 0 seconds
			`^rejecting commands from ` + srRelay + ` due to pre-greeting traffic after \d+ seconds$`,
		},
		Modes: map[string][]string{
			"aggressive": {
				// NOQUEUE: connect from 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged)
				`^NOQUEUE: connect from [^\s\[\]]+ \[(?:IPv6:)?<HOST>\] \(may be forged\)$`,
				// u5N1ABC012345: lost input channel from x.example.org [192.0.2.7] to MTA after rcpt
				srQID + `lost input channel from ` + srRelay + ` to \S+ after [a-z]+$`,
			},
		},
	}
}

// qpopperFilter is written from qpopper's (4.x) failed-login lines and from
// FreeBSD inetd's tcpwrappers refusal of the qpopper service (seed 001
// reads both from /var/log/all.log and auth.log).
func qpopperFilter() FilterSpec {
	return FilterSpec{
		Name: "qpopper",
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
			// refused connection from 192.0.2.7, service qpopper (tcp)
			// The client is "[ident@]host-or-address"; neither can hold a
			// space or comma.
			`^refused connection from (?:[^\s@,]+@)?<HOST>, service (?:q?popper|pop3s?) \(tcp6?\)$`,
		},
	}
}

// qmailPrefix is what multilog (a TAI64N stamp) or splogger (seconds since
// the epoch) put before a qmail-smtpd log line when its log is forwarded
// by rsyslog imfile or through splogger.
const qmailPrefix = `^(?:@[0-9a-f]{24} |\d+\.\d+ )?`

// qmailFilter is written from vpopmail's vchkpw, rblsmtpd and the chkuser
// patch of qmail-smtpd, as QmailToaster (seed 002) logs them.
//
// vchkpw ends its lines with "user@domain:IP". The domain is attacker
// text: one holding colons ("x@a:2001:db8::IP") would make the tail read
// as an IPv6 address; the ignoreregex vetoes any line whose text after
// "@domain:" holds another colon, except the "::ffff:" prefix ucspi-tcp6
// gives IPv4 peers. Native IPv6 peers of vchkpw are therefore not counted:
// the log format cannot tell them from that trick.
func qmailFilter() FilterSpec {
	return FilterSpec{
		Name: "qmail",
		// vchkpw logs through syslog as "vpopmail" (text "vchkpw-smtp:
		// ...") or, in some builds, under "vchkpw-<service>". qmail-smtpd's
		// own lines (rblsmtpd, CHKUSER) go to multilog; forward them with
		// imfile and a tag starting "qmail".
		Programs: []string{"vpopmail", "vchkpw", "vchkpw-*", "qmail", "qmail-*", "rblsmtpd"},
		FailRegex: []string{
			// vchkpw-smtp: password fail (pass: 'secret') bob@example.com:192.0.2.7
			// vchkpw-pop3: password fail bob@example.com:192.0.2.7
			// Rightmost rule: the address ends the line.
			qmailPrefix + `(?:vchkpw-[A-Za-z0-9]+: )?password fail (?:\(pass: '.*'\) )?[^\s@]*@[^\s@:]*:<HOST>$`,
			// vchkpw-pop3: vpopmail user not found nobody@example.com:192.0.2.7
			qmailPrefix + `(?:vchkpw-[A-Za-z0-9]+: )?vpopmail user not found [^\s@]*@[^\s@:]*:<HOST>$`,
			// rblsmtpd: 192.0.2.7 pid 4242: 451 Blocked, look at http://www.spamhaus.org/query/bl?ip=192.0.2.7
			// Leftmost rule: the list's own text follows.
			qmailPrefix + `rblsmtpd: <HOST> pid \d+: [45]\d\d .*$`,
			// CHKUSER rejected relaying: from <a@example.org::> remote <helo:client.example.org:192.0.2.7> rcpt <b@example.net> : client not allowed to relay
			// CHKUSER rejected rcpt: from <a@example.org::> remote <helo:unknown:192.0.2.7> rcpt <nobody@example.com> : not existing recipient
			// Sender, HELO and recipient are attacker-written, on both
			// sides of the address; none may hold "<" or ">" (else a
			// miss). Inside remote <HELO:HOST:IP> the HELO may hold
			// colons; the greedy HELO leaves the address what follows the
			// last colon.
			qmailPrefix + `CHKUSER rejected [a-z]+: from <[^<>]*> remote <[^<>]*:[^:<>\s]*:<HOST>> rcpt <[^<>]*> : (?:client not allowed to relay|not existing recipient|invalid (?:sender|rcpt) (?:MX domain|address)|max number of (?:invalid )?recipients reached|sender address rejected)$`,
		},
		IgnoreRegex: []string{
			// x@a:2001:db8::192.0.2.7 and the like: in the line's last
			// token "user@domain:REST", REST holds a colon that is not
			// the "::ffff:" prefix. Anchored at the end like the
			// failregexes, so colons in the password cannot trigger it.
			qmailPrefix + `(?:vchkpw-[A-Za-z0-9]+: )?(?:password fail|vpopmail user not found) (?:.* )?[^\s@]*@[^\s@:]*:(?:[^\s@:]+:|:$|:[^:]|::[^f]|::f[^f]|::ff[^f]|::fff[^f]|::ffff[^:]|::f{0,4}$|::ffff:[^:]*:)[^\s@]*$`,
		},
	}
}

// squirrelmailFilter reads the squirrel_logger plugin's LOGIN_ERROR
// events (seed 002). The message after the address is SquirrelMail's
// "Unknown user or password incorrect." in the user's interface language
// (seed 002's is Italian), so it is not matched: the event tag is what
// says "failure".
func squirrelmailFilter() FilterSpec {
	return FilterSpec{
		Name: "squirrelmail",
		// squirrel_logger's syslog ident; "squirrelmail" is also the tag to
		// give imfile for its own log file.
		Programs: []string{"squirrelmail", "squirrel_logger"},
		FailRegex: []string{
			// [LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unknown user or password incorrect.
			// 10/15/2011 14:31:03 [LOGIN_ERROR] bob (example.com) from 192.0.2.7: Utente sconosciuto o password errata.
			// Rightmost rule: the user name may hold " from 10.0.0.1: ";
			// the localised message after the address is SquirrelMail's.
			`^(?:[0-9/.-]+ [0-9:]+ )?\[LOGIN_ERROR\] .* from <HOST>: .+$`,
		},
	}
}
