package filters

// vsftpd is written from vsftpd's own log line (vsftpd.log, or
// syslog with syslog_enable=YES) and what pam_unix logs for the vsftpd
// service.
//
// Deliberately not failures: "pam_unix(vsftpd:auth): check pass; user
// unknown" and pam_listfile refusals (no address in them; the FAIL LOGIN
// line of the same attempt carries it).
// vsftpdPrefix is what vsftpd's own log puts before a session's lines:
// the date (its log file, not through syslog) and the session's pid.
const vsftpdPrefix = `^(?:[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2} \d{4} )?(?:\[pid \d+\] )?`

func vsftpd() Spec {
	return Spec{
		Name:    "vsftpd",
		Trust:   Trust{Users: []string{"root", "ftp"}, Exes: []string{"vsftpd"}, Units: []string{"vsftpd.service"}},
		Summary: "PAM and native `FAIL LOGIN`",
		// vsftpd(pam_unix): Linux-PAM before 0.99 (RHEL 4) named itself so.
		Programs: []string{"vsftpd", "vsftpd(pam_unix)"},
		FailRegex: []string{
			// pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=192.0.2.7  user=bob
			// Unlike sshd, vsftpd passes the FTP user name as ruser, which
			// comes before rhost and again as user after it. Both are
			// \S*: a name with spaces ("x rhost=10.0.0.1  user=x") could
			// otherwise put a forged rhost first; such a line is missed
			// rather than pinned on someone else (the FAIL LOGIN line of
			// the same attempt still counts).
			// (pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.7   (Linux-PAM before 0.99, RHEL 4)
			// authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.7 user=bob   (the same under "vsftpd(pam_unix)", or a journal without the module)
			`^(?:pam_(?:unix|sss)\(vsftpd:auth\): |\(pam_unix\) )?authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=\S*)?$`,
			// [pid 1234] [bob] FAIL LOGIN: Client "192.0.2.7"
			// Sat Jun 11 10:11:12 2011 [pid 1234] [bob] FAIL LOGIN: Client "::ffff:192.0.2.7"
			// The user name is the client's and may hold `] FAIL LOGIN:
			// Client "10.0.0.1`; the peer is the quoted address that ends
			// the line.
			vsftpdPrefix + `\[.*\] FAIL LOGIN: Client "<HOST>"(?:, "[^"]*")?$`,
			// [pid 1234] [test] FTP response: Client "192.0.2.7", "530 Permission denied."
			// With userlist_enable, a user the list refuses is turned away
			// before any password and no FAIL LOGIN follows; the line is
			// vsftpd's protocol log (log_ftp_protocol=YES). The user name
			// is the client's; vsftpd's fixed text binds the address.
			vsftpdPrefix + `(?:\[.*\] )?FTP response: Client "<HOST>", "530 Permission denied\."$`,
		},
		// One wrong password prints pam_unix's line and then vsftpd's
		// FAIL LOGIN (Debian 12, seen live): one attempt. Either alone
		// (no pam_unix in the stack, or vsftpd.log without PAM's lines)
		// still counts one.
		Attempts: &AttemptRules{
			Lines: []string{
				`^(?:pam_unix\(vsftpd:auth\): |\(pam_unix\) )?authentication failure;`,
				// SSSD's module (RHEL, FreeIPA) prints the same line after
				// pam_unix's for the same attempt.
				`^pam_sss\(vsftpd:auth\): authentication failure;`,
				vsftpdPrefix + `\[.*\] FAIL LOGIN: `,
			},
		},
	}
}
