package filters

import "slices"

// postfix is written from postfix's smtpd and postscreen messages
// for rejected recipients and misbehaving clients. SASL failures are the
// postfix-sasl filter's (mode "aggressive" adds them here, for one jail
// doing both); a jail on each counts each line once per jail.
//
// Not failures: rejects a legitimate but misconfigured sender also causes
// (sender domain not found, greylisting 450s), "lost connection after"
// anything but AUTH (networks drop connections), and "NOQUEUE: reject"
// lines for other reasons.
func postfix() Spec {
	return Spec{
		Name:     "postfix",
		Trust:    Trust{Users: []string{"root", "postfix"}, Units: []string{"postfix.service", "postfix@*.service"}},
		Summary:  "relay/user-unknown/RBL rejects, too many errors",
		Programs: postfixPrograms(),
		FailRegex: []string{
			// NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <victim@example.net>: Relay access denied; from=<spam@example.org> to=<victim@example.net> proto=ESMTP helo=<WIN-X>
			// NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table; from=<> to=<nobody@example.com> proto=ESMTP helo=<mx.example.org>
			// NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.7; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>
			// NOQUEUE: reject: RCPT from [192.0.2.7]:51234: 550 5.7.1 Service unavailable; client [192.0.2.7] blocked using zen.spamhaus.org; from=<a@example.org>, to=<b@example.com>, proto=ESMTP, helo=<x>   (postscreen)
			// NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>
			// 4Bc5Qk3R5Vz9sWl: reject: RCPT from unknown[192.0.2.7]: 504 5.5.2 <x>: Helo command rejected: need fully-qualified hostname; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>
			// Leftmost rule: envelope addresses and HELO come after.
			`^(?:NOQUEUE|[0-9A-Za-z]+): reject: (?:RCPT|VRFY|EHLO|HELO|MAIL|CONNECT|DATA|ETRN|END-OF-MESSAGE) from ` + pfClient + `: [45]\d\d [45]\.\d{1,3}\.\d{1,3} (?:<.*>)?(?:: )?(?:Relay access denied|Recipient address rejected: User unknown(?: in [a-z ]+ table)?|Service unavailable; [Cc]lient(?: host)? \[[^\]\s]*\] blocked using \S+|Client host rejected: (?:cannot find your (?:reverse )?hostname|Access denied)|Helo command rejected: (?:Host not found|need fully-qualified hostname|Invalid name|Access denied)|Sender address rejected: Access denied)(?:[;,] .*)?$`,
			// NOQUEUE: reject: RCPT from example.net[192.0.2.7]: 550 5.1.1 <bob@example.com>: Recipient address rejected: undeliverable address: verification failed; from=<a@example.org> to=<bob@example.com> proto=ESMTP helo=<x>
			// reject_unverified_recipient: recipient guessing. A pattern of
			// its own: inside the alternation above its free-text reason
			// cost a third of the filter's time.
			`^(?:NOQUEUE|[0-9A-Za-z]+): reject: (?:RCPT|VRFY) from ` + pfClient + `: 550 5\.1\.1 <.*>: Recipient address rejected: undeliverable address: [^;]*(?:; .*)?$`,
			// too many errors after RCPT from unknown[192.0.2.7]
			// too many errors after DATA (0 bytes) from unknown[192.0.2.7]
			`^too many errors after [A-Za-z-]+(?: [A-Za-z]+)?(?: \(\d+ bytes\))? from ` + pfClient + `$`,
			// lost connection after AUTH from unknown[192.0.2.7]
			// A client that drops the connection right after a failed AUTH
			// is a password guesser saving a round trip.
			`^lost connection after AUTH from ` + pfClient + `$`,
			// improper command pipelining after CONNECT from unknown[192.0.2.7]: EHLO x\r\nMAIL FROM:<a@b>\r\n
			// Leftmost rule: what follows ": " is the client's own bytes.
			`^improper command pipelining after [A-Za-z-]+ from ` + pfClient + `(?::.*)?$`,
		},
		// A client that gives up after a failed AUTH prints the SASL
		// failure (counted in mode aggressive) and then "lost connection
		// after AUTH": one attempt. In normal mode the SASL line is not a
		// failure and "lost connection after AUTH" counts alone.
		Attempts: &AttemptRules{
			Lines: []string{
				`^warning: \S+: SASL `,
				`^lost connection after AUTH from `,
			},
			// Postfix 3.0+ ends each session with its command counts;
			// "auth=0/2" is two AUTH commands, none accepted (mode
			// aggressive). It counts the attempts the lines above did not.
			Ends: []string{
				`^disconnect from \S+ (?:[a-z]+=\d+(?:/\d+)? )*auth=0/(?P<n>\d+)`,
			},
		},
		IgnoreRegex: []string{
			postfixSASLLost,
			// improper command pipelining after AUTH from x[192.0.2.7]: QUIT
			// A client that sends QUIT without waiting: broken, not hostile.
			`^improper command pipelining after [A-Za-z-]+ from \S+: QUIT(?:\\r\\n)?$`,
		},
		Modes: map[string][]string{
			"ddos":       postfixProbes,
			"aggressive": append(slices.Clone(postfixProbes), postfixAggressive...),
		},
	}
}

