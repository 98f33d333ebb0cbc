package filters_test

import (
	"testing"
)

func TestVsftpdFilter(t *testing.T) {
	const pam = "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser="
	runCases(t, "vsftpd", "", []lineCase{
		{"pam", "vsftpd", pam + "bob rhost=192.0.2.7  user=bob", "192.0.2.7"},
		{"pam no user", "vsftpd", pam + " rhost=192.0.2.7", "192.0.2.7"},
		{"pam mapped", "vsftpd", pam + "anonymous rhost=::ffff:192.0.2.7  user=anonymous", "::ffff:192.0.2.7"},
		{"pam hostname", "vsftpd", pam + "bob rhost=client.example.net  user=bob", "client.example.net"},
		{"native syslog", "vsftpd", "[pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"native file form", "vsftpd", "Sat Jun 11 10:11:12 2011 [pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"native mapped", "vsftpd", "Sat Jun 11 10:11:12 2011 [pid 1234] [root] FAIL LOGIN: Client \"::ffff:192.0.2.7\"", "::ffff:192.0.2.7"},
		{"native empty user", "vsftpd", "[pid 1234] [] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},

		// Benign lines.
		{"ok login", "vsftpd", "[pid 1234] [bob] OK LOGIN: Client \"192.0.2.7\"", ""},
		{"connect", "vsftpd", "[pid 1233] CONNECT: Client \"192.0.2.7\"", ""},
		{"check pass", "vsftpd", "pam_unix(vsftpd:auth): check pass; user unknown", ""},
		{"pam session", "vsftpd", "pam_unix(vsftpd:session): session opened for user bob(uid=1000) by (uid=0)", ""},
		{"pam empty rhost", "vsftpd", pam + "bob rhost=  user=bob", ""},
		{"wrong program", "sshd", "[pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"", ""},

		// Hostile: the FTP user name is the client's.
		{"user with fail login", "vsftpd", "[pid 1234] [x] FAIL LOGIN: Client \"10.0.0.1] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"user with quoted host", "vsftpd", "[pid 1234] [\"10.0.0.1\"] FAIL LOGIN: Client \"192.0.2.7\"", "192.0.2.7"},
		{"user with trailing host", "vsftpd", "[pid 1234] [x] FAIL LOGIN: Client \"192.0.2.7\"\" from 10.0.0.1", ""},
		{"pam ruser with rhost", "vsftpd", pam + "x rhost=10.0.0.1  user=x rhost=192.0.2.7  user=x rhost=10.0.0.1  user=x", ""},
		{"pam ruser rhost no space", "vsftpd", pam + "rhost=10.0.0.1 rhost=192.0.2.7  user=rhost=10.0.0.1", "192.0.2.7"},
		{"pam ruser from", "vsftpd", pam + "from_10.0.0.1 rhost=192.0.2.7  user=from_10.0.0.1", "192.0.2.7"},
	})
}
