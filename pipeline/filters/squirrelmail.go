package filters

// squirrelmail reads the squirrel_logger plugin's LOGIN_ERROR
// events, as on a QmailToaster (CentOS 5) host. The message after the address is SquirrelMail's
// "Unknown user or password incorrect." in the user's interface language
// (that host's was Italian), so it is not matched: the event tag is what
// says "failure".
func squirrelmail() Spec {
	return Spec{
		Name:    "squirrelmail",
		Trust:   Trust{Users: []string{"root", "www-data", "apache"}},
		Summary: "`[LOGIN_ERROR]` in any language",
		// squirrel_logger's syslog ident; "squirrelmail" is also the tag to
		// give imfile for its own log file.
		Programs: []string{"squirrelmail", "squirrel_logger"},
		FailRegex: []string{
			// [LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unknown user or password incorrect.
			// 10/15/2011 14:31:03 [LOGIN_ERROR] bob (example.com) from 192.0.2.7: Utente sconosciuto o password errata.
			// Rightmost rule: the user name may hold " from 10.0.0.1: ";
			// the localised message after the address is SquirrelMail's.
			`^(?:[0-9/.-]+ [0-9:]+ )?\[LOGIN_ERROR\] .* from <HOST>: .+$`,
		},
	}
}
