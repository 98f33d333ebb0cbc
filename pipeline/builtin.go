package pipeline

// BuiltinFilters returns the filters sysban ships, by name. It builds a
// fresh map on each call so callers may modify the result.
func BuiltinFilters() map[string]FilterSpec {
	filters := map[string]FilterSpec{
		"sshd": sshdFilter(),
	}
	for _, group := range [][]FilterSpec{mailFilters(), serviceFilters()} {
		for _, f := range group {
			filters[f.Name] = f
		}
	}
	return filters
}

// Shared pieces of the sshd patterns. Every pattern is anchored at both
// ends: user names are attacker-chosen and may contain " from 10.0.0.1 port
// 22", so the host must be bound where sshd writes the peer — after the
// (greedy) user name and followed only by text sshd itself generates.
const (
	sshPort    = ` port \d+`
	sshPreauth = `(?: \[preauth\])?`
)

// sshdFilter is written from the messages OpenSSH's sshd (and, since 9.8,
// sshd-session, which logs the per-connection lines) prints.
//
// Deliberately not failures: "Accepted ..." (success), "Received disconnect
// ... 11: ..." (reason 11 is an ordinary client-side disconnect, banning on it
// would ban users who simply log out) and the bare "Connection closed by H
// port P [preauth]" (also what a client that refuses the host key produces).
func sshdFilter() FilterSpec {
	return FilterSpec{
		Name: "sshd",
		// sshd-auth: OpenSSH 10 moved pre-auth into that binary; its lines
		// are normally relayed by sshd-session, listed in case they are not.
		Programs: []string{"sshd", "sshd-session", "sshd-auth"},
		FailRegex: []string{
			// Failed password for invalid user admin from 192.0.2.7 port 52144 ssh2
			// Failed publickey for root from 192.0.2.7 port 52144 ssh2: RSA SHA256:Zm9v
			// Failed keyboard-interactive/pam for root from 2001:db8::7 port 22 ssh2
			`^Failed (?:password|publickey|keyboard-interactive/pam|hostbased|gssapi-with-mic) for .* from <HOST>` + sshPort + `(?: ssh2)?(?:: [A-Z0-9-]+ [A-Za-z0-9]+:[A-Za-z0-9+/=]+)?$`,
			// Invalid user oracle from 192.0.2.7 port 40022
			// Invalid user oracle from 192.0.2.7   (before OpenSSH 7.5)
			`^(?:Invalid|Illegal) user .* from <HOST>(?:` + sshPort + `)?$`,
			// User root from 192.0.2.7 not allowed because not listed in AllowUsers
			`^User .* from <HOST> not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups)$`,
			// pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root
			// The user comes after rhost, so it may be anything: rhost's
			// position is fixed by the daemon-written fields before it.
			`^pam_unix\(sshd(?:-session)?:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=.*)?$`,
			// PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7 user=root
			`^PAM \d+ more authentication failures?; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=.*)?$`,
			// error: PAM: Authentication failure for root from 192.0.2.7   (older OpenSSH)
			`^error: PAM: (?:Authentication failure|User not known to the underlying authentication module) for .* from <HOST>$`,
			// error: maximum authentication attempts exceeded for invalid user admin from 192.0.2.7 port 4444 ssh2 [preauth]
			`^(?:error: )?maximum authentication attempts exceeded for .* from <HOST>` + sshPort + `(?: ssh2)?` + sshPreauth + `$`,
			// Disconnecting invalid user admin 192.0.2.7 port 4444: Too many authentication failures [preauth]
			// Disconnecting authenticating user root 192.0.2.7 port 4444: Too many authentication failures [preauth]
			`^Disconnecting (?:(?:invalid|authenticating) user .* )?<HOST>` + sshPort + `: Too many authentication failures` + sshPreauth + `$`,
			// Received disconnect from 192.0.2.7 port 4444:3: com.jcraft.jsch.JSchException: Auth fail [preauth]
			// Reason 3 with "Auth fail" is a client giving up after failing;
			// the host sits at a fixed position, the client-chosen text after it.
			`^Received disconnect from <HOST>(?:` + sshPort + `)?: ?3: .*Auth fail` + sshPreauth + `$`,
			// Did not receive identification string from 192.0.2.7 port 4444
			`^Did not receive identification string from <HOST>(?:` + sshPort + `)?$`,
			// Bad protocol version identification 'GET / HTTP/1.1' from 192.0.2.7 port 4444
			`^Bad protocol version identification '.*' from <HOST>(?:` + sshPort + `)?$`,
			// Unable to negotiate with 192.0.2.7 port 4444: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]
			`^(?:fatal: )?Unable to negotiate with <HOST>` + sshPort + `: no matching (?:key exchange method|host key type|cipher|MAC) found(?:\. Their offer:.*)?$`,
			// banner exchange: Connection from 192.0.2.7 port 4444: invalid format
			`^(?:error: )?banner exchange: Connection from <HOST>` + sshPort + `: invalid format$`,
			// Connection closed by invalid user admin 192.0.2.7 port 4444 [preauth]
			// Connection reset by authenticating user root 192.0.2.7 port 4444 [preauth]
			`^Connection (?:closed|reset) by (?:invalid|authenticating) user .* <HOST>` + sshPort + ` \[preauth\]$`,
		},
	}
}
