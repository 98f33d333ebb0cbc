package filters

// postfixSASL counts SMTP AUTH failures, as postfix 2.10 (CentOS 7)
// through 3.x (FreeBSD ports) log them.
//
// Not failures: "Connection lost to authentication server" is smtpd
// losing its own link to dovecot's or cyrus' auth service: the client did
// nothing wrong, and banning on it would ban every user during an outage.
func postfixSASL() Spec {
	return Spec{
		Name:      "postfix-sasl",
		Trust:     Trust{Users: []string{"root", "postfix"}, Units: []string{"postfix.service", "postfix@*.service"}},
		Summary:   "`SASL ... authentication failed`",
		Programs:  postfixPrograms(),
		FailRegex: []string{postfixSASLFail},
		IgnoreRegex: []string{
			// warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: Connection lost to authentication server
			// Anchored through the reason, which smtpd writes right after
			// "failed: ", so a sasl_username cannot trigger it.
			postfixSASLLost,
		},
	}
}
