package filters

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
		},
		IgnoreRegex: []string{
			postfixSASLLost,
			// improper command pipelining after AUTH from x[192.0.2.7]: QUIT
			// A client that sends QUIT without waiting: broken, not hostile.
			`^improper command pipelining after [A-Za-z-]+ from \S+: QUIT(?:\\r\\n)?$`,
		},
		Modes: map[string][]string{
			"aggressive": {
				postfixSASLFail,
				// warning: non-SMTP command from unknown[192.0.2.7]: GET / HTTP/1.1
				`^warning: non-SMTP command from ` + pfClient + `: .*$`,
				// warning: Illegal address syntax from unknown[192.0.2.7] in RCPT command: <a@b@c>
				`^warning: Illegal address syntax from ` + pfClient + ` in (?:RCPT|MAIL) command: .*$`,
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
			},
		},
	}
}
