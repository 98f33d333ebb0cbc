package filters_test

import (
	"testing"
)

func TestSendmailRejectFilter(t *testing.T) {
	runCases(t, "sendmail-reject", "", []lineCase{
		// sendmail 8.13 on CentOS 5.
		{"centos5 did not issue", "sendmail", "s538V2ge001857: [114.97.113.212] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "114.97.113.212"},
		{"centos5 did not issue forged", "sendmail", "s0QBU1Ir002370: 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged) did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "218.18.59.223"},
		{"did not issue ipv6", "sm-mta", "u5N1ABC012345: [IPv6:2001:db8::7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA-v6", "2001:db8::7"},
		{"relaying denied", "sm-mta", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=[192.0.2.7], reject=550 5.7.1 <victim@example.net>... Relaying denied", "192.0.2.7"},
		{"relaying denied forged", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=x.example.org [192.0.2.7] (may be forged), reject=550 5.7.1 <victim@example.net>... Relaying denied. IP name possibly forged [192.0.2.7]", "192.0.2.7"},
		{"relaying denied auth", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=x.example.org [192.0.2.7], reject=550 5.7.1 <victim@example.net>... Relaying denied. Proper authentication required.", "192.0.2.7"},
		{"relaying denied ipv6", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<victim@example.net>, relay=[IPv6:2001:db8::7], reject=550 5.7.1 <victim@example.net>... Relaying denied", "2001:db8::7"},
		{"check_relay dnsbl", "sendmail", "u5N1ABC012345: ruleset=check_relay, arg1=[192.0.2.7], arg2=192.0.2.7, relay=[192.0.2.7], reject=550 5.7.1 Rejected: 192.0.2.7 listed at zen.spamhaus.org", "192.0.2.7"},
		{"smtp attack", "sendmail", "u5N1ABC012345: x.example.org [192.0.2.7]: possible SMTP attack: command=AUTH, count=6", "192.0.2.7"},
		{"vrfy rejected", "sendmail", "u5N1ABC012345: x.example.org [192.0.2.7]: VRFY root [rejected]", "192.0.2.7"},
		{"pregreet", "sendmail", "rejecting commands from x.example.org [192.0.2.7] due to pre-greeting traffic after 0 seconds", "192.0.2.7"},
		{"ident", "sendmail", "u5N1ABC012345: root@x.example.org [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "192.0.2.7"},

		// Benign, or only in mode aggressive.
		{"connect forged normal", "sendmail", "NOQUEUE: connect from 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged)", ""},
		{"lost input normal", "sendmail", "u5N1ABC012345: lost input channel from x.example.org [192.0.2.7] to MTA after rcpt", ""},
		{"auth failure is sendmail-auth's", "sendmail", "s0QBU1Ir002370: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed", ""},
		{"delivery", "sendmail", "u5N1ABC012345: from=<a@example.org>, size=1234, class=0, nrcpts=1, msgid=<x@example.org>, proto=ESMTP, daemon=MTA, relay=x.example.org [192.0.2.7]", ""},
		{"user unknown no host", "sendmail", "u5N1ABC012345: <nobody@example.com>... User unknown", ""},
		{"other program", "postfix/smtpd", "s538V2ge001857: [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", ""},

		// Hostile: recipients, ident replies and reverse names.
		{"recipient fakes relay", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<a>, relay=[10.0.0.1], reject=550 5.7.1 <a>, relay=[192.0.2.7], reject=550 5.7.1 <a>, relay=[10.0.0.1], reject=550 5.7.1 <a>... Relaying denied", ""},
		{"recipient with bracket", "sendmail", "u5N1ABC012345: ruleset=check_rcpt, arg1=<x [10.0.0.1] y@example.net>, relay=[192.0.2.7], reject=550 5.7.1 <x [10.0.0.1] y@example.net>... Relaying denied", "192.0.2.7"},
		{"ident with space", "sendmail", "u5N1ABC012345: a [10.0.0.1]@x.example.org [192.0.2.7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", ""},
		{"vrfy argument", "sendmail", "u5N1ABC012345: x.example.org [192.0.2.7]: VRFY [10.0.0.1] [rejected]", "192.0.2.7"},
	})
	runCases(t, "sendmail-reject", "aggressive", []lineCase{
		{"connect forged", "sendmail", "NOQUEUE: connect from 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged)", "218.18.59.223"},
		{"connect not forged", "sendmail", "NOQUEUE: connect from x.example.org [192.0.2.7]", ""},
		{"lost input", "sendmail", "u5N1ABC012345: lost input channel from x.example.org [192.0.2.7] to MTA after rcpt", "192.0.2.7"},
		{"did not issue still", "sendmail", "s538V2ge001857: [114.97.113.212] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "114.97.113.212"},
	})
}
