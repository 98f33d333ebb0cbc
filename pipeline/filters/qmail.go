package filters

// qmailPrefix is what multilog (a TAI64N stamp) or splogger (seconds since
// the epoch) put before a qmail-smtpd log line when its log is forwarded
// by rsyslog imfile or through splogger.
const qmailPrefix = `^(?:@[0-9a-f]{24} |\d+\.\d+ )?`

// qmail is written from vpopmail's vchkpw, rblsmtpd and the chkuser
// patch of qmail-smtpd, as QmailToaster (CentOS 5) logs them.
//
// vchkpw ends its lines with "user@domain:IP". The domain is attacker
// text: one holding colons ("x@a:2001:db8::IP") would make the tail read
// as an IPv6 address; the ignoreregex vetoes any line whose text after
// "@domain:" holds another colon, except the "::ffff:" prefix ucspi-tcp6
// gives IPv4 peers. Native IPv6 peers of vchkpw are therefore not counted:
// the log format cannot tell them from that trick.
func qmail() Spec {
	return Spec{
		Name:    "qmail",
		Trust:   Trust{Users: []string{"root", "qmaill", "qmaild", "qmailr", "qmails"}},
		Summary: "vchkpw failures, rblsmtpd blocks, CHKUSER rejects",
		// vchkpw logs through syslog as "vpopmail" (text "vchkpw-smtp:
		// ...") or, in some builds, under "vchkpw-<service>". qmail-smtpd's
		// own lines (rblsmtpd, CHKUSER) go to multilog; forward them with
		// imfile and a tag starting "qmail".
		Programs: []string{"vpopmail", "vchkpw", "vchkpw-*", "qmail", "qmail-*", "rblsmtpd"},
		FailRegex: []string{
			// vchkpw-smtp: password fail (pass: 'secret') bob@example.com:192.0.2.7
			// vchkpw-pop3: password fail bob@example.com:192.0.2.7
			// Rightmost rule: the address ends the line.
			qmailPrefix + `(?:vchkpw(?:-[A-Za-z0-9]+)?: )?password fail (?:\(pass: '.*'\) )?[^\s@]*@[^\s@:]*:<HOST>$`,
			// vchkpw-pop3: vpopmail user not found nobody@example.com:192.0.2.7
			qmailPrefix + `(?:vchkpw(?:-[A-Za-z0-9]+)?: )?vpopmail user not found [^\s@]*@[^\s@:]*:<HOST>$`,
			// rblsmtpd: 192.0.2.7 pid 4242: 451 Blocked, look at http://www.spamhaus.org/query/bl?ip=192.0.2.7
			// Leftmost rule: the list's own text follows.
			// rblsmtpd: 192.0.2.7 pid 4242 sbl-xbl.spamhaus.org: 451 http://www.spamhaus.org/query/bl?ip=192.0.2.7   (the list's name: a common rblsmtpd patch)
			qmailPrefix + `rblsmtpd: <HOST> pid \d+(?: [^\s:]+)?: [45]\d\d .*$`,
			// rblsmtpd: relays.ordb.org blocked 192.0.2.7 host.example.org -
			// rblsmtpd's syslog patch: list, address, reverse name.
			qmailPrefix + `(?:rblsmtpd: )?[A-Za-z0-9.-]+ blocked <HOST> \S+ -$`,
			// qmail-smtpd: 421 badiprbl: ip 192.0.2.7 rbl: zen.spamhaus.org
			// The badiprbl patch of qmail-smtpd (splogger line).
			qmailPrefix + `qmail-smtpd: 4\d\d badiprbl: ip <HOST> rbl: \S+$`,
			// tcpserver: deny 4242 mail.example.com:198.51.100.1:25 client.example.org:192.0.2.7::41234
			// tcprules refusing the client: "deny PID LOCAL REMOTEHOST:REMOTEIP:REMOTEINFO:REMOTEPORT".
			// The remote info (an ident reply) is the client's; it and the
			// DNS name cannot hold a colon here, so the address is the
			// field between them (an ident reply with a colon is a miss).
			qmailPrefix + `tcpserver: deny \d+ \S+ [^\s:]*:<HOST>:[^\s:]*:\d+$`,
			// CHKUSER rejected relaying: from <a@example.org::> remote <helo:client.example.org:192.0.2.7> rcpt <b@example.net> : client not allowed to relay
			// CHKUSER rejected rcpt: from <a@example.org::> remote <helo:unknown:192.0.2.7> rcpt <nobody@example.com> : not existing recipient
			// Sender, HELO and recipient are attacker-written, on both
			// sides of the address; none may hold "<" or ">" (else a
			// miss). Inside remote <HELO:HOST:IP> the HELO may hold
			// colons; the greedy HELO leaves the address what follows the
			// last colon.
			// The reasons are chkuser 2.0.9's (its logging_format
			// documentation); "temporary DNS problem", "rcpt mailbox is
			// overquota" and "no auth resource available" are the server's
			// or the recipient's trouble, not the client's.
			qmailPrefix + `CHKUSER (?:rejected [a-z]+|intrusion threshold|must auth): from <[^<>]*> remote <[^<>]*:[^:<>\s]*:<HOST>> rcpt <[^<>]*> : (?:client not allowed to relay|not existing recipient|invalid (?:sender|rcpt) (?:MX domain|address(?: format)?)|max number of (?:allowed )?(?:invalid )?(?:recipients|rcpt)(?: reached)?|rcpt ignored, session over intrusion threshold|sender address rejected|sender not authenticated/authorized)$`,
		},
		IgnoreRegex: []string{
			// tcpserver's remote field has exactly three colons
			// (name:address:info:port); with more, the ident reply or an
			// IPv6 address (ucspi-tcp6) holds colons and the address
			// cannot be told apart: not counted.
			qmailPrefix + `tcpserver: deny \d+ \S+ (?:[^\s:]*:){4}`,
			// x@a:2001:db8::192.0.2.7 and the like: in the line's last
			// token "user@domain:REST", REST holds a colon that is not
			// the "::ffff:" prefix. Anchored at the end like the
			// failregexes, so colons in the password cannot trigger it.
			qmailPrefix + `(?:vchkpw(?:-[A-Za-z0-9]+)?: )?(?:password fail|vpopmail user not found) (?:.* )?[^\s@]*@[^\s@:]*:(?:[^\s@:]+:|:$|:[^:]|::[^f]|::f[^f]|::ff[^f]|::fff[^f]|::ffff[^:]|::f{0,4}$|::ffff:[^:]*:)[^\s@]*$`,
		},
	}
}
