package filters

// mysqld is written from the server's ER_ACCESS_DENIED_ERROR message as
// MySQL (up to 5.7 with log_warnings = 2; 8.0+ as MY-010926 with
// log_error_verbosity = 3) and MariaDB (log_warnings >= 2) write it to the
// error log, which reaches syslog through mysqld_safe --syslog, the
// journal, or imfile.
//
// Not a failure: "Aborted connection ... (Got timeout reading communication
// packets)": clients that time out or crash.
func mysqld() Spec {
	return Spec{
		Name:    "mysqld",
		Trust:   Trust{Users: []string{"root", "mysql"}, Exes: []string{"mysqld", "mariadbd", "mysqld_safe"}, Units: []string{"mysql.service", "mysqld.service", "mariadb.service"}},
		Summary: "MySQL/MariaDB `Access denied for user`",
		// mysqld and mariadbd log under their binary names; mysqld_safe
		// --syslog tags them "mysqld" (older: "mysqld_safe").
		Programs: []string{"mysqld", "mariadbd", "mysqld_safe", "mysql", "mariadb", "mysqld-*"},
		FailRegex: []string{
			// 2026-03-01 13:00:00 12 [Warning] Access denied for user 'root'@'192.0.2.7' (using password: YES)
			// 2026-03-01T13:00:02.123456Z 14 [Note] [MY-010926] [Server] Access denied for user 'root'@'192.0.2.7' (using password: YES)
			// 170301 13:00:03 [Warning] Access denied for user 'root'@'client.example.org' (using password: YES)
			// 2024-05-02 07:41:09 5120 [Warning] Access denied for user 'root'@'192.0.2.1'
			// MariaDB's ER_ACCESS_DENIED_NO_PASSWORD_ERROR (10.2+,
			// sql_acl.cc login_failed_error): the same refusal when the
			// client's authentication plugin sent no password, e.g. a
			// unix_socket or ed25519 account tried over the network.
			// Rightmost rule: the user name is the client's and may hold
			// "'@'10.0.0.1' (using password: YES)"; the host is the last
			// quoted field, which the fixed tail (or nothing) follows to
			// the end of the line.
			`^(?:[0-9TZ:. -]+ )?(?:\d+ )?(?:\[(?:Warning|Note)\] )?(?:\[MY-010926\] \[Server\] )?Access denied for user '.*'@'<HOST>'(?: \(using password: (?:YES|NO)\))?$`,
		},
	}
}
