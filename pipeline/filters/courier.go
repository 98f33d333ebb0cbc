package filters

// courier is written from Courier's login processes (imap/imaplogin.c,
// imap/pop3login.c of courier-imap 4 and later, the same sources in
// courier-libs) and courieresmtpd's error lines.
//
// Not failures: "LOGIN, user=..." (success), "Disconnected, ip=[...]".
func courier() Spec {
	return Spec{
		Name:    "courier",
		Trust:   Trust{Users: []string{"root", "courier", "daemon"}, Units: []string{"courier-*.service"}},
		Summary: "courier-imap/pop3 `LOGIN FAILED`, courieresmtpd AUTH and unknown-user errors",
		// The login processes log under their program name; courier-mta
		// packages name them with and without "courier-" and "-ssl".
		Programs: []string{"imapd", "pop3d", "imapd-ssl", "pop3d-ssl", "courier-imapd", "courier-pop3d", "courier-imapd-ssl", "courier-pop3d-ssl", "imaplogin", "pop3login", "courierpop3login", "courieresmtpd", "courier-esmtpd"},
		FailRegex: []string{
			// LOGIN FAILED, user=bob, ip=[::ffff:192.0.2.7]
			// INFO: LOGIN FAILED, user=bob, ip=[::ffff:192.0.2.7], port=[51234]   (INFO: since 2014, port since 2019)
			// INFO: LOGIN FAILED, method=PLAIN, ip=[2001:db8::7], port=[51234]
			// Rightmost rule: the user name is the client's; ip= and port=
			// end the line.
			`^(?:INFO: )?LOGIN FAILED, (?:(?:user|method)=.*, )?ip=\[<HOST>\](?:, port=\[\d+\])?$`,
			// error,relay=::ffff:192.0.2.7,msg="535 Authentication failed.",cmd: AUTH PLAIN
			// error,relay=::ffff:192.0.2.7,ident="x",msg="535 Authentication failed.",cmd: AUTH LOGIN
			// error,relay=::ffff:192.0.2.7,from=<a@example.org>,to=<nobody@example.com>: 550 User unknown.
			// error,relay=::ffff:192.0.2.7,msg="535 Authentication failed.",cmd: c3lzYmFucGFzcw==
			// error,relay=::ffff:192.0.2.7,from=<a@example.org>,to=<b@example.com>: 550 User <benny> unknown
			// cmd is the client's last line, which after AUTH LOGIN is its
			// base64 answer, not "AUTH"; older courier named the user in
			// the 550 (both seen in users' logs, 2005).
			// Leftmost rule: relay= is the first field; ident, the
			// envelope and cmd are the client's and come after.
			`^(?:INFO: )?error,relay=<HOST>,(?:(?:.*,)?msg="535 Authentication (?:failed|rejected)\.",cmd: .*|.*: 550 User (?:<[^<>]*> )?unknown\.?)$`,
		},
	}
}