// postfixProbes (mode "ddos") are clients that flood or do not speak
// SMTP: postscreen's verdicts and smtpd's anvil limits. No password is
// involved; a legitimate sender trips them only when misconfigured.
var postfixProbes = []string{
	// warning: non-SMTP command from unknown[192.0.2.7]: GET / HTTP/1.1
	`^warning: non-SMTP command from ` + pfClient + `: .*$`,
	// postscreen (2.8+): clients that talk before the banner,
	// are listed, or speak something else than SMTP:
	// PREGREET 11 after 0.13 from [192.0.2.7]:51234: EHLO User\r\n
	// DNSBL rank 5 for [192.0.2.7]:51234
	// NON-SMTP COMMAND from [192.0.2.7]:51234 after CONNECT: GET / HTTP/1.1
	// BARE NEWLINE from [192.0.2.7]:51234 after DATA
	// COMMAND PIPELINING from [192.0.2.7]:51234 after EHLO: MAIL FROM:<a@b>\r\n
	// HANGUP after 0.5 from [192.0.2.7]:51234 in tests before SMTP handshake
	// Leftmost rule: what the client sent follows ": ". One
	// pattern each, so each keeps its literal prefix.
	`^PREGREET \d+ after [\d.]+ from \[<HOST>\]:\d+: .*$`,
	`^DNSBL rank \d+ for \[<HOST>\]:\d+$`,
	`^NON-SMTP COMMAND from \[<HOST>\]:\d+ after [A-Z-]+: .*$`,
	`^BARE NEWLINE from \[<HOST>\]:\d+ after [A-Z-]+$`,
	`^COMMAND PIPELINING from \[<HOST>\]:\d+ after [A-Z-]+: .*$`,
	`^HANGUP after [\d.]+ from \[<HOST>\]:\d+ in tests (?:before|after) SMTP handshake$`,
	// COMMAND TIME LIMIT from [192.0.2.7]:51234 after CONNECT   (postscreen's
	// built-in SMTP engine: 2.9+; "after" 2.10+)
	// COMMAND COUNT LIMIT from [192.0.2.7]:51234 after RCPT
	// COMMAND LENGTH LIMIT from [192.0.2.7]:51234 after DATA
	`^COMMAND (?:TIME|COUNT|LENGTH) LIMIT from \[<HOST>\]:\d+(?: after [A-Z-]+)?$`,
	// warning: Connection rate limit exceeded: 31 from mx.example.org[192.0.2.7] for service smtp
	// warning: Message delivery request rate limit exceeded: 334 from x[192.0.2.7] for service submission
	// warning: Connection concurrency limit exceeded: 11 from x[192.0.2.7] for service smtp
	// smtpd's anvil limits (2.2+: smtpd_client_*_rate_limit and
	// _connection_count_limit). Every field is postfix's; the
	// service name is master.cf's.
	`^warning: (?:Connection|Message delivery request|Recipient address|New TLS session|Connection concurrency) (?:rate )?limit exceeded: \d+ from ` + pfClient + ` for service \S+$`,
	// lost connection after CONNECT from unknown[192.0.2.7]
	// NOQUEUE: lost connection after CONNECT from unknown[192.0.2.7]   (3.x with a pre-queue milter)
	// A client that connects and hangs up before saying anything:
	// a port scan or banner grab. After any later command (EHLO,
	// STARTTLS, DATA) networks and TLS mismatches drop real senders.
	`^(?:NOQUEUE: )?lost connection after CONNECT from ` + pfClient + `$`,
}

// postfixAggressive is what mode "aggressive" adds to the probes: SASL
// failures (the postfix-sasl filter's) and malformed addresses.
var postfixAggressive = []string{
	postfixSASLFail,
	// disconnect from unknown[192.0.2.7] ehlo=1 auth=0/1 rset=1 quit=1 commands=3/4   (3.0+)
	// A session whose every AUTH failed; postfix writes each field.
	`^disconnect from ` + pfClient + ` (?:[a-z]+=\d+(?:/\d+)? )*auth=0/\d+(?: [a-z]+=\d+(?:/\d+)?)*$`,
	// warning: Illegal address syntax from unknown[192.0.2.7] in RCPT command: <a@b@c>
	`^warning: Illegal address syntax from ` + pfClient + ` in (?:RCPT|MAIL) command: .*$`,
}
