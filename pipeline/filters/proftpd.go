package filters

// proftpdClient is what ProFTPD's log functions put before a session's
// messages: "[ServerName ](remote-name[remote-ip]) - ". The name is a DNS
// name or the address itself; the server name is the admin's. The user
// name and everything else follow (leftmost rule).
// ProFTPD 1.3.6+ writes "): " instead of ") - " in its own SystemLog file.
// Its SystemLog file line starts with its own date, host and
// "proftpd[pid]" (no colon), kept when the file is forwarded (read as a
// syslog file, the date and host are taken as the header and the line
// starts at "proftpd[pid]").
const proftpdClient = `^(?:(?:(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}|[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) \S+ )?proftpd\[\d+\] )?(?:\S+ )?\([^\s()\[\]]*\[<HOST>\]\)(?: -|:) `

// proftpd is written from ProFTPD 1.3's mod_auth.c: failed logins with
// their reason, unknown users, root logins it refuses, and sessions cut
// for too many attempts.
//
// Not failures: "USER bob: Login successful." and anonymous sessions.
func proftpd() Spec {
	return Spec{
		Name:     "proftpd",
		Trust:    Trust{Users: []string{"root", "proftpd", "nobody"}, Exes: []string{"proftpd"}, Units: []string{"proftpd.service"}},
		Summary:  "failed and refused logins, unknown users, too many attempts",
		Programs: []string{"proftpd"},
		FailRegex: []string{
			// ftp.example.com (client.example.org[192.0.2.7]) - USER bob (Login failed): Incorrect password
			// (client.example.org[192.0.2.7]) - USER bob (Login failed): No such user found
			proftpdClient + `USER .* \(Login failed\): .*$`,
			// ftp.example.com (192.0.2.7[192.0.2.7]) - USER nobody: no such user found from 192.0.2.7 [192.0.2.7] to 198.51.100.1:21
			proftpdClient + `USER .*: no such user found from .*$`,
			// ftp.example.com (client.example.org[192.0.2.7]) - SECURITY VIOLATION: Root login attempted
			// ftp.example.com (client.example.org[192.0.2.7]) - Maximum login attempts (3) exceeded, connection refused
			// (::ffff:192.0.2.7[::ffff:192.0.2.7]): SECURITY VIOLATION: root login attempted.   (1.3.3)
			// (::ffff:192.0.2.7[::ffff:192.0.2.7]) - Maximum login attempts (3) exceeded   (1.3.3)
			proftpdClient + `(?:SECURITY VIOLATION: [Rr]oot login attempted\.?|Maximum login attempts \(\d+\) exceeded(?:, connection refused)?) ?$`,
			// pam_unix(proftpd:auth): authentication failure; logname= uid=0 euid=0 tty=/dev/ftpd4242 ruser=root rhost=192.0.2.7  user=root
			// (ProFTPD with mod_auth_pam; RHEL's and Debian's PAM stacks.)
			// ruser is the FTP user name, before rhost: \S* as for vsftpd.
			`^pam_(?:unix|sss)\(proftpd:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=\S*)?$`,
		},
		// A wrong password through PAM prints PAM's line, then ProFTPD's
		// "USER x (Login failed): Incorrect password": one attempt.
		Attempts: &AttemptRules{
			Lines: []string{
				`^pam_unix\(proftpd:auth\): authentication failure;`,
				`^pam_sss\(proftpd:auth\): authentication failure;`,
				`^(?:\S+ )?\([^\s()]*\)(?: -|:) USER .* \(Login failed\): `,
			},
		},
	}
}
