package filters

// sendmailAuth: failed SMTP AUTH at sendmail. With saslauthd and PAM
// behind it (as on CentOS 5) the failure never names the client; sendmail
// at LogLevel 9+ logs the failure under the queue id and, later, the same
// queue id's line with the client, other daemons' lines in between.
func sendmailAuth() Spec {
	return Spec{
		Name:     "sendmail-auth",
		Trust:    Trust{Users: []string{"root", "smmsp"}, Units: []string{"sendmail.service"}},
		Summary:  "SMTP AUTH failures",
		Programs: sendmailPrograms(),
		FailRegex: []string{
			saFail,
			// s0QBU1Ir002370: host.example [192.0.2.7]: possible SMTP attack: command=AUTH, count=5
			`^(?:[0-9A-Za-z]{8,20}: )?` + saClient + `: possible SMTP attack: command=AUTH, count=\d+$`,
		},
		Correlate: saCorrelations(),
	}
}
