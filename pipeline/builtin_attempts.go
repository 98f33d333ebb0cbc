package pipeline

// builtinAttempts are the AttemptRules of the built-in filters whose
// daemons print several lines per client attempt (issue 15), measured on the
// live daemons (docs/real-daemons.md, e2e/live_*_test.go). They classify
// lines the filters' failregexes already matched, by the daemon's wording
// only, so they hold whatever those failregexes become.
func builtinAttempts() map[string]*AttemptRules {
	return map[string]*AttemptRules{
		// OpenSSH, password: pam_unix + "Failed password"; keyboard-
		// interactive: pam_unix (PAM child's pid) + "error: PAM:
		// Authentication failure"; an unknown or refused user adds
		// "Invalid user" / "User ... not allowed" before them. Then the
		// session's close: "Connection closed by authenticating user ...
		// [preauth]" (the only line of a publickey-only attempt) or
		// "Disconnecting ...: Too many authentication failures".
		"sshd": {
			Lines: []string{
				`^pam_unix\(sshd(?:-session)?:auth\): authentication failure;`,
				`^(?:Failed \S+ for |error: PAM: )`,
				`^(?:Invalid|Illegal) user `,
				`^User .* not allowed because `,
			},
			Ends: []string{
				`^Connection (?:closed|reset) by (?:invalid|authenticating) user `,
				`^Disconnecting (?:(?:invalid|authenticating) user .* )?\S+ port \d+: Too many authentication failures`,
				`^(?:error: )?maximum authentication attempts exceeded `,
				`^Received disconnect from .*Auth fail`,
				`^PAM (?P<more>\d+) more authentication failures?;`,
			},
		},
		// Dovecot, a wrong password: each passdb's verdict
		// ("passwd-file(...): Password mismatch", "pam(...):
		// pam_authenticate() failed") with auth_verbose = yes, and
		// pam_unix's line; a passdb that does not know the user says so and
		// the next one decides (quiet). The login process's "Disconnected
		// (auth failed, N attempts)" ends the session: with auth_verbose =
		// no and a passwd-file it is the only line.
		"dovecot": {
			Lines: []string{
				`^pam_unix\(dovecot:auth\): authentication failure;`,
				`^auth(?:-worker)?(?:\([^)]*\))?: (?:Info: )?(?:conn unix:\S+ \(pid=\d+,uid=\d+\): auth-worker<\d+>: )?pam\(`,
				`^auth(?:-worker)?(?:\([^)]*\))?: (?:Info: )?(?:conn unix:\S+ \(pid=\d+,uid=\d+\): auth-worker<\d+>: )?[a-z0-9-]+\(`,
			},
			Quiet: []string{
				`^auth(?:-worker)?(?:\([^)]*\))?: .*\): (?:unknown user|User not known to the underlying authentication module)$`,
			},
			Ends: []string{
				dovecotLogin + `(?:Aborted login|Disconnected|Login aborted)(?:: [^(]*)? \(auth failed, (?P<n>\d+) attempts`,
				dovecotLogin + `(?:Aborted login|Disconnected|Login aborted)(?:: [^(]*)? \((?P<n>\d+) authentication attempts?\)`,
				dovecotLogin + `(?:Aborted login|Disconnected): user=(?:<.*>)?, method=`,
			},
		},
	}
}

// withAttempts gives the built-in filters their AttemptRules.
func withAttempts(filters map[string]FilterSpec) {
	for name, rules := range builtinAttempts() {
		if f, ok := filters[name]; ok {
			f.Attempts = rules
			filters[name] = f
		}
	}
}
