package filters

// saslauthd: failures of authentication checked by saslauthd.
//
// saslauthd itself never learns the client's address (the daemon that asks
// it passes user and password only: its log lines and PAM's "rhost=" are
// empty), and its worker pid has nothing in common with the asking
// daemon's session, so its own lines cannot be attributed; tying them to a
// client by time would ban the wrong address whenever two sessions
// overlap. This filter therefore reads the daemons that ask saslauthd and
// do know the client: sendmail (the AUTH failure completed by the queue
// id's client line, as in sendmail-auth) and Cyrus IMAP/POP3 ("badlogin:").
// Postfix's SASL failures name the client on one line: see postfix-sasl.
func saslauthd() Spec {
	return Spec{
		Name:     "saslauthd",
		Trust:    Trust{Users: []string{"root"}, Exes: []string{"saslauthd"}, Units: []string{"saslauthd.service"}},
		Summary:  "saslauthd-checked failures, via the daemon that knows the client",
		Programs: []string{"sendmail", "sm-mta", "imap", "imaps", "pop3", "pop3s", "imapd", "pop3d", "cyrus/imap", "cyrus/imaps", "cyrus/pop3", "cyrus/pop3s"},
		FailRegex: []string{
			saFail,
			// badlogin: client.example [192.0.2.7] PLAIN [SASL(-13): authentication failure: checkpass failed]
			// badlogin: [192.0.2.7] plaintext bob SASL(-13): authentication failure: checkpass failed
			// The mechanism or "plaintext user" after the client is
			// client-chosen; the host is bound right after "badlogin: ".
			`^badlogin: (?:[0-9A-Za-z._-]+ )?\[<HOST>\] \S.*$`,
		},
		Correlate: saCorrelations(),
	}
}
