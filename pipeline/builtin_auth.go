package pipeline

import "time"

// authFilters are the built-in filters for SASL authentication failures
// that need more than one line: sendmail-auth and saslauthd.
func authFilters() []FilterSpec {
	return []FilterSpec{sendmailAuthFilter(), saslauthdFilter()}
}

// Pieces of sendmail's lines. sendmail writes the client as
// "name [IP]", "[IP]", "name [IP] (may be forged)" or, with ident lookups,
// "user@name [IP]"; the name comes from reverse DNS, which the owner of the
// address block controls, but the resolver only hands out host-name
// characters, and the ident user has no blank, bracket or "@". The host is
// bound only inside the brackets after them. IPv6 clients appear as
// "[IPv6:2001:db8::1]".
const (
	saQID     = `(?P<key>[0-9A-Za-z]{8,20})`
	saPTRName = `(?:[^\s\[\]@]+@)?[0-9A-Za-z._-]+`
	saClient  = `(?:` + saPTRName + ` )?\[(?:IPv6:)?<HOST>\](?: \(may be forged\))?`
)

// Sendmail's lines that supply the client of a queue id after an AUTH
// failure that named none, shared by sendmail-auth and saslauthd.
var saCorrelations = []Correlation{
	// s0QBU1Ir002370: 223.59.18.218.broad.example.cn [218.18.59.223] (may be forged) did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
	{Open: saOpen, Close: `^` + saQID + `: ` + saClient + ` did not issue [A-Z/]+ during connection to \S+$`, Window: saWindow},
	// s0QBU1Ir002370: lost input channel from [192.0.2.7] to MTA after auth
	{Open: saOpen, Close: `^` + saQID + `: lost input channel from ` + saClient + ` to \S+ after \S+$`, Window: saWindow},
	// s0QBU1Ir002370: from=<a@example.org>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[192.0.2.7]
	// from= is the client's; relay= is the last field, so the host is
	// bound at the end of the line.
	{Open: saOpen, Close: `^` + saQID + `: from=.*, relay=` + saClient + `$`, Window: saWindow},
}

// saOpen is sendmail's AUTH failure without the client (sendmail 8.13
// and others at LogLevel 9 or more):
// s0QBU1Ir002370: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed
const saOpen = `^` + saQID + `: AUTH failure \([A-Za-z0-9_-]+\): .*$`

// saWindow: sendmail gives up on an idle SMTP session long before this.
const saWindow = 10 * time.Minute

// saFail is the single-line AUTH failure that names the client
// (sendmail 8.14 and later); the user is the client's, relay= comes last.
// [qid: ]AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=admin, relay=[192.0.2.7]
const saFail = `^(?:[0-9A-Za-z]{8,20}: )?AUTH failure \([A-Za-z0-9_-]+\): .*, relay=` + saClient + `$`

// sendmailAuthFilter: failed SMTP AUTH at sendmail. Seed 003's host runs
// sendmail with saslauthd, which never logs the client's address; sendmail
// at LogLevel 9+ logs the failure under the queue id and, later, the same
// queue id's line with the client, other daemons' lines in between.
func sendmailAuthFilter() FilterSpec {
	return FilterSpec{
		Name:     "sendmail-auth",
		Programs: []string{"sendmail", "sm-mta"},
		FailRegex: []string{
			saFail,
			// s0QBU1Ir002370: host.example [192.0.2.7]: possible SMTP attack: command=AUTH, count=5
			`^(?:[0-9A-Za-z]{8,20}: )?` + saClient + `: possible SMTP attack: command=AUTH, count=\d+$`,
		},
		Correlate: saCorrelations,
	}
}

// saslauthdFilter: failures of authentication checked by saslauthd.
//
// saslauthd itself never learns the client's address (the daemon that asks
// it passes user and password only: its log lines and PAM's "rhost=" are
// empty), and its worker pid has nothing in common with the asking
// daemon's session, so its own lines cannot be attributed; tying them to a
// client by time would ban the wrong address whenever two sessions
// overlap. This filter therefore reads the daemons that ask saslauthd and
// do know the client: sendmail (the AUTH failure completed by the queue
// id's client line, as in sendmail-auth) and Cyrus IMAP/POP3 ("badlogin:").
// Postfix's SASL failures name the client on one line: see postfix-sasl.
func saslauthdFilter() FilterSpec {
	return FilterSpec{
		Name:     "saslauthd",
		Programs: []string{"sendmail", "sm-mta", "imap", "imaps", "pop3", "pop3s", "imapd", "pop3d", "cyrus/imap", "cyrus/imaps", "cyrus/pop3", "cyrus/pop3s"},
		FailRegex: []string{
			saFail,
			// badlogin: client.example [192.0.2.7] PLAIN [SASL(-13): authentication failure: checkpass failed]
			// badlogin: [192.0.2.7] plaintext bob SASL(-13): authentication failure: checkpass failed
			// The mechanism or "plaintext user" after the client is
			// client-chosen; the host is bound right after "badlogin: ".
			`^badlogin: (?:[0-9A-Za-z._-]+ )?\[<HOST>\] \S.*$`,
		},
		Correlate: saCorrelations,
	}
}
