package filters_test

import (
	"testing"
)

func TestPostfixSASLFilter(t *testing.T) {
	runCases(t, "postfix-sasl", "", []lineCase{
		// Postfix on FreeBSD.
		{"freebsd login", "postfix/smtpd", "warning: unknown[194.33.191.13]: SASL LOGIN authentication failed: authentication failure, sasl_username=ishoika@mail.kuji-clinic.info", "194.33.191.13"},
		{"freebsd login no user", "postfix/smtpd", "warning: unknown[94.156.102.204]: SASL LOGIN authentication failed: authentication failure", "94.156.102.204"},
		{"plain challenge", "postfix/smtpd", "warning: mx.example.org[192.0.2.7]: SASL PLAIN authentication failed: UGFzc3dvcmQ6", "192.0.2.7"},
		{"cram ipv6", "postfix/submission/smtpd", "warning: unknown[2001:db8::7]: SASL CRAM-MD5 authentication failed: authentication failure", "2001:db8::7"},
		{"no reason", "postfix/smtps/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed", "192.0.2.7"},
		{"port logging", "postfix-xyz/smtpd", "warning: unknown[192.0.2.7]:41234: SASL PLAIN authentication failed: ", "192.0.2.7"},
		// Benign and ignored.
		{"auth server lost", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: Connection lost to authentication server", ""},
		{"success", "postfix/smtpd", "4Bc5Qk3R5Vz9sWl: client=unknown[192.0.2.7], sasl_method=PLAIN, sasl_username=bob", ""},
		{"other warning", "postfix/smtpd", "warning: hostname x.example.org does not resolve to address 192.0.2.7", ""},
		// Hostile: sasl_username is the client's.
		{"username with client", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure, sasl_username=warning: unknown[10.0.0.1]: x", "192.0.2.7"},
		{"username fakes ignore", "postfix/smtpd", "warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure, sasl_username=x: Connection lost to authentication server", "192.0.2.7"},
	})
}
