package filters

// srRelay is how sendmail writes the peer: "[IP]", "name [IP]",
// "ident@name [IP]" (with IDENT lookups) and "[IPv6:2001:db8::7]", then
// " (may be forged)" when the reverse name did not confirm (an empty name
// leaves two blanks: "from  [IP]"). The part before
// the bracket has no space or bracket, so an ident reply or reverse name
// cannot move the address (a line where it would is a miss).
const srRelay = `(?:[^\s\[\]]* )?\[(?:IPv6:)?<HOST>\](?: \(may be forged\))?`

// srQID is sendmail's queue id, or NOQUEUE before one is assigned.
const srQID = `^(?:NOQUEUE|[0-9A-Za-z]+): `

// sendmailReject is written from sendmail's (8.13-8.18) log lines
// for clients it refused or that misbehaved. AUTH failures are the
// sendmail-auth filter's: sendmail logs them without the address.
//
// Decisions: "did not issue MAIL/EXPN/VRFY/ETRN" is a failure (fail2ban
// setups of sendmail on CentOS 5 ban on it: scanners and password guessers connect and leave).
// "(may be forged)" alone only says the reverse DNS does not confirm,
// which plenty of legitimate senders have, and "lost input channel" is
// also a broken network: both count only in mode "aggressive".
func sendmailReject() Spec {
	return Spec{
		Name:     "sendmail-reject",
		Summary:  "`did not issue MAIL/...`, `Relaying denied`, DNSBL, sender and recipient rejects, open proxy probes",
		Trust:    Trust{Users: []string{"root", "smmsp"}, Units: []string{"sendmail.service"}},
		Programs: sendmailPrograms(),
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
			// u5N1ABC012345: ruleset=check_relay, arg1=[192.0.2.7], arg2=192.0.2.7, relay=[192.0.2.7], reject=421 4.3.2 Connection rate limit exceeded.
			// u5N1ABC012345: ruleset=check_relay, arg1=[192.0.2.7], arg2=192.0.2.7, relay=[192.0.2.7], reject=421 4.3.2 Too many open connections.
			// FEATURE(ratecontrol) and FEATURE(conncontrol) (8.13+): floods.
			// check_relay runs when the client connects, before a queue id:
			// the line usually has none.
			`^(?:(?:NOQUEUE|[0-9A-Za-z]+): )?ruleset=check_relay, arg1=\S+, arg2=\S+, relay=` + srRelay + `, reject=(?:5\d\d 5\.\d\.\d .*|421 4\.3\.2 (?:Connection rate limit exceeded|Too many open connections)\.)$`,
			// u5N1ABC012345: x.example.org [192.0.2.7]: possible SMTP attack: command=AUTH, count=6
			srQID + srRelay + `: possible SMTP attack: command=[A-Za-z]+, count=\d+$`,
			// u5N1ABC012345: x.example.org [192.0.2.7]: VRFY root [rejected]
			// Leftmost rule: the probed name comes after.
			srQID + srRelay + `: (?:EXPN|VRFY|expn|vrfy) .* \[rejected\]$`,
			// rejecting commands from x.example.org [192.0.2.7] due to pre-greeting traffic after 0 seconds
			// u5N2XYZ004711: rejecting commands from  [192.0.2.7] due to pre-greeting traffic after 0 seconds
			`^(?:(?:NOQUEUE|[0-9A-Za-z]+): )?rejecting commands from ` + srRelay + ` due to pre-greeting traffic after \d+ seconds$`,
			// u5N1ABC012345: x.example.org [192.0.2.7]: probable open proxy: command=CONNECT 10.0.0.1:25 HTTP/1.0\r\n
			// An HTTP request on the SMTP port (8.13+: GET, POST, CONNECT,
			// USER). The command is the client's and comes after the
			// client: it may not hold a bracket, so no "[IP]" of its own
			// can follow the real one (a command with one is a miss).
			srQID + srRelay + `: probable open proxy: command=(?:GET|POST|CONNECT|USER) [^\[\]]*$`,
			// u5N1ABC012345: x.example.org [192.0.2.7]: Possible SMTP RCPT flood, throttling.
			// BadRcptThrottle (8.13+) reached: a run of unknown recipients.
			srQID + srRelay + `: Possible SMTP RCPT flood, throttling\.$`,
			// u5N1ABC012345: ruleset=check_mail, arg1=<a@bad.example>, relay=x.example.org [192.0.2.7], reject=553 5.1.8 <a@bad.example>... Domain of sender address a@bad.example does not exist
			// u5N1ABC012345: ruleset=check_mail, arg1=<spam@example.org>, relay=[192.0.2.7], reject=550 5.7.1 <spam@example.org>... Access denied
			// Permanent rejects of the sender: no such domain, access db.
			// The sender is the client's and written twice around the
			// relay: held to fields without blanks or angle brackets and
			// fixed text between and after them, as for Relaying denied.
			// u5N1ABC012345: ruleset=check_rcpt, arg1=<postmaster@example.com>, relay=x.example.org [192.0.2.7] (may be forged), reject=553 5.1.8 <postmaster@example.com>... Domain of sender address a@bad.example does not exist
			// With FEATURE(delay_checks) the sender checks run in check_rcpt.
			srQID + `ruleset=check_(?:mail|rcpt), arg1=(?:<[^<>\s]*>|[^<>\s,]+), relay=` + srRelay + `, reject=(?:553 5\.1\.8 <[^<>]*>\.\.\. Domain of sender address [^<>\s]* does not exist|550 5\.7\.1 <[^<>]*>\.\.\. Access denied)$`,
			// u5N1ABC012345: ruleset=check_rcpt, arg1=<nobody@example.com>, relay=[192.0.2.7], reject=550 5.1.1 <nobody@example.com>... User unknown
			// Recipient rejects by the ruleset (virtusertable error:nouser,
			// access db To: REJECT): recipient guessing.
			// u5N1ABC012345: ruleset=check_rcpt, arg1=<b@example.com>, relay=[192.0.2.7], reject=550 5.7.1 <b@example.com>... Rejected: 192.0.2.7 listed at zen.spamhaus.org
			// A DNSBL (FEATURE(dnsbl)) checked in check_rcpt with
			// FEATURE(delay_checks); the message after "Rejected: " is the
			// admin's and the list's.
			srQID + `ruleset=check_rcpt, arg1=<[^<>\s]*>, relay=` + srRelay + `, reject=550 5\.(?:1\.1 <[^<>]*>\.\.\. User unknown|7\.1 <[^<>]*>\.\.\. (?:Access denied|Rejected: .*))$`,
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
