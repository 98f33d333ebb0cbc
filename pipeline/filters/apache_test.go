package filters_test

import (
	"testing"
)

func TestApacheFilter(t *testing.T) {
	const t24 = "[Thu Jun 09 10:11:12.123456 2011] "
	runCases(t, "apache", "", []lineCase{
		// Apache 2.2 error_log (CentOS 5) and the same through syslog.
		{"2.2 phpMyAdmin version", "httpd", "[Sat Jun 30 04:09:24 2012] [error] [client 118.142.43.102] File does not exist: /data/www/html/phpMyAdmin-2.8.3", "118.142.43.102"},
		{"2.2 admin", "httpd", "[Tue Nov 29 10:50:12 2011] [error] [client 188.40.53.213] File does not exist: /data/www/html/admin", "188.40.53.213"},
		{"2.2 syslog no date", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/pma", "192.0.2.7"},
		{"2.2 bare client", "apache2", "[client 192.0.2.7] File does not exist: /var/www/html/wp-login.php", "192.0.2.7"},
		{"2.2 referer", "apache2", "[client 192.0.2.7] File does not exist: /var/www/html/PMA, referer: http://example.com/", "192.0.2.7"},
		{"2.2 ipv6", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 2001:db8::7] File does not exist: /var/www/html/phpmyadmin", "2001:db8::7"},
		{"2.2 script not found", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] script not found or unable to stat: /var/www/cgi-bin/php5", "192.0.2.7"},
		{"2.2 client denied", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] client denied by server configuration: /var/www/private", "192.0.2.7"},
		{"2.2 user not found", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] user admin not found: /private", "192.0.2.7"},
		{"2.2 password mismatch", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] user bob: authentication failure for \"/private\": Password Mismatch", "192.0.2.7"},
		{"2.2 digest not found", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] Digest: user `bob' in realm `private' not found: /private", "192.0.2.7"},
		{"2.2 digest mismatch", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] Digest: user bob: password mismatch: /private", "192.0.2.7"},

		// 2.4 error_log and through syslog.
		{"2.4 file does not exist", "apache2", t24 + "[core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/phpMyAdmin", "192.0.2.7"},
		{"probe not last component", "apache2", t24 + "[core:info] [pid 123] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/myadmin/index.php", ""},
		{"2.4 syslog", "apache2", "[core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/mysqladmin", "192.0.2.7"},
		{"2.4 bare client", "apache-error", "[client 192.0.2.7:51234] AH00128: File does not exist: /srv/www/wp-admin", "192.0.2.7"},
		{"2.4 ipv6 port", "apache2", t24 + "[core:info] [pid 123:tid 456] [client 2001:db8::7:1234] AH00128: File does not exist: /var/www/html/pma", "2001:db8::7"},
		{"2.4 script not found", "apache2", t24 + "[cgi:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01264: script not found or unable to stat: /usr/lib/cgi-bin/php", "192.0.2.7"},
		{"2.4 script not found AH02811", "apache2", "[cgi:error] [pid 123:tid 123] [client 192.0.2.7:51234] AH02811: stderr from /usr/lib/cgi-bin/nothere.cgi: script not found or unable to stat", "192.0.2.7"},
		{"2.4 script not found AH02811 ipv6", "apache2", "[cgi:error] [pid 123:tid 123] [client 2001:db8::7:51234] AH02811: stderr from /usr/lib/cgi-bin/x: script not found or unable to stat", "2001:db8::7"},
		{"2.4 client denied", "apache2", t24 + "[authz_core:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01630: client denied by server configuration: /var/www/private", "192.0.2.7"},
		{"2.4 access_compat denied", "apache2", t24 + "[access_compat:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01797: client denied by server configuration: /var/www/private", "192.0.2.7"},
		{"2.4 user not found", "apache2", t24 + "[auth_basic:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01618: user admin not found: /private", "192.0.2.7"},
		{"2.4 password mismatch", "apache2", t24 + "[auth_basic:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01617: user bob: authentication failure for \"/private\": Password Mismatch", "192.0.2.7"},
		{"2.4 password mismatch referer", "apache2", t24 + "[auth_basic:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01617: user bob: authentication failure for \"/private\": Password Mismatch, referer: https://example.com/", "192.0.2.7"},
		{"2.4 digest not found", "apache2", t24 + "[auth_digest:error] [pid 123:tid 456] [client 192.0.2.7:51234] AH01790: user `bob' in realm `private' not found: /private", "192.0.2.7"},
		{"2.4 apr error", "apache2", t24 + "[core:error] [pid 123:tid 456] (13)Permission denied: [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/admin", "192.0.2.7"},

		// Benign lines.
		{"favicon", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] File does not exist: /var/www/html/favicon.ico", ""},
		{"robots 2.4", "apache2", t24 + "[core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/robots.txt", ""},
		{"admin as prefix of word", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/administrivia", ""},
		{"admin directory with missing file", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/admin/html/logo.png", ""},
		{"directory index", "httpd", "[Thu Jun 09 10:11:12 2011] [error] [client 192.0.2.7] Directory index forbidden by Options directive: /var/www/html/", ""},
		{"notice", "httpd", "[Thu Jun 09 10:11:12 2011] [notice] Apache/2.2.15 (Unix) DAV/2 configured -- resuming normal operations", ""},
		{"2.4 mpm", "apache2", t24 + "[mpm_event:notice] [pid 123:tid 456] AH00489: Apache/2.4.57 (Debian) configured -- resuming normal operations", ""},
		{"wrong program", "sshd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/pma", ""},

		// Hostile: paths, user names and the Referer are the client's.
		{"path with client tag", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/[client 10.0.0.1] File does not exist: /var/www/html/pma", "192.0.2.7"},
		{"user with client tag", "httpd", "[error] [client 192.0.2.7] user [client 10.0.0.1] user x not found: /private", "192.0.2.7"},
		{"user with client tag 2.4", "apache2", t24 + "[auth_basic:error] [pid 1:tid 2] [client 192.0.2.7:51234] AH01617: user [client 10.0.0.1:1] AH01617: user x: authentication failure for \"/\": Password Mismatch", "192.0.2.7"},
		{"referer names probe", "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/favicon.ico, referer: http://evil.example/phpMyAdmin", ""},
		{"unknown field after client", "httpd", "[error] [client 10.0.0.1] [client 192.0.2.7] File does not exist: /var/www/html/pma", ""},
		{"AH02811 path with client tag", "apache2", "[cgi:error] [pid 1:tid 1] [client 192.0.2.7:51234] AH02811: stderr from /cgi-bin/[client 10.0.0.1:1] AH02811: stderr from /x: script not found or unable to stat", "192.0.2.7"},
		{"AH02811 reason not last", "apache2", "[cgi:error] [pid 1:tid 1] [client 192.0.2.7:51234] AH02811: stderr from /cgi-bin/x: script not found or unable to stat: /y", ""},
		{"no client field", "httpd", "[error] File does not exist: /var/www/html/[client 10.0.0.1] pma", ""},
	})
}
