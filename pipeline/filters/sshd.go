package filters

import (
	"slices"
	"time"
)

// Pieces of the sshd patterns. Every pattern is anchored at both
// ends: user names are attacker-chosen and may contain " from 10.0.0.1 port
// 22", so the host must be bound where sshd writes the peer — after the
// (greedy) user name and followed only by text sshd itself generates.
const (
	sshPort    = ` port \d+`
	sshPreauth = `(?: \[preauth\])?`
	// sshMethod is every method auth_log names: "none" is logged at INFO
	// for invalid users only, "keyboard-interactive" without "/pam" by
	// builds without PAM (BSD auth, Solaris), "unknown" for a method name
	// sshd does not know.
	sshMethod = `(?:none|password|publickey|keyboard-interactive(?:/pam)?|hostbased|gssapi-with-mic|unknown)`
	// sshFailedTail follows the host in "Failed ...": the port (absent in
	// some vendor builds), the protocol, and what auth_log appends: a key
	// ("RSA SHA256:..." 6.8+, MD5 fingerprints with colons), a
	// certificate ("ED25519-CERT SHA256:... ID name (serial 7) CA ED25519
	// SHA256:..."). The key id is the client's: \S* keeps a forged
	// " from 10.0.0.1 port 1 ssh2" out of it (such a line is a miss).
	// Hostbased lines end in the client's own user and host names, free
	// text at the end of the line: they have their own pattern.
	sshFailedTail = `(?:` + sshPort + `)?(?: ssh[12])?` +
		`(?:: [A-Z0-9-]+ [A-Za-z0-9]+:[A-Za-z0-9+/=:]+` +
		`(?: ID \S* \(serial \d+\) CA [A-Z0-9-]+ [A-Za-z0-9]+:[A-Za-z0-9+/=:]+)?)?`
	// sshConnectionFrom is LogLevel VERBOSE's first line of a connection
	// ("Connection from 192.0.2.7 port 4444" before 6.6, then "on
	// 198.51.100.1 port 22", then rdomain): it names the host that the
	// connection's address-less lines, by pid, are about.
	sshConnectionFrom = `^Connection from <HOST>` + sshPort + `(?: on \S+` + sshPort + `(?: rdomain "\S*")?)?$`
	// sshPreauthFatal are the pre-auth fatal lines that name no host.
	// strerror's text is letters and spaces; the algorithm lists are the
	// client's, but the line has no host to forge.
	sshPreauthFatal = `^(?:fatal: Read from socket failed: [A-Za-z ]+` + sshPreauth +
		`|fatal: Unable to negotiate a key exchange method` + sshPreauth +
		`|fatal: no matching (?:cipher|mac|comp) found: client .* server .*` +
		`|(?:error: )?kex_exchange_identification: (?:client sent invalid protocol identifier ".*"|read: [A-Za-z ]+|Connection closed by remote host|banner line too long|banner line contains invalid characters))$`
)

