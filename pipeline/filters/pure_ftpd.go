package filters

// pureFTPd is written from pure-ftpd's logfile() (src/ftpd.c): every
// syslog line is "(account@host) [LEVEL] message", and before a login
// succeeds the account is "?", so nothing the client chose precedes the
// host. The host is the address, or its DNS name unless -H is given.
func pureFTPd() Spec {
	return Spec{
		Name:     "pure-ftpd",
		Trust:    Trust{Users: []string{"root"}, Exes: []string{"pure-ftpd"}, Units: []string{"pure-ftpd.service"}},
		Summary:  "`Authentication failed for user [...]`",
		Programs: []string{"pure-ftpd"},
		FailRegex: []string{
			// (?@192.0.2.7) [WARNING] Authentication failed for user [bob]
			// Leftmost rule: the user name is the client's and comes last.
			`^\(\?@<HOST>\) \[WARNING\] Authentication failed for user \[.*\]$`,
		},
	}
}
