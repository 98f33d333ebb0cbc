package filters_test

import (
	"strings"
	"testing"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// sshdMinMode names the lines of TestSSHDMatches that only a wider mode
// catches: "ddos" lines match in ddos and aggressive, "aggressive" lines in
// aggressive only; every other line behaves the same in all modes.
var sshdMinMode = map[string]string{
	"no identification":           "ddos",
	"no identification old":       "ddos",
	"bad protocol version":        "ddos",
	"unable to negotiate kex":     "ddos",
	"unable to negotiate hostkey": "ddos",
	"banner exchange":             "ddos",
	"connection closed bare":      "ddos",
	"connection reset bare ipv6":  "ddos",
	"inject bad protocol":         "ddos",
	"inject negotiate offer":      "ddos",
	"received disconnect 11":      "ddos",
	"received disconnect 14":      "ddos",
	"disconnected preauth":        "ddos",
	"timeout before auth":         "ddos",
	"dispatch run fatal":          "ddos",
}

func TestSSHDMatches(t *testing.T) {
	// Each mode with the literal prefilter and without: it must not change
	// a verdict.
	modes := map[string][2]*pipeline.Tester{}
	for _, m := range []string{"normal", "ddos", "aggressive"} {
		modes[m] = [2]*pipeline.Tester{
			newTester(t, "sshd", m),
			newTesterOpts(t, "sshd", pipeline.TesterOptions{Mode: m, NoPrefilter: true}),
		}
	}
	tests := []struct {
		name, line, host string // host "" means the line must not match
	}{
		// Failures, one or more per form sshd prints.
		{"failed password", "Failed password for root from 192.0.2.7 port 52144 ssh2", "192.0.2.7"},
		{"failed password invalid user", "Failed password for invalid user admin from 192.0.2.7 port 52144 ssh2", "192.0.2.7"},
		{"failed password ipv6", "Failed password for root from 2001:db8::7 port 22 ssh2", "2001:db8::7"},
		{"failed password mapped", "Failed password for root from ::ffff:198.51.100.9 port 22 ssh2", "::ffff:198.51.100.9"},
		{"failed password no ssh2", "Failed password for root from 192.0.2.7 port 22", "192.0.2.7"},
		{"failed password empty user", "Failed password for invalid user  from 192.0.2.7 port 22 ssh2", "192.0.2.7"},
		{"failed publickey", "Failed publickey for root from 192.0.2.7 port 22 ssh2: RSA SHA256:Zm9vYmFyYmF6cXV4+/0", "192.0.2.7"},
		{"failed publickey ed25519", "Failed publickey for git from 192.0.2.7 port 22 ssh2: ED25519 SHA256:abcDEF012", "192.0.2.7"},
		{"failed kbd-interactive", "Failed keyboard-interactive/pam for invalid user x from 192.0.2.7 port 1 ssh2", "192.0.2.7"},
		{"invalid user", "Invalid user oracle from 192.0.2.7 port 40022", "192.0.2.7"},
		{"invalid user old", "Invalid user oracle from 192.0.2.7", "192.0.2.7"},
		{"invalid user empty", "Invalid user  from 192.0.2.7 port 40022", "192.0.2.7"},
		{"illegal user", "Illegal user test from 192.0.2.7", "192.0.2.7"},
		{"not allowed AllowUsers", "User root from 192.0.2.7 not allowed because not listed in AllowUsers", "192.0.2.7"},
		{"not allowed DenyUsers", "User bob from 192.0.2.7 not allowed because listed in DenyUsers", "192.0.2.7"},
		{"not allowed AllowGroups", "User bob from 192.0.2.7 not allowed because none of user's groups are listed in AllowGroups", "192.0.2.7"},
		{"not allowed DenyGroups", "User bob from 192.0.2.7 not allowed because a group is listed in DenyGroups", "192.0.2.7"},
		{"pam_unix ip user", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=58.83.131.67 user=root", "58.83.131.67"},
		{"pam_unix ip two spaces", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=58.83.131.67  user=root", "58.83.131.67"},
		{"pam_unix ip no user", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=58.83.131.67", "58.83.131.67"},
		{"pam_unix hostname", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=jumbotrace.cmu.ac.th user=root", "jumbotrace.cmu.ac.th"},
		{"pam_unix hostname dashes", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=wsip-98-190-1-101.ks.ks.cox.net", "wsip-98-190-1-101.ks.ks.cox.net"},
		{"pam_unix sshd-session", "pam_unix(sshd-session:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7", "192.0.2.7"},
		{"pam more failures", "PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=116.10.191.188 user=root", "116.10.191.188"},
		{"pam 1 more failure", "PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=116.10.191.188", "116.10.191.188"},
		{"error PAM", "error: PAM: Authentication failure for root from 192.0.2.7", "192.0.2.7"},
		{"error PAM unknown user", "error: PAM: User not known to the underlying authentication module for illegal user x from 192.0.2.7", "192.0.2.7"},
		{"max auth attempts", "error: maximum authentication attempts exceeded for invalid user admin from 192.0.2.7 port 4444 ssh2 [preauth]", "192.0.2.7"},
		{"max auth attempts root", "maximum authentication attempts exceeded for root from 192.0.2.7 port 4444 ssh2 [preauth]", "192.0.2.7"},
		{"disconnecting invalid user", "Disconnecting invalid user admin 192.0.2.7 port 4444: Too many authentication failures [preauth]", "192.0.2.7"},
		{"disconnecting authenticating user", "Disconnecting authenticating user root 192.0.2.7 port 4444: Too many authentication failures [preauth]", "192.0.2.7"},
		{"disconnecting bare", "Disconnecting 192.0.2.7 port 4444: Too many authentication failures", "192.0.2.7"},
		{"received disconnect auth fail", "Received disconnect from 192.0.2.7 port 4444:3: com.jcraft.jsch.JSchException: Auth fail [preauth]", "192.0.2.7"},
		{"received disconnect auth fail old", "Received disconnect from 192.0.2.7: 3: com.jcraft.jsch.JSchException: Auth fail", "192.0.2.7"},
		{"no identification", "Did not receive identification string from 192.0.2.7 port 4444", "192.0.2.7"},
		{"no identification old", "Did not receive identification string from 192.0.2.7", "192.0.2.7"},
		{"bad protocol version", "Bad protocol version identification 'GET / HTTP/1.1' from 192.0.2.7 port 4444", "192.0.2.7"},
		{"unable to negotiate kex", "Unable to negotiate with 192.0.2.7 port 4444: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]", "192.0.2.7"},
		{"unable to negotiate hostkey", "Unable to negotiate with 2001:db8::1 port 4444: no matching host key type found. Their offer: ssh-dss", "2001:db8::1"},
		{"banner exchange", "banner exchange: Connection from 192.0.2.7 port 4444: invalid format", "192.0.2.7"},
		{"connection closed invalid user", "Connection closed by invalid user admin 192.0.2.7 port 4444 [preauth]", "192.0.2.7"},
		{"connection closed authenticating", "Connection closed by authenticating user root 192.0.2.7 port 4444 [preauth]", "192.0.2.7"},
		{"connection reset invalid user", "Connection reset by invalid user pi 2001:db8::9 port 4444 [preauth]", "2001:db8::9"},
		{"trailing newline", "Invalid user oracle from 192.0.2.7 port 40022\n", "192.0.2.7"},

		// Benign lines: successes and noise.
		{"accepted password", "Accepted password for root from 192.0.2.7 port 22 ssh2", ""},
		{"accepted publickey", "Accepted publickey for git from 192.0.2.7 port 22 ssh2: ED25519 SHA256:abc", ""},
		{"session opened", "pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)", ""},
		{"received disconnect 11", "Received disconnect from 192.0.2.7 port 4444:11: Bye Bye [preauth]", "192.0.2.7"},
		{"received disconnect 11 user", "Received disconnect from 192.0.2.7 port 4444:11: disconnected by user", ""},
		{"disconnected from user", "Disconnected from user root 192.0.2.7 port 4444", ""},
		{"connection closed bare", "Connection closed by 192.0.2.7 port 4444 [preauth]", "192.0.2.7"},
		{"connection reset bare ipv6", "Connection reset by 2001:db8::4 port 4444 [preauth]", "2001:db8::4"},
		{"received disconnect 14", "Received disconnect from 192.0.2.7 port 4444:14: No supported authentication methods available [preauth]", "192.0.2.7"},
		{"disconnected preauth", "Disconnected from 192.0.2.7 port 4444 [preauth]", "192.0.2.7"},
		{"timeout before auth", "fatal: Timeout before authentication for 192.0.2.7 port 4444", "192.0.2.7"},
		{"dispatch run fatal", "ssh_dispatch_run_fatal: Connection from 192.0.2.7 port 4444: message authentication code incorrect [preauth]", "192.0.2.7"},
		{"received disconnect 11 no preauth", "Received disconnect from 192.0.2.7 port 4444:11: Bye Bye", ""},
		{"connection closed bare no preauth", "Connection closed by 192.0.2.7 port 4444", ""},
		{"old disconnecting no host", "Disconnecting: Too many authentication failures for root", ""},
		{"pam empty rhost", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=  user=root", ""},
		{"server listening", "Server listening on 0.0.0.0 port 22.", ""},
		{"postponed", "Postponed keyboard-interactive for root from 192.0.2.7 port 22 ssh2 [preauth]", ""},
		{"kex identification", "error: kex_exchange_identification: Connection closed by remote host", ""},
		{"empty", "", ""},

		// Hostile lines: the attacker writes the user name (or other
		// text); the real peer sshd appended is the one to ban.
		{"inject from in failed password", "Failed password for invalid user x from 10.0.0.1 from 192.0.2.7 port 22 ssh2", "192.0.2.7"},
		{"inject full tail in failed password", "Failed password for invalid user x from 10.0.0.1 port 5 ssh2 from 192.0.2.7 port 22 ssh2", "192.0.2.7"},
		{"inject key suffix", "Failed password for x from 10.0.0.1 port 5 ssh2: RSA SHA256:a from 192.0.2.7 port 22 ssh2", "192.0.2.7"},
		{"inject invalid user", "Invalid user evil from 10.0.0.1 port 5 from 192.0.2.7 port 22", "192.0.2.7"},
		{"inject invalid user no port", "Invalid user evil from 10.0.0.1 from 192.0.2.7", "192.0.2.7"},
		{"inject max attempts", "error: maximum authentication attempts exceeded for invalid user a from 10.0.0.1 port 1 ssh2 from 192.0.2.7 port 22 ssh2 [preauth]", "192.0.2.7"},
		{"inject disconnecting", "Disconnecting invalid user a 10.0.0.1 port 1: Too many authentication failures 192.0.2.7 port 22: Too many authentication failures [preauth]", "192.0.2.7"},
		{"inject connection closed", "Connection closed by invalid user a 10.0.0.1 port 1 [preauth] 192.0.2.7 port 22 [preauth]", "192.0.2.7"},
		{"inject pam user", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=x rhost=10.0.0.1", "192.0.2.7"},
		{"inject bad protocol", "Bad protocol version identification 'x' from 10.0.0.1 port 1' from 192.0.2.7 port 22", "192.0.2.7"},
		{"inject negotiate offer", "Unable to negotiate with 192.0.2.7 port 22: no matching cipher found. Their offer: from 10.0.0.1 port 1", "192.0.2.7"},
		{"inject auth fail text", "Received disconnect from 192.0.2.7 port 22:3: from 10.0.0.1 Auth fail [preauth]", "192.0.2.7"},
		{"injected line in accepted", "Accepted password for Failed password for root from 10.0.0.1 port 22 ssh2 from 192.0.2.7 port 22 ssh2", ""},
		{"injected mid-line invalid user", "Accepted publickey for x Invalid user y from 10.0.0.1 from 192.0.2.7 port 22 ssh2: RSA SHA256:a", ""},
		{"host with trailing garbage", "Invalid user x from 10.0.0.1; rm -rf", ""},
		{"bracketed host", "Invalid user x from [10.0.0.1] port 22", ""},
	}
	rank := map[string]int{"normal": 0, "ddos": 1, "aggressive": 2}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			minMode, ok := sshdMinMode[tt.name]
			if !ok {
				minMode = "normal"
			}
			for mode, testers := range modes {
				want := tt.host
				if rank[mode] < rank[minMode] {
					want = ""
				}
				for i, tester := range testers {
					prefilter := i == 0
					// Only a failregex counts here: a correlation's open
					// is pending, and without a pid none completes.
					got, _ := countedHost(tester.Test(&sysban.Message{AppName: "sshd", Text: tt.line}), "sshd")
					if got != want {
						t.Errorf("%s prefilter=%v: %q: host %q, want %q", mode, prefilter, tt.line, got, want)
					}
				}
			}
		})
	}
}

// FuzzSSHDInjection puts arbitrary attacker-chosen text where sshd logs
// attacker-chosen text (user names, version strings, client offers) and
// checks that the only address ever reported is the peer sshd wrote.
func FuzzSSHDInjection(f *testing.F) {
	templates := []string{
		"Failed password for %s from 192.0.2.7 port 22 ssh2",
		"Failed password for invalid user %s from 192.0.2.7 port 22 ssh2",
		"Failed publickey for %s from 192.0.2.7 port 22 ssh2: RSA SHA256:abc",
		"Invalid user %s from 192.0.2.7 port 22",
		"Invalid user %s from 192.0.2.7",
		"User %s from 192.0.2.7 not allowed because not listed in AllowUsers",
		"error: maximum authentication attempts exceeded for invalid user %s from 192.0.2.7 port 22 ssh2 [preauth]",
		"Disconnecting invalid user %s 192.0.2.7 port 22: Too many authentication failures [preauth]",
		"Connection closed by invalid user %s 192.0.2.7 port 22 [preauth]",
		"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=%s",
		"Bad protocol version identification '%s' from 192.0.2.7 port 22",
		"Unable to negotiate with 192.0.2.7 port 22: no matching cipher found. Their offer: %s",
		"Received disconnect from 192.0.2.7 port 22:3: %s: Auth fail [preauth]",
	}
	for _, s := range []string{
		"x from 10.0.0.1",
		"x from 10.0.0.1 port 5 ssh2",
		"x 10.0.0.1 port 1 [preauth]",
		"x 10.0.0.1 port 1: Too many authentication failures",
		"x' from 10.0.0.1 port 1",
		"root rhost=10.0.0.1",
		"",
	} {
		f.Add(s)
	}
	// Aggressive mode holds every sshd pattern.
	tester, err := pipeline.NewTester([]pipeline.FilterSpec{pipeline.BuiltinFilters()["sshd"]}, pipeline.TesterOptions{Mode: "aggressive"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, user string) {
		for _, tmpl := range templates {
			line := strings.Replace(tmpl, "%s", user, 1)
			ms := tester.Test(&sysban.Message{AppName: "sshd", ProcID: "1", Text: line})
			for _, m := range ms {
				if m.Host != "192.0.2.7" {
					t.Fatalf("%q: host %q, want 192.0.2.7", line, m.Host)
				}
			}
			// '.' does not cross lines, so a newline in the user name
			// may hide the line (sshd escapes it anyway); anything
			// else must still be caught.
			if len(ms) == 0 && !strings.Contains(user, "\n") {
				t.Fatalf("%q: no match", line)
			}
		}
	})
}