// sshd is written from the messages OpenSSH's sshd (and, since 9.8,
// sshd-session, which logs the per-connection lines) prints.
//
// Modes, as fail2ban users know them: "normal" is authentication failures
// only; "ddos" adds the probes that never get as far as authenticating
// (no or bad identification, failed key exchange, connections dropped
// before a user was named); "aggressive" is both plus noisier pre-auth
// disconnects that ordinary clients rarely produce.
//
// Deliberately never failures: "Accepted ..." (success) and "Received
// disconnect ... 11: ..." after authentication (an ordinary logout).
func sshd() Spec {
	ddos := []string{
		// Did not receive identification string from 192.0.2.7 port 4444
		`^Did not receive identification string from <HOST>(?:` + sshPort + `)?$`,
		// Bad protocol version identification 'GET / HTTP/1.1' from 192.0.2.7 port 4444
		`^Bad protocol version identification '.*' from <HOST>(?:` + sshPort + `)?$`,
		// Unable to negotiate with 192.0.2.7 port 4444: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]
		`^(?:fatal: )?Unable to negotiate with <HOST>` + sshPort + `: no matching (?:key exchange method|host key type|cipher|MAC) found(?:\. Their offer:.*)?$`,
		// banner exchange: Connection from 192.0.2.7 port 4444: invalid format
		`^(?:error: )?banner exchange: Connection from <HOST>` + sshPort + `: (?:invalid format|could not read protocol version|Connection (?:closed|reset) by peer|Broken pipe)$`,
		// Connection closed by 192.0.2.7 port 4444 [preauth]  (no user named yet)
		// Connection closed by 192.0.2.7 [preauth]   (before 7.5: no port)
		`^Connection (?:closed|reset) by <HOST>(?:` + sshPort + `)? \[preauth\]$`,
		// error: Received disconnect from 198.51.100.34: 11: Bye Bye [preauth]   (before 7.3)
		// Received disconnect from 192.0.2.7 port 4444:11: Bye Bye [preauth]
		// Received disconnect from 192.0.2.7 port 4444:14: No supported authentication methods available [preauth]
		// Before authentication a disconnect is a scanner leaving. Before
		// 5.9 no line says [preauth], and a logout reads the same: those
		// are not counted. The reason text is the client's, after the host.
		`^(?:error: )?Received disconnect from <HOST>(?:` + sshPort + `)?: ?1[14]: .*\[preauth\]$`,
		// drop connection #12 from [192.0.2.7]:4444 on [198.51.100.1]:22 past MaxStartups   (9.8+)
		// drop connection #0 from [192.0.2.7]:4444 on [198.51.100.1]:22 penalty: failed authentication
		// sshd's own throttling of a connection flood; every field is sshd's.
		`^drop connection #\d+ from \[<HOST>\]:\d+ on \[[^\]\s]+\]:\d+ (?:past MaxStartups|penalty: [a-z -]+)$`,
		// Disconnected from 192.0.2.7 port 4444 [preauth]   (7.5+: a client gone before naming a user)
		`^Disconnected from <HOST>` + sshPort + ` \[preauth\]$`,
		// Timeout before authentication for 192.0.2.7 port 4444   (7.4-9.7; no port before)
		// Timeout before authentication for connection from 192.0.2.7 to 198.51.100.1, pid = 4005   (9.9+)
		// 9.8 wrote the local address first: there the line names the
		// server itself, which sysban never bans.
		`^(?:fatal: )?Timeout before authentication for (?:connection from )?<HOST>(?:` + sshPort + `| to \S+, pid = \d+(?: \(early\))?)?$`,
		// ssh_dispatch_run_fatal: Connection from 192.0.2.7 port 4444: message authentication code incorrect [preauth]
		// A packet sshd could not decrypt or parse before authentication:
		// garbage on the port, as scanners send.
		`^(?:error: )?ssh_dispatch_run_fatal: Connection from <HOST>` + sshPort + `: [^\[\]]+ \[preauth\]$`,
	}
	aggressive := append(slices.Clone(ddos),
		// Disconnected from invalid user admin 192.0.2.7 port 4444 [preauth]   (7.5+)
		// Rightmost rule: the user name is the client's. A client that
		// named a user and left without failing: noisier than a probe.
		`^Disconnected from (?:invalid|authenticating) user .* <HOST>`+sshPort+` \[preauth\]$`,
		// Connection from 192.0.2.7 port 4444 timed out   (7.5+)
		`^Connection from <HOST>`+sshPort+` timed out$`,
	)
	return Spec{
		Name: "sshd",
		Trust: Trust{
			// The privilege-separation user is sshd on Debian, sshd or
			// _sshd elsewhere; 9.8+ splits per-connection work into
			// sshd-session and sshd-auth. Socket activation runs ssh@ units.
			Users: []string{"root", "sshd", "_sshd"}, Exes: []string{"sshd", "sshd-session", "sshd-auth"},
			Units: []string{"ssh.service", "sshd.service", "ssh@*.service", "sshd@*.service", "ssh.socket", "sshd.socket"},
		},
		Summary: "password/key/PAM failures, invalid users",
		// sshd-auth: OpenSSH 10 moved pre-auth into that binary; its lines
		// are normally relayed by sshd-session, listed in case they are not.
		Programs: []string{"sshd", "sshd-session", "sshd-auth"},
		FailRegex: []string{
			// Failed password for invalid user admin from 192.0.2.7 port 52144 ssh2
			// Failed publickey for root from 192.0.2.7 port 52144 ssh2: RSA SHA256:Zm9v
			// Failed keyboard-interactive/pam for root from 2001:db8::7 port 22 ssh2
			// Failed none for invalid user admin from 192.0.2.7 port 52144 ssh2
			// Failed password for invalid user ROOT from 2001:db8::1   (vendor builds without the port)
			// Rightmost rule: the user name is the client's; after the
			// host comes only sshd's tail (sshFailedTail), to the end.
			`^Failed ` + sshMethod + ` for .* from <HOST>` + sshFailedTail + `$`,
			// Failed hostbased for bob from 192.0.2.7 port 4444 ssh2: RSA SHA256:Zm9v, client user "bob", client host "ws1.example.org"
			// The login name before the host and the client user and host
			// names ending the line are all the client's: see IgnoreRegex.
			`^Failed hostbased for .* from <HOST>` + sshPort + ` ssh2: .*$`,
			// Invalid user oracle from 192.0.2.7 port 40022
			// Invalid user oracle from 192.0.2.7   (before OpenSSH 7.5)
			`^(?:Invalid|Illegal) user .* from <HOST>(?:` + sshPort + `)?$`,
			// User root from 192.0.2.7 not allowed because not listed in AllowUsers
			`^User .* from <HOST> not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups)$`,
			// pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root
			// The user comes after rhost, so it may be anything: rhost's
			// position is fixed by the daemon-written fields before it.
			`^pam_(?:unix|sss)\(sshd(?:-session)?:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=.*)?$`,
			// PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7 user=root
			`^PAM \d+ more authentication failures?; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=.*)?$`,
			// error: PAM: Authentication failure for root from 192.0.2.7   (older OpenSSH)
			// error: PAM: Authentication failure for illegal user admin from 192.0.2.7
			// error: PAM: authentication error for root from 192.0.2.7 via 198.51.100.1   (Apple's OpenSSH)
			// Rightmost rule: the user is the client's; " via " and the
			// local address are Apple's.
			// error: PAM: unknown user for illegal user admin from 192.0.2.7   (Apple's, for an unknown user)
			// error: PAM: authentication failure for james from 192.0.2.7 via 198.51.100.1   (Apple's, both letter cases)
			`^error: PAM: (?:[Aa]uthentication (?:failure|error)|User not known to the underlying authentication module|Maximum number of tries exceeded|unknown user) for .* from <HOST>(?: via \S+)?$`,
			// ROOT LOGIN REFUSED FROM 192.0.2.7 port 4444   (port since 7.4)
			`^ROOT LOGIN REFUSED FROM <HOST>(?:` + sshPort + `)?` + sshPreauth + `$`,
			// refused connect from 192.0.2.7 (192.0.2.7)
			// refused connect from host.example.net (192.0.2.7)
			// tcp wrappers (libwrap, linked into Debian's and older RHEL's
			// sshd). The name before the parenthesis is one word (DNS name
			// or ident@name); the address in it is the peer's.
			`^refused connect from (?:[^\s()]+ \()?<HOST>\)?$`,
			// error: maximum authentication attempts exceeded for invalid user admin from 192.0.2.7 port 4444 ssh2 [preauth]
			`^(?:error: )?maximum authentication attempts exceeded for .* from <HOST>` + sshPort + `(?: ssh2)?` + sshPreauth + `$`,
			// Disconnecting invalid user admin 192.0.2.7 port 4444: Too many authentication failures [preauth]
			// Disconnecting authenticating user root 192.0.2.7 port 4444: Too many authentication failures [preauth]
			`^Disconnecting (?:(?:invalid|authenticating) user .* )?<HOST>` + sshPort + `: Too many authentication failures` + sshPreauth + `$`,
			// Received disconnect from 192.0.2.7 port 4444:3: com.jcraft.jsch.JSchException: Auth fail [preauth]
			// Reason 3 with "Auth fail" is a client giving up after failing;
			// the host sits at a fixed position, the client-chosen text after it.
			// error: Received disconnect from 192.0.2.7: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]   (before 7.3 as error:)
			`^(?:error: )?Received disconnect from <HOST>(?:` + sshPort + `)?: ?3: .*Auth fail` + sshPreauth + `$`,
			// Connection closed by invalid user admin 192.0.2.7 port 4444 [preauth]
			// Connection reset by authenticating user root 192.0.2.7 port 4444 [preauth]
			`^Connection (?:closed|reset) by (?:invalid|authenticating) user .* <HOST>` + sshPort + ` \[preauth\]$`,
			// Disconnecting invalid user admin 192.0.2.7 port 4444: Change of username or service not allowed: (admin,ssh-connection) -> (oracle,ssh-connection) [preauth]
			// (7.5+; "Disconnecting: Change of ..." before names no host.)
			// A client that switches user names within one connection, as
			// user-list brute forcers do. The user names after the host
			// are the client's; only sshd's fixed text may separate the
			// host from them.
			`^Disconnecting (?:(?:invalid|authenticating) user .* )?<HOST>` + sshPort + `: Change of username or service not allowed: \(.*\) -> \(.*\)` + sshPreauth + `$`,
		},
		IgnoreRegex: []string{
			// A hostbased failure has client text on both sides of the
			// host, so no position rule can tell a forged " from 10.0.0.1
			// port 1" from sshd's: a line with two is not counted.
			`^Failed hostbased for .* from .* from `,
			// SSH1's rhosts info "ssh1: ruser NAME" (before 7.4) ends the
			// line in the client's remote user name: with " from " in it
			// no rule can tell the forgery from sshd's.
			`^Failed \S+ for .* from .* ssh1: ruser (?:.* )?from `,
			// The same for a change of user name: the user names stand on
			// both sides of the host, so a line saying sshd's text twice
			// is not counted.
			`^Disconnecting .*: Change of username or service not allowed: .*: Change of username or service not allowed: `,
		},
		Modes: map[string][]string{
			"ddos":       ddos,
			"aggressive": aggressive,
		},
		Correlate: []Correlation{{
			// With LogLevel VERBOSE, sshd logs "Connection from 192.0.2.7
			// port 4444 on 198.51.100.1 port 22" when a connection starts;
			// the pre-auth "Disconnecting: Too many authentication
			// failures" of older OpenSSH (before 7.5) names no host, but the
			// monitor logs both under the connection's pid.
			Open: sshConnectionFrom,
			// Disconnecting: Too many authentication failures [preauth]
			// Disconnecting: Too many authentication failures for root [preauth]
			Close:   `^Disconnecting: Too many authentication failures(?: for .*)?` + sshPreauth + `$`,
			Window:  10 * time.Minute,
			Summary: "pid: `Connection from` + `Too many authentication failures`",
		}, {
			// The same open, in modes ddos and aggressive, for the probes
			// that end a connection before authentication with a fatal
			// line that names no host (the daemon's own text, read from
			// each version's kex.c and packet.c):
			//   fatal: Read from socket failed: Connection reset by peer [preauth]   (4.x-6.x; [preauth] 5.9+)
			//   fatal: Unable to negotiate a key exchange method [preauth]   (5.x-6.x)
			//   fatal: no matching mac found: client hmac-md5 server hmac-sha2-256 [preauth]   (4.x-6.x; cipher, mac, comp)
			//   error: kex_exchange_identification: client sent invalid protocol identifier "GET / HTTP/1.1"   (8.0+)
			//   error: kex_exchange_identification: read: Connection reset by peer   (8.0+)
			//   error: kex_exchange_identification: banner line too long   (8.0+)
			// From 7.0 the negotiation failure and from 8.3 the banner
			// failures are followed by a line naming the host ("Unable to
			// negotiate with", "banner exchange: Connection from"); the
			// attempt rules make the pair one failure.
			Open:    sshConnectionFrom,
			Close:   sshPreauthFatal,
			Window:  10 * time.Minute,
			Summary: "pid, modes ddos and aggressive: `Connection from` + a pre-auth fatal line naming no host (`Read from socket failed`, `Unable to negotiate a key exchange method`, `no matching cipher/mac/comp found`, `kex_exchange_identification: ...`)",
			Modes:   []string{"ddos", "aggressive"},
		}, {
			// A client that connects and hangs up without sending its
			// identification string (8.3-9.7 at LogLevel INFO; 9.8+ logs the
			// first line at VERBOSE only, and then nothing counts):
			//   error: kex_exchange_identification: Connection closed by remote host
			//   Connection closed by 192.0.2.7 port 4444
			//   error: kex_exchange_identification: read: Connection reset by peer
			//   Connection reset by 192.0.2.7 port 4444
			// both from the per-connection process, before privsep, so the
			// second has no [preauth]. That second line alone is also what a
			// session's ordinary end prints (serverloop at VERBOSE in 9.2, at
			// INFO in 9.8+, and sshpkt_fatal after authentication), so it
			// counts only after the first, by pid, within seconds: sshd
			// writes them back to back. With "Connection from" before them
			// (VERBOSE), the first line completes that open instead, and
			// the second counts nothing.
			Open:    `^(?:error: )?kex_exchange_identification: (?:Connection closed by remote host|read: Connection reset by peer)$`,
			Close:   `^Connection (?:closed|reset) by <HOST>` + sshPort + `$`,
			Window:  10 * time.Second,
			Summary: "pid, modes ddos and aggressive: `kex_exchange_identification: Connection closed by remote host` (or `read: Connection reset by peer`) + `Connection closed by` (`reset by`)",
			Modes:   []string{"ddos", "aggressive"},
		}},
		// OpenSSH, password: pam_unix + "Failed password"; keyboard-
		// interactive: pam_unix (PAM child's pid) + "error: PAM:
		// Authentication failure"; an unknown or refused user adds
		// "Invalid user" / "User ... not allowed" before them. Then the
		// session's close: "Connection closed by authenticating user ...
		// [preauth]" (the only line of a publickey-only attempt) or
		// "Disconnecting ...: Too many authentication failures".
		Attempts: &AttemptRules{
			Lines: []string{
				`^pam_unix\(sshd(?:-session)?:auth\): authentication failure;`,
				// SSSD's module (RHEL, FreeIPA) prints the same line after
				// pam_unix's for the same attempt.
				`^pam_sss\(sshd(?:-session)?:auth\): authentication failure;`,
				`^Failed \S+ for `,
				// keyboard-interactive through PAM prints both "error: PAM:
				// ..." and "Failed keyboard-interactive/pam" per attempt.
				`^error: PAM: `,
				`^(?:Invalid|Illegal) user `,
				`^User .* not allowed because `,
				// MaxAuthTries reached: sshd prints this and then
				// "Disconnecting ...: Too many authentication failures"
				// (7.5+), both about the session's last attempt. As a line
				// of that attempt it counts nothing after its failure line,
				// and makes the end line that follows count nothing.
				`^(?:error: )?maximum authentication attempts exceeded `,
				// A connection that ends before authentication prints up
				// to three lines (ddos and aggressive count each kind):
				// "Received disconnect from A port P:11: ... [preauth]"
				// then "Disconnected from A port P [preauth]" (7.5+); a
				// bad banner the address-less kex_exchange_identification
				// line (completed by "Connection from") then "banner
				// exchange: Connection from A port P: ..." (8.3+); a
				// failed negotiation "fatal: Unable to negotiate a key
				// exchange method" then "Unable to negotiate with A ..."
				// (7.0-7.x). One kind each: they are one probe.
				`^(?:error: )?Received disconnect from \S+(?: port \d+)?: ?1[14]: `,
				`^(?:Disconnected from|Connection (?:closed|reset) by) \S+(?: port \d+)? \[preauth\]$`,
				`^(?:error: )?kex_exchange_identification: |^fatal: (?:Read from socket failed|Unable to negotiate a key exchange method|no matching (?:cipher|mac|comp) found)`,
				`^(?:error: )?banner exchange: |^(?:fatal: )?Unable to negotiate with `,
			},
			// pam_unix's and pam_sss's lines come before sshd's verdict
			// and may belong to a password the next module in the stack
			// accepts (pam_unix "sufficient" before pam_sss/pam_ldap):
			// the attempt they open is held until "Failed ..." or
			// "error: PAM:" counts it, or "Accepted ..." drops it.
			Provisional: []string{`^pam_(?:unix|sss)\(`},
			// Accepted password for bob from 192.0.2.7 port 4444 ssh2
			// Accepted keyboard-interactive/pam for bob from 192.0.2.7 port 4444 ssh2
			// Rightmost rule, as for "Failed": the user name is the client's.
			// One pattern per method: each literal prefix turns the
			// benign "Accepted publickey" lines away at once.
			Success: []string{
				`^Accepted password for .* from <HOST>(?:` + sshPort + `)?(?: ssh2)?$`,
				`^Accepted keyboard-interactive(?:/pam)? for .* from <HOST>(?:` + sshPort + `)?(?: ssh2)?$`,
			},
			// A client with several keys (an agent) is refused each key
			// but the right one: before 8.x each refusal was logged as
			// "Failed publickey for USER" at INFO, and an ordinary user
			// of a git server logs several. For a valid user they count
			// nothing alone; the session's end counts one attempt when no
			// key was accepted. (For an invalid user every line counts.)
			Quiet: []string{
				`^Failed publickey for (?:[^i]|i(?:[^n]|n(?:[^v]|v(?:[^a]|a(?:[^l]|l(?:[^i]|i(?:[^d]|d[^ ])))))))`,
			},
			Ends: []string{
				`^Connection (?:closed|reset) by (?:invalid|authenticating) user `,
				`^Disconnecting (?:(?:invalid|authenticating) user .* )?\S+ port \d+: (?:Too many authentication failures|Change of username or service not allowed)`,
				`^Received disconnect from .*Auth fail`,
				// Before 7.5 the address-less form, completed by
				// "Connection from" (VERBOSE): after the session's
				// counted failures it counts nothing more.
				`^Disconnecting: Too many authentication failures`,
				`^PAM (?P<more>\d+) more authentication failures?;`,
			},
		},
	}
}
