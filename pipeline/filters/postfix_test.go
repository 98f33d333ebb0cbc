package filters_test

import (
	"testing"
)

func TestPostfixFilter(t *testing.T) {
	runCases(t, "postfix", "", []lineCase{
		{"relay denied", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <victim@example.net>: Relay access denied; from=<spam@example.org> to=<victim@example.net> proto=ESMTP helo=<WIN-X>", "192.0.2.7"},
		{"user unknown", "postfix/smtpd", "NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table; from=<> to=<nobody@example.com> proto=ESMTP helo=<mx.example.org>", "192.0.2.7"},
		{"user unknown virtual", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@example.org> to=<nobody@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"rbl", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.7; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"rbl postscreen", "postfix/postscreen", "NOQUEUE: reject: RCPT from [192.0.2.7]:51234: 550 5.7.1 Service unavailable; client [192.0.2.7] blocked using zen.spamhaus.org; from=<a@example.org>, to=<b@example.com>, proto=ESMTP, helo=<x>", "192.0.2.7"},
		{"no reverse hostname", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"helo rejected queue id", "postfix/smtpd", "4Bc5Qk3R5Vz9sWl: reject: RCPT from unknown[192.0.2.7]: 504 5.5.2 <x>: Helo command rejected: need fully-qualified hostname; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"ipv6 port logging", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[2001:db8::7]:41234: 554 5.7.1 <victim@example.net>: Relay access denied; from=<a@example.org> to=<victim@example.net> proto=ESMTP helo=<x>", "2001:db8::7"},
		{"submission instance", "postfix/submission/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <victim@example.net>: Relay access denied; from=<a@example.org> to=<victim@example.net> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"smtps instance", "postfix/smtps/smtpd", "lost connection after AUTH from unknown[192.0.2.7]", "192.0.2.7"},
		{"other instance", "postfix-xyz/smtpd", "too many errors after RCPT from unknown[192.0.2.7]", "192.0.2.7"},
		{"other instance submission", "postfix-out/submission/smtpd", "too many errors after AUTH from unknown[192.0.2.7]", "192.0.2.7"},
		{"too many errors data", "postfix/smtpd", "too many errors after DATA (0 bytes) from unknown[192.0.2.7]", "192.0.2.7"},
		{"lost after auth", "postfix/smtpd", "lost connection after AUTH from unknown[192.0.2.7]", "192.0.2.7"},
		{"pipelining", "postfix/smtpd", `improper command pipelining after CONNECT from unknown[192.0.2.7]: EHLO x\r\nMAIL FROM:<a@b>\r\n`, "192.0.2.7"},
		{"pipelining no text", "postfix/smtpd", "improper command pipelining after EHLO from mx.example.org[192.0.2.7]", "192.0.2.7"},

		// Benign.
		{"connect", "postfix/smtpd", "connect from unknown[192.0.2.7]", ""},
		{"lost after ehlo", "postfix/smtpd", "lost connection after EHLO from unknown[192.0.2.7]", ""},
		{"disconnect", "postfix/smtpd", "disconnect from unknown[192.0.2.7] ehlo=1 quit=1 commands=2", ""},
		{"sender domain not found", "postfix/smtpd", "NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 450 4.1.8 <a@nowhere.example>: Sender address rejected: Domain not found; from=<a@nowhere.example> to=<b@example.com> proto=ESMTP helo=<mx.example.org>", ""},
		{"greylist", "postfix/smtpd", "NOQUEUE: reject: RCPT from mx.example.org[192.0.2.7]: 450 4.2.0 <b@example.com>: Recipient address rejected: Greylisted; from=<a@example.org> to=<b@example.com> proto=ESMTP helo=<mx.example.org>", ""},
		{"sasl not here", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure", ""},
		{"qmgr", "postfix/qmgr", "4Bc5Qk3R5Vz9sWl: from=<a@example.org>, size=1234, nrcpt=1 (queue active)", ""},
		{"cleanup not smtpd", "postfix/cleanup", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <v@example.net>: Relay access denied; from=<a@example.org> to=<v@example.net> proto=ESMTP helo=<x>", ""},

		// Hostile: envelope addresses and HELO are the client's.
		{"helo with client", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <v@example.net>: Relay access denied; from=<a@example.org> to=<v@example.net> proto=ESMTP helo=<unknown[10.0.0.1]>", "192.0.2.7"},
		{"recipient with client", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <RCPT from unknown[10.0.0.1]: x>: Relay access denied; from=<a@example.org> to=<RCPT from unknown[10.0.0.1]: x> proto=ESMTP helo=<x>", "192.0.2.7"},
		{"pipelining payload", "postfix/smtpd", `improper command pipelining after CONNECT from unknown[192.0.2.7]: from unknown[10.0.0.1]\r\n`, "192.0.2.7"},
	})
	runCases(t, "postfix", "aggressive", []lineCase{
		{"sasl", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure", "192.0.2.7"},
		{"non-smtp", "postfix/smtpd", "warning: non-SMTP command from unknown[192.0.2.7]: GET / HTTP/1.1", "192.0.2.7"},
		{"relay still", "postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <v@example.net>: Relay access denied; from=<a@example.org> to=<v@example.net> proto=ESMTP helo=<x>", "192.0.2.7"},
	})
}
