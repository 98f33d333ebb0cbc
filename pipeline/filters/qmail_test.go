package filters_test

import (
	"testing"
)

func TestQmailFilter(t *testing.T) {
	runCases(t, "qmail", "", []lineCase{
		{"password fail", "vpopmail", "vchkpw-smtp: password fail (pass: 'secret') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password fail no pass", "vpopmail", "vchkpw-pop3: password fail bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password fail tag program", "vchkpw-smtp", "password fail (pass: 'secret') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"user not found", "vpopmail", "vchkpw-pop3: vpopmail user not found nobody@example.com:192.0.2.7", "192.0.2.7"},
		{"user not found empty domain", "vpopmail", "vchkpw-pop3: vpopmail user not found nobody@:192.0.2.7", "192.0.2.7"},
		{"user not found mapped", "vpopmail", "vchkpw-smtp: vpopmail user not found nobody@example.com:::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"rblsmtpd", "qmail-smtpd", "rblsmtpd: 192.0.2.7 pid 4242: 451 Blocked, look at http://www.spamhaus.org/query/bl?ip=192.0.2.7", "192.0.2.7"},
		{"rblsmtpd multilog", "qmail-smtpd", "@400000004b1e6a4c2c8e4b14 rblsmtpd: 192.0.2.7 pid 4242: 451 Blocked", "192.0.2.7"},
		{"chkuser relaying", "qmail-smtpd", "CHKUSER rejected relaying: from <a@example.org::> remote <helo:client.example.org:192.0.2.7> rcpt <b@example.net> : client not allowed to relay", "192.0.2.7"},
		{"chkuser rcpt", "qmail", "@400000004b1e6a4c2c8e4b14 CHKUSER rejected rcpt: from <a@example.org::> remote <helo:unknown:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", "192.0.2.7"},
		{"chkuser empty host", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <mx:client.example.org:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", "192.0.2.7"},
		// Benign.
		{"login success", "vpopmail", "vchkpw-pop3: (PLAIN) login success bob@example.com:192.0.2.7", ""},
		{"chkuser accepted", "qmail-smtpd", "CHKUSER accepted rcpt: from <a@example.org::> remote <helo:client.example.org:192.0.2.7> rcpt <bob@example.com> : found existing recipient", ""},
		{"tcpserver", "qmail-smtpd", "tcpserver: ok 4242 mail.example.com:198.51.100.1:25 client.example.org:192.0.2.7::41234", ""},
		// Hostile: password, user, domain, HELO and envelope are the
		// client's.
		{"password with address", "vpopmail", "vchkpw-smtp: password fail (pass: 'x') a@b:10.0.0.1') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password with colons", "vpopmail", "vchkpw-smtp: password fail (pass: 'a@b:c:d') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"password ending like a peer", "vpopmail", "vchkpw-smtp: password fail (pass: 'x bob@example.com:10.0.0.1') bob@example.com:192.0.2.7", "192.0.2.7"},
		{"domain forging ipv6", "vpopmail", "vchkpw-pop3: vpopmail user not found x@a:2001:db8::192.0.2.7", ""},
		{"domain forging mapped", "vpopmail", "vchkpw-pop3: vpopmail user not found x@a::ffff:10.0.0.1::192.0.2.7", ""},
		{"domain colon", "vpopmail", "vchkpw-pop3: vpopmail user not found x@a:10.0.0.1:192.0.2.7", ""},
		{"helo with colons", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <x:y:10.0.0.1:client.example.org:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", "192.0.2.7"},
		{"helo fakes fields", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <x:y:10.0.0.1> rcpt <z> : not existing recipient:unknown:192.0.2.7> rcpt <nobody@example.com> : not existing recipient", ""},
		{"rcpt fakes fields", "qmail-smtpd", "CHKUSER rejected rcpt: from <a@example.org::> remote <helo:unknown:192.0.2.7> rcpt <x> remote <h:u:10.0.0.1> rcpt <y> : not existing recipient", ""},
	})
}
