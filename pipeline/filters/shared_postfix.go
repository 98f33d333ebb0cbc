package filters

// postfixPrograms are the smtpd names of a postfix instance: the default
// one (postfix/smtpd), master.cf services with their own syslog_name
// (postfix/submission/smtpd, postfix/smtps/smtpd) and further instances
// (postfix-out/smtpd, postfix-xyz/submission/smtpd). path.Match's * stops
// at "/", hence the two depths.
func postfixPrograms() []string {
	return []string{"postfix*/smtpd", "postfix*/*/smtpd", "postfix*/postscreen"}
}

// pfClient is postfix's "name[address]" (name "unknown" when the reverse
// lookup failed or did not confirm), with the port when
// smtpd_client_port_logging is on and in postscreen's "[address]:port".
// The name is a verified DNS name: no spaces or brackets, so the address
// is always the first bracketed field after the fixed prefix (leftmost
// rule).
const pfClient = `[^\s\[\]]*\[<HOST>\](?::\d+)?`

// postfixSASLFail is smtpd's SASL failure for any mechanism:
//
//	warning: unknown[194.33.191.13]: SASL LOGIN authentication failed: authentication failure, sasl_username=a@example.com
//	warning: mx.example.org[192.0.2.7]: SASL PLAIN authentication failed: UGFzc3dvcmQ6
//	warning: unknown[2001:db8::7]: SASL CRAM-MD5 authentication failed: authentication failure
//
// Leftmost rule: sasl_username and the server's challenge come after.
//
//	warning: unknown[192.0.2.7]: SASL login authentication failed: UGFzc3dvcmQ6   (older Postfix: the mechanism as the client wrote it)
const postfixSASLFail = `^warning: ` + pfClient + `: SASL [A-Za-z0-9-]+ authentication failed(?::.*)?$`

// postfixSASLLost is smtpd losing its own link to the auth service
// (Dovecot or saslauthd restarting): no client did anything wrong.
const postfixSASLLost = `^warning: [^\s\[\]]*\[[^\]\s]*\](?::\d+)?: SASL [A-Za-z0-9-]+ authentication failed: Connection lost to authentication server$`
