package filters

import "slices"

// Exim 4 pieces. Lines through syslog (log_file_path = syslog) keep Exim's
// own time stamp unless syslog_timestamp is false; the mainlog forwarded
// by imfile has it too, and the pid with log_selector +pid.
//
// The client is "[name ][(helo) ][ip][:port]" (host_and_ident), then
// " I=[local]:port" with +incoming_interface and " U=ident": the name is
// a looked-up DNS name and the HELO, the client's, has no blank or
// parenthesis (Exim refuses such HELOs unless helo_accept_junk_hosts), so
// the address is the bracket right after them (leftmost rule). A junk HELO
// such as "x) [10.0.0.1]: 535 y (" could still read as a client of its
// own: every pattern therefore either matches Exim's fields strictly up to
// a fixed text after the address, or has an ignoreregex for a line that
// holds that fixed text twice.
const (
	eximPrefix = `^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{3})?(?: [-+]\d{4})? )?(?:\[\d+(?:/\d+)?\] )?`
	eximHost   = `(?:[^\s()\[\]]+ )?(?:\([^\s()]*\) )?\[<HOST>\](?::\d+)?`
	// Ci= is the connection id 4.97+ logs (log_selector +connection_id).
	eximIdent = `(?: I=\[[^\]\s]+\](?::\d+)?)?(?: Ci=\d+)?(?: U=\S+)?`
)

// exim is written from Exim 4's smtp_in.c and acl.c (4.6x to 4.99): failed
// SMTP AUTH, recipients the ACLs reject, clients dropped for protocol
// errors, and in modes "ddos" and "aggressive" clients that talk before
// the banner or use AUTH without it being offered.
//
// Not failures: "no MAIL in SMTP connection" (also legitimate address
// checks), 435 temporary authentication failures (the server's own
// trouble), and "501 Authentication cancelled".
func exim() Spec {
	probes := []string{
		// SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[192.0.2.7]:51241 input="EHLO x\r\n"
		// SMTP protocol synchronization error (next input sent too soon: pipelining was not advertised): rejected "EHLO x" H=(x) [192.0.2.7]:51242 next input="MAIL FROM:<a@b>\r\n"
		// The client's input follows the client (leftmost rule); in the
		// second form the rejected command, quoted and with its quotes
		// escaped, comes first and holds no blank-free "H=".
		eximPrefix + `SMTP protocol synchronization error \((?:input sent without waiting for greeting|next input sent too soon: pipelining was not advertised)\): rejected (?:connection from|"(?:[^"\\]|\\.)*") H=` + eximHost + eximIdent + ` (?:next )?input=.*$`,
		// SMTP protocol error in "AUTH LOGIN" H=(x) [192.0.2.7]:51243 AUTH command used when not advertised
		// SMTP protocol error in "AUTH LOGIN" H=(x) [192.0.2.7]:40518 I=[198.51.100.1]:25 Ci=21577 LOGIN authentication mechanism not supported
		eximPrefix + `SMTP protocol error in "(?:[^"\\]|\\.)*" H=` + eximHost + eximIdent + ` (?:AUTH command used when not advertised|[A-Za-z0-9_-]+ authentication mechanism not supported)$`,
	}
	return Spec{
		Name:    "exim",
		Trust:   Trust{Users: []string{"root", "Debian-exim", "exim", "mail"}, Units: []string{"exim4.service", "exim.service"}},
		Summary: "SMTP AUTH failures, rejected recipients, clients dropped for errors; early talkers in `ddos`",
		// exim: its syslog ident (log_file_path = syslog, Debian's exim4
		// too); exim-*: imfile tags for the mainlog and rejectlog.
		Programs: []string{"exim", "exim4", "exim-*"},
		FailRegex: []string{
			// dovecot_login authenticator failed for (User) [192.0.2.7]:51234: 535 Incorrect authentication data (set_id=info@example.com)
			// plain authenticator failed for H=(x) [192.0.2.7]:51234 U=exim: 535 Incorrect authentication data   (4.99+ tags H= and U=)
			// Leftmost rule: set_id is the client's and comes last.
			eximPrefix + `[A-Za-z0-9_-]+ authenticator failed for (?:H=)?` + eximHost + eximIdent + `: 535 .*$`,
			// H=(x) [192.0.2.7]:51236 F=<a@example.org> rejected RCPT <b@example.net>: relay not permitted
			// H=mail.example.org [192.0.2.7] F=<> rejected RCPT <nobody@example.com>: Unrouteable address
			// Leftmost rule: H= starts the line; sender, recipient and the
			// ACL's message come after.
			// The fields between the client and "rejected" are Exim's own
			// blank-free ones (TLS: X=, CV=, SNI=) up to the sender
			// F=<...>, which holds no angle bracket: the real client's
			// "[IP]:port" can be none of them, so a junk HELO cannot carry
			// a forged client through to "rejected". (A client
			// certificate's DN="..." holds blanks: such lines are missed.)
			// H=(x) [192.0.2.7]:3755 I=[198.51.100.1]:25 F=a@example.org rejected RCPT b@example.net: relay not permitted   (older 4.x: no angle brackets)
			eximPrefix + `H=` + eximHost + eximIdent + `(?: X=\S+)?(?: CV=\S+)?(?: SNI=\S+)?(?: F=(?:<[^<>]*>|[^\s<>]+))? (?:temporarily )?rejected RCPT (?:<|[^\s<>]+: ).*$`,
			// SMTP call from (x) [192.0.2.7]:51237 dropped: too many syntax or protocol errors (last command was "RCPT TO:<a@b>", C=EHLO,MAIL,RCPT)
			// SMTP call from [192.0.2.7] dropped: too many nonmail commands (last was "RSET")
			eximPrefix + `SMTP call from ` + eximHost + eximIdent + ` dropped: too many (?:syntax or protocol errors|nonmail commands|unrecognized commands).*$`,
		},
		IgnoreRegex: []string{
			// Lines whose fixed text after the client appears twice: a junk
			// HELO (helo_accept_junk_hosts) or the client's own input
			// repeating it, so the first client field may be forged.
			eximPrefix + `[A-Za-z0-9_-]+ authenticator failed for .*: 535 .*: 535 `,
			eximPrefix + `SMTP call from .* dropped: too many .* dropped: too many `,
			eximPrefix + `H=.* rejected RCPT .* rejected RCPT `,
			eximPrefix + `SMTP protocol synchronization error .* input=.* input=`,
		},
		Modes: map[string][]string{
			"ddos": probes,
			// SMTP connection from (x) [192.0.2.7]:44884 I=[198.51.100.1]:25 closed by DROP in ACL
			// An ACL of the admin's dropped the client (blocklists,
			// rate limits): aggressive only, as the reason is the admin's.
			"aggressive": append(slices.Clone(probes),
				eximPrefix+`(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} )?SMTP connection from `+eximHost+eximIdent+` closed by DROP in ACL$`),
		},
	}
}
