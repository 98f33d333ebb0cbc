package pipeline

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/filters"
	"github.com/sysban/sysban/receiver"
)

// attemptLine is one log line of an attempt scenario: its program, its
// text, and the seconds since the scenario's start.
type attemptLine struct {
	prog string
	text string
	at   int
}

// failuresOf runs lines through a Tester holding the built-in filter alone
// (on a clock following the lines) and returns the failures counted per
// host.
func failuresOf(t *testing.T, filter string, lines []attemptLine) map[string]int {
	t.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	tester, err := NewTester([]FilterSpec{BuiltinFilters()[filter]}, TesterOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, l := range lines {
		now = start.Add(time.Duration(l.at) * time.Second)
		for _, m := range tester.Test(&sysban.Message{Hostname: "h", AppName: l.prog, Text: l.text}) {
			if m.Ignored || m.Pending || m.Repeat {
				continue
			}
			got[m.Host] += max(m.Count, 1)
		}
	}
	return got
}

// sshd's lines, as OpenSSH 9.2 with PAM prints them (filters/testdata/live/sshd.log).
func sshPAM(host string) string {
	return "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=" + host + "  user=bob"
}
func sshFailed(host string, port int) string {
	return fmt.Sprintf("Failed password for bob from %s port %d ssh2", host, port)
}
func sshClosed(host string, port int) string {
	return fmt.Sprintf("Connection closed by authenticating user bob %s port %d [preauth]", host, port)
}

// TestAttemptsSSHD: one attempt, one failure, whatever sshd and PAM print.
func TestAttemptsSSHD(t *testing.T) {
	const a, b = "192.0.2.7", "198.51.100.9"
	tests := []struct {
		name  string
		lines []attemptLine
		want  map[string]int
	}{
		{"password: pam_unix, Failed, close", []attemptLine{
			{"sshd", sshPAM(a), 0}, {"sshd", sshFailed(a, 1), 0}, {"sshd", sshClosed(a, 1), 0},
		}, map[string]int{a: 1}},
		{"three passwords on one connection, then the close", []attemptLine{
			{"sshd", sshPAM(a), 0}, {"sshd", sshFailed(a, 1), 0},
			{"sshd", sshPAM(a), 2}, {"sshd", sshFailed(a, 1), 2},
			{"sshd", sshPAM(a), 4}, {"sshd", sshFailed(a, 1), 4},
			{"sshd", sshClosed(a, 1), 4},
		}, map[string]int{a: 3}},
		{"keyboard-interactive: PAM child's line and sshd's", []attemptLine{
			{"sshd", sshPAM(a), 0}, {"sshd", "error: PAM: Authentication failure for bob from " + a, 0}, {"sshd", sshClosed(a, 1), 0},
		}, map[string]int{a: 1}},
		{"invalid user: four lines", []attemptLine{
			{"sshd", "Invalid user nosuch from " + a + " port 5", 0},
			{"sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=" + a + " ", 0},
			{"sshd", "Failed password for invalid user nosuch from " + a + " port 5 ssh2", 0},
		}, map[string]int{a: 1}},
		{"AllowUsers refusal", []attemptLine{
			{"sshd", "User daemon from " + a + " not allowed because not listed in AllowUsers", 0},
			{"sshd", sshPAM(a), 0}, {"sshd", "Failed password for invalid user daemon from " + a + " port 5 ssh2", 0},
			{"sshd", sshClosed(a, 5), 0},
		}, map[string]int{a: 1}},
		{"publickey only: the close is the attempt", []attemptLine{
			{"sshd", sshClosed(a, 1), 0}, {"sshd", sshClosed(a, 2), 1},
		}, map[string]int{a: 2}},
		{"a success neither erases nor counts", []attemptLine{
			{"sshd", sshPAM(a), 0}, {"sshd", sshFailed(a, 1), 0},
			{"sshd", "Accepted keyboard-interactive/pam for bob from " + a + " port 1 ssh2", 0},
		}, map[string]int{a: 1}},
		{"two sessions of one address interleaved", []attemptLine{
			{"sshd", sshPAM(a), 0}, {"sshd", sshPAM(a), 0},
			{"sshd", sshFailed(a, 1), 0}, {"sshd", sshFailed(a, 2), 0},
			{"sshd", sshClosed(a, 1), 0}, {"sshd", sshClosed(a, 2), 0},
		}, map[string]int{a: 2}},
		{"addresses do not meet", []attemptLine{
			{"sshd", sshPAM(a), 0}, {"sshd", sshFailed(b, 1), 0}, {"sshd", sshFailed(a, 1), 0}, {"sshd", sshPAM(b), 0},
		}, map[string]int{a: 1, b: 1}},
		{"an attempt closes after its window", []attemptLine{
			{"sshd", sshPAM(a), 0}, {"sshd", sshFailed(a, 1), 30},
		}, map[string]int{a: 2}},
		{"PAM n more: the first plus n", []attemptLine{
			{"sshd", sshPAM(a), 0},
			{"sshd", "PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=" + a + "  user=bob", 9},
		}, map[string]int{a: 6}},
		{"older OpenSSH: Failed lines alone", []attemptLine{
			{"sshd", sshFailed(a, 1), 0}, {"sshd", sshFailed(a, 1), 1}, {"sshd", sshFailed(a, 2), 2},
		}, map[string]int{a: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failuresOf(t, "sshd", tt.lines); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("failures %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAttemptsDovecot: Dovecot's lines per attempt with auth_verbose yes
// and no, a passwd-file before PAM.
func TestAttemptsDovecot(t *testing.T) {
	const a = "192.0.2.7"
	pf := func(outcome string) attemptLine {
		return attemptLine{"dovecot", "auth: passwd-file(bob," + a + ",<S1>): " + outcome, 0}
	}
	pu := attemptLine{"auth", "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=" + a + "  user=bob", 0}
	pam := attemptLine{"dovecot", "auth-worker(42): conn unix:auth-worker (pid=40,uid=106): auth-worker<1>: pam(bob," + a + ",<S1>): pam_authenticate() failed: Authentication failure (Password mismatch?)", 0}
	end := func(n int) attemptLine {
		return attemptLine{"dovecot", fmt.Sprintf("imap-login: Disconnected: Aborted login by logging out (auth failed, %d attempts in 4 secs): user=<bob>, method=PLAIN, rip=%s, lip=192.0.2.1, session=<S1>", n, a), 0}
	}
	login := attemptLine{"dovecot", "imap-login: Login: user=<bob>, method=PLAIN, rip=" + a + ", lip=192.0.2.1, mpid=9, session=<S1>", 0}
	at := func(l attemptLine, s int) attemptLine { l.at = s; return l }
	tests := []struct {
		name  string
		lines []attemptLine
		want  int
	}{
		{"verbose: passwd-file mismatch, pam_unix, pam, end", []attemptLine{pf("Password mismatch"), pu, pam, end(1)}, 1},
		{"verbose: PAM user (passwd-file does not know it)", []attemptLine{pf("unknown user"), pu, pam, end(1)}, 1},
		{"verbose: a PAM user's success counts nothing", []attemptLine{pf("unknown user"), login}, 0},
		{"verbose: three passwords on one connection", []attemptLine{
			pf("Password mismatch"), pu, pam,
			at(pf("Password mismatch"), 2), at(pu, 2), at(pam, 2),
			at(pf("Password mismatch"), 4), at(pu, 4), at(pam, 4), at(end(3), 5),
		}, 3},
		{"not verbose: pam_unix and the end", []attemptLine{pu, end(1)}, 1},
		{"not verbose, passwd-file only: the end is the only line", []attemptLine{end(1)}, 1},
		{"not verbose, passwd-file only: the end counts its N", []attemptLine{end(3)}, 3},
		{"not verbose: three on one connection", []attemptLine{pu, at(pu, 2), at(pu, 4), at(end(3), 5)}, 3},
		{"the end counts only what nothing counted", []attemptLine{pu, at(end(3), 5)}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failuresOf(t, "dovecot", tt.lines)[a]; got != tt.want {
				t.Errorf("failures %d, want %d", got, tt.want)
			}
		})
	}
}

// ovpnFrom is the line an OpenVPN 2.4-2.6 server prints for each packet
// it drops before the handshake (ssl_pkt.c), what the packet lacked first.
func ovpnFrom(what, addr string, port int) string {
	family := "AF_INET"
	if strings.Contains(addr, ":") {
		family = "AF_INET6"
	}
	return fmt.Sprintf("TLS Error: %s from [%s]%s:%d", what, family, addr, port)
}

// TestAttemptsOpenVPNResends: a UDP client with a wrong tls-crypt or
// tls-auth key resends its first packet (after 2, 4, 8, 16 s) until its
// 60 s handshake window closes, and the server logs each copy: one
// attempt, one failure. A new source port is a new attempt, the same port
// after the window too, and two addresses never share one.
func TestAttemptsOpenVPNResends(t *testing.T) {
	const a, b, v6 = "192.0.2.7", "198.51.100.9", "2001:db8::7"
	const crypt, auth = "tls-crypt unwrapping failed", "incoming packet authentication failed"
	resends := func(what, addr string, port, from int) []attemptLine {
		var out []attemptLine
		for _, at := range []int{0, 2, 6, 14, 30} {
			out = append(out, attemptLine{"openvpn", "tls-crypt unwrap error: packet authentication failed", from + at},
				attemptLine{"openvpn", ovpnFrom(what, addr, port), from + at})
		}
		return out
	}
	tests := []struct {
		name  string
		lines []attemptLine
		want  map[string]int
	}{
		{"wrong tls-crypt key: five copies of the first packet", resends(crypt, a, 51236, 0), map[string]int{a: 1}},
		{"wrong tls-auth key: five copies", resends(auth, a, 51236, 0), map[string]int{a: 1}},
		{"IPv6 client", resends(crypt, v6, 51236, 0), map[string]int{v6: 1}},
		{"no tls-auth at all: the HMAC is missing", resends("cannot locate HMAC in incoming packet", a, 1194, 0), map[string]int{a: 1}},
		{"tls-crypt-v2 server, unwrapped client", resends("could not determine wrapping", a, 40000, 0), map[string]int{a: 1}},
		{"client restarts after its window: a new port", append(resends(crypt, a, 51236, 0), resends(crypt, a, 51237, 65)...), map[string]int{a: 2}},
		{"client restarts on the same port (--lport): after the window it counts again",
			append(resends(crypt, a, 1194, 0), resends(crypt, a, 1194, 65)...), map[string]int{a: 2}},
		{"two clients behind one address, interleaved", append(resends(crypt, a, 40001, 0), resends(crypt, a, 40002, 1)...), map[string]int{a: 2}},
		{"two addresses on the same port at once", append(resends(crypt, a, 40001, 0), resends(crypt, b, 40001, 0)...), map[string]int{a: 1, b: 1}},
		{"a new port per packet: every packet counts", []attemptLine{
			{"openvpn", ovpnFrom(crypt, a, 1), 0}, {"openvpn", ovpnFrom(crypt, a, 2), 0}, {"openvpn", ovpnFrom(crypt, a, 3), 0},
			{"openvpn", ovpnFrom(auth, a, 4), 1}, {"openvpn", ovpnFrom(auth, a, 5), 1},
		}, map[string]int{a: 5}},
		{"one port sending on: once per 60 s window, not extended by copies", func() []attemptLine {
			var out []attemptLine
			for at := 0; at <= 130; at += 5 {
				out = append(out, attemptLine{"openvpn", ovpnFrom(crypt, a, 999), at})
			}
			return out
		}(), map[string]int{a: 3}},
		{"multi-instance prefix (a TCP server names the peer first)", []attemptLine{
			{"openvpn", "192.0.2.7:38071 " + ovpnFrom(crypt, a, 38071), 0}, {"openvpn", "192.0.2.7:38071 " + ovpnFrom(crypt, a, 38071), 2},
		}, map[string]int{a: 1}},
		{"unknown opcode is a probe, not a resend: each counts", []attemptLine{
			{"openvpn", ovpnFrom("unknown opcode received", a, 7) + " op=9", 0}, {"openvpn", ovpnFrom("unknown opcode received", a, 7) + " op=9", 1},
		}, map[string]int{a: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := failuresOf(t, "openvpn", tc.lines); !maps.Equal(got, tc.want) {
				t.Errorf("failures = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAttemptRulesErrors: rules that cannot work are refused.
func TestAttemptRulesErrors(t *testing.T) {
	for _, rules := range []filters.AttemptRules{
		{},
		{Lines: []string{`Failed`}},
		{Lines: []string{`^Failed .* from <HOST>`}},
		{Ends: []string{`^(`}},
		{Lines: []string{`^x`}, Window: -time.Second},
		{Lines: make([]string, 65)},
		{Resends: []string{`^x (\d+)$`}},
		{Resends: []string{`x (?P<session>\d+)$`}},
		{Resends: []string{`^x (?P<session>\d+)$`}, ResendWindow: -time.Second},
	} {
		spec := FilterSpec{Name: "f", Programs: []string{"p"}, FailRegex: []string{`^x <HOST>$`}, Attempts: &rules}
		if _, err := CompileFilter(spec); err == nil {
			t.Errorf("%+v: compiled", rules)
		}
	}
}

// liveAttempt is one attempt block of a live capture.
var liveAttempt = regexp.MustCompile(`^## attempt (.*) from (\S+), jail (\S*): want (\d+),`)

// TestLiveCaptures replays what the real daemons printed in the live e2e
// (filters/testdata/live/*.log) and checks, for the filters that account
// attempts, that each attempt block counts the failures it is: one per
// failed attempt, none for a success.
func TestLiveCaptures(t *testing.T) {
	jails := map[string]struct{ filter, mode string }{
		"sshd": {"sshd", ""}, "dovecot": {"dovecot", ""}, "mysqld": {"mysqld", ""}, "openvpn": {"openvpn", ""}, "proftpd": {"proftpd", ""},
	}
	paths, _ := filepath.Glob("filters/testdata/live/*.log")
	if len(paths) == 0 {
		t.Skip("no live captures in filters/testdata/live")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			testers := map[string]*Tester{}
			var (
				jail, family string
				want, got    int
				checked      int
			)
			flush := func() {
				if _, ok := jails[jail]; ok && family != "" {
					checked++
					if got != want {
						t.Errorf("%s, attempt %s: %d failures, want %d", path, family, got, want)
					}
				}
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := sc.Text()
				if m := liveAttempt.FindStringSubmatch(line); m != nil {
					flush()
					family, jail, got = m[1]+" from "+m[2], m[3], 0
					fmt.Sscan(m[4], &want)
					continue
				}
				j, ok := jails[jail]
				if strings.HasPrefix(line, "#") || !ok {
					continue
				}
				tester := testers[jail]
				if tester == nil {
					if tester, err = NewTester([]FilterSpec{BuiltinFilters()[j.filter]}, TesterOptions{Mode: j.mode}); err != nil {
						t.Fatal(err)
					}
					testers[jail] = tester
				}
				msg := new(sysban.Message)
				if err := receiver.ParseFileLine([]byte(line), time.Now(), msg); err != nil {
					t.Fatalf("%s: %q: %v", path, line, err)
				}
				for _, m := range tester.Test(msg) {
					if !m.Ignored && !m.Pending && !m.Repeat {
						got += max(m.Count, 1)
					}
				}
			}
			flush()
			if _, ok := jails[strings.TrimSuffix(filepath.Base(path), ".log")]; ok && checked == 0 {
				t.Errorf("%s: no attempt checked", path)
			}
		})
	}
}

// FuzzAttempts drives the sshd filter's attempt accounting with arbitrary
// interleavings of its lines from three addresses and checks the bounds
// the accounting promises: per address, never fewer failures than lines of
// its most frequent kind (each attempt holds at most one line of a kind),
// less, for a provisional kind, one per success line and the one attempt
// still held at the end; never more than its failure lines plus what its
// end lines claim.
func FuzzAttempts(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0, 1, 5})
	f.Add([]byte{0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 200, 9})
	hosts := []string{"192.0.2.1", "192.0.2.2", "2001:db8::3"}
	menu := []struct {
		text func(h string, n int) string
	}{
		{func(h string, _ int) string { return sshPAM(h) }},
		{func(h string, n int) string { return sshFailed(h, n) }},
		{func(h string, _ int) string { return "error: PAM: Authentication failure for bob from " + h }},
		{func(h string, n int) string { return fmt.Sprintf("Invalid user x from %s port %d", h, n) }},
		{func(h string, _ int) string {
			return "User x from " + h + " not allowed because not listed in AllowUsers"
		}},
		{func(h string, n int) string { return sshClosed(h, n) }},
		{func(h string, n int) string {
			return fmt.Sprintf("PAM %d more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s", n%7, h)
		}},
		{func(h string, n int) string {
			return fmt.Sprintf("Accepted password for bob from %s port %d ssh2", h, n)
		}},
	}
	// kindOf is the index of the sshd rules' Lines pattern text matches
	// (its kind of line), or -1 for an end or a success: read from the
	// rules, so the bound follows them when lines are added.
	var kinds []*regexp.Regexp
	for _, l := range BuiltinFilters()["sshd"].Attempts.Lines {
		kinds = append(kinds, regexp.MustCompile(l))
	}
	kindOf := func(text string) int {
		return slices.IndexFunc(kinds, func(re *regexp.Regexp) bool { return re.MatchString(text) })
	}
	var provisional []*regexp.Regexp
	for _, l := range BuiltinFilters()["sshd"].Attempts.Provisional {
		provisional = append(provisional, regexp.MustCompile(l))
	}
	isProvisional := func(text string) bool {
		return slices.ContainsFunc(provisional, func(re *regexp.Regexp) bool { return re.MatchString(text) })
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 400 {
			return
		}
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		now := start
		tester, err := NewTester([]FilterSpec{BuiltinFilters()["sshd"]}, TesterOptions{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		type tally struct {
			failures, lines, claimed, successes int
			kinds                               map[int]int // lines per kind
			provisional                         map[int]bool
		}
		per := map[string]*tally{}
		for i, b := range script {
			item := menu[int(b)%len(menu)]
			h := hosts[int(b>>3)%len(hosts)]
			now = now.Add(time.Duration(b>>5) * 2 * time.Second)
			text := item.text(h, i)
			tl := per[h]
			if tl == nil {
				tl = &tally{kinds: map[int]int{}, provisional: map[int]bool{}}
				per[h] = tl
			}
			if k := kindOf(text); k >= 0 {
				tl.kinds[k]++
				tl.provisional[k] = isProvisional(text)
			}
			if strings.HasPrefix(text, "Accepted ") {
				tl.successes++
			}
			tl.lines++
			if strings.HasPrefix(text, "PAM ") {
				tl.claimed += int(text[4]-'0') + 1
			}
			for _, m := range tester.Test(&sysban.Message{Hostname: "h", AppName: "sshd", Text: text}) {
				if !m.Ignored && !m.Pending && !m.Repeat {
					tl.failures += max(m.Count, 1)
				}
			}
		}
		for h, tl := range per {
			most := 0
			for k, n := range tl.kinds {
				if tl.provisional[k] {
					n -= tl.successes + 1
				}
				most = max(most, n)
			}
			if tl.failures < most || tl.failures > tl.lines+tl.claimed {
				t.Errorf("%s: %d failures for %+v", h, tl.failures, *tl)
			}
		}
	})
}

// TestAttemptHeld: an attempt a provisional line opens counts nothing
// until its verdict, its address's next attempt, a session end or, past
// its window, the next line; a success drops it, erasing nothing counted.
func TestAttemptHeld(t *testing.T) {
	const pam, failed, pamSSS = 0, 1, 2
	t0 := time.Unix(1000, 0)
	type step struct {
		op   string // "pam", "failed", "sss", "ok", "end"
		at   time.Duration
		want int
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"verdict counts the held attempt", []step{{"pam", 0, 0}, {"sss", 0, 0}, {"failed", time.Second, 1}}},
		{"success drops it", []step{{"pam", 0, 0}, {"ok", time.Second, 0}, {"failed", 2 * time.Second, 1}}},
		{"next attempt releases it", []step{{"pam", 0, 0}, {"pam", time.Second, 1}, {"ok", 2 * time.Second, 0}, {"failed", 3 * time.Second, 0}}},
		{"success erases nothing counted", []step{{"pam", 0, 0}, {"pam", 0, 1}, {"pam", 0, 1}, {"ok", time.Second, 0}, {"failed", 2 * time.Second, 0}}},
		{"end counts held and uncounted", []step{{"pam", 0, 0}, {"end", time.Second, 1}}},
		{"past its window, the next line counts it", []step{{"pam", 0, 0}, {"failed", time.Minute, 2}}},
		{"success after the window drops nothing", []step{{"pam", 0, 0}, {"ok", time.Minute, 0}, {"failed", time.Minute, 2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a attemptAcct
			for i, s := range c.steps {
				now := t0.Add(s.at)
				got := 0
				switch s.op {
				case "pam":
					got = a.line(pam, true, now, DefaultAttemptWindow)
				case "sss":
					got = a.line(pamSSS, true, now, DefaultAttemptWindow)
				case "failed":
					got = a.line(failed, false, now, DefaultAttemptWindow)
				case "ok":
					a.succeed(now)
				case "end":
					got = a.end(1)
				}
				if got != s.want {
					t.Fatalf("step %d %s: counted %d, want %d", i, s.op, got, s.want)
				}
			}
		})
	}
}

// FuzzAttemptsResends holds the openvpn filter's resend accounting to its
// model over arbitrary interleavings of three addresses, four source
// ports and the resent lines (with the probe line that is no resend): a
// resend line counts exactly when it is its address and port's first, or
// comes DefaultResendWindow or more after the last one that counted; an
// unknown opcode line always counts.
func FuzzAttemptsResends(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0x40, 0x80, 0xc0, 1, 2, 3, 0xff, 0xfe})
	f.Add([]byte{5, 0x25, 0x45, 0x65, 0x85, 0xa5, 0xc5, 0xe5, 5})
	hosts := []string{"192.0.2.1", "192.0.2.2", "2001:db8::3"}
	whats := []string{"tls-crypt unwrapping failed", "incoming packet authentication failed", "cannot locate HMAC in incoming packet", "unknown opcode received"}
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 300 {
			return
		}
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		now := start
		tester, err := NewTester([]FilterSpec{BuiltinFilters()["openvpn"]}, TesterOptions{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]time.Time{} // session -> when its last counted line came
		for _, b := range script {
			h := hosts[int(b)%len(hosts)]
			what := whats[int(b>>2)%len(whats)]
			port := 40000 + int(b>>4)%4
			now = now.Add(time.Duration(b>>6) * 15 * time.Second)
			text := ovpnFrom(what, h, port)
			resend := !strings.HasPrefix(what, "unknown")
			if !resend {
				text += " op=9"
			}
			counted := 0
			for _, m := range tester.Test(&sysban.Message{Hostname: "h", AppName: "openvpn", Text: text}) {
				if m.Host != h {
					t.Fatalf("%q: counted for %s", text, m.Host)
				}
				if !m.Ignored && !m.Pending && !m.Repeat {
					counted += max(m.Count, 1)
				}
			}
			want := 1
			if resend {
				session := fmt.Sprint(h, port)
				if l, ok := last[session]; ok && now.Sub(l) < DefaultResendWindow {
					want = 0
				} else {
					last[session] = now
				}
			}
			if counted != want {
				t.Fatalf("at %v: %q counted %d, want %d", now.Sub(start), text, counted, want)
			}
		}
	})
}
