package filters

import "time"

// Pieces of sendmail's lines, shared by sendmail-auth and saslauthd.
// sendmail writes the client as
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

// saCorrelations are sendmail's lines that supply the client of a queue id
// after an AUTH failure that named none, shared by sendmail-auth and
// saslauthd.
func saCorrelations() []Correlation {
	const summary = "queue id: `AUTH failure` + the client line"
	return []Correlation{
		// s0QBU1Ir002370: 223.59.18.218.broad.example.cn [218.18.59.223] (may be forged) did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
		{Open: saOpen, Close: `^` + saQID + `: ` + saClient + ` did not issue [A-Z/]+ during connection to \S+$`, Window: saWindow, Summary: summary},
		// s0QBU1Ir002370: lost input channel from [192.0.2.7] to MTA after auth
		{Open: saOpen, Close: `^` + saQID + `: lost input channel from ` + saClient + ` to \S+ after \S+$`, Window: saWindow, Summary: summary},
		// s0QBU1Ir002370: from=<a@example.org>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[192.0.2.7]
		// from= is the client's; relay= is the last field, so the host is
		// bound at the end of the line.
		{Open: saOpen, Close: `^` + saQID + `: from=.*, relay=` + saClient + `$`, Window: saWindow, Summary: summary},
	}
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

// sendmailPrograms are the syslog idents sendmail logs under: its name,
// Debian's sm-mta, and its process title sm-acceptingconnections, which
// some systems' syslog takes as the ident.
func sendmailPrograms() []string {
	return []string{"sendmail", "sm-mta", "sm-acceptingconnections"}
}
