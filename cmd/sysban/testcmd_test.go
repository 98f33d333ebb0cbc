package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testClock is the wall clock of `sysban test` in these tests: it fixes the
// year of BSD time stamps (2026) and makes elapsed time zero.
var testClock = time.Date(2026, 11, 21, 19, 0, 0, 0, time.UTC)

// sysbanTest runs `sysban test args...` with stdin and returns the exit
// code, stdout and stderr.
func sysbanTest(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := &testCmd{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		clock: func() time.Time { return testClock }}
	code := c.run(args)
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A CentOS 5 host's /var/log/secure lines (OpenSSH 4.3) plus a success, another daemon and a
// hostile user name: 5 failures, 4 addresses or hostnames.
const secureLog = `Jun  9 03:35:33 kvm-vpn sshd[1709]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=jumbotrace.cmu.ac.th user=root
Jun  9 14:20:40 kvm-vpn sshd[2972]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=58.83.131.67
Jun  9 14:20:43 kvm-vpn sshd[2974]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=58.83.131.67
Jun  9 17:45:49 kvm-vpn sshd[3391]: PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=116.10.191.188 user=root
Jun  9 17:50:00 kvm-vpn sshd[3400]: Accepted password for bob from 192.0.2.50 port 22 ssh2
Jun 10 01:05:26 kvm-vpn crond[4286]: (root) CMD (run-parts /etc/cron.hourly)
Jun 10 02:00:00 kvm-vpn sshd[5000]: Failed password for invalid user x from 10.0.0.1 from 192.0.2.7 port 22 ssh2
`

func TestTestFileForm(t *testing.T) {
	log := writeFile(t, t.TempDir(), "secure", secureLog)
	code, stdout, stderr := sysbanTest(t, "", "sshd", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"Lines: 7 read, 5 matched, 0 ignored, 0 pending, 2 missed\n",
		"Addresses found: 4\n",
		"  jumbotrace.cmu.ac.th  1 failure(s)\n      2026-06-09 03:35:33 +0000  sshd #",
		"  58.83.131.67  2 failure(s)\n      2026-06-09 14:20:40 +0000  sshd #",
		"  192.0.2.7  1 failure(s)\n",
		"         7  syslog file (Mmm dd hh:mm:ss host prog: msg)\n",
		"Missed lines are not shown",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "10.0.0.1") {
		t.Errorf("the attacker's user name was taken for the host:\n%s", stdout)
	}

	// --print-all-missed and --print-all-matched print exactly those lines.
	_, stdout, _ = sysbanTest(t, "", "sshd", log, "--print-all-missed")
	if n := strings.Count(stdout, "missed  line "); n != 2 || !strings.Contains(stdout, "missed  line 6 | Jun 10 01:05:26 kvm-vpn crond[4286]: (root) CMD") {
		t.Errorf("--print-all-missed printed %d lines:\n%s", n, stdout)
	}
	_, stdout, _ = sysbanTest(t, "", "--print-all-matched", "sshd", log)
	if n := strings.Count(stdout, "matched line "); n != 5 || !strings.Contains(stdout, "matched line 7 sshd #1 host 192.0.2.7 | Jun 10 02:00:00") {
		t.Errorf("--print-all-matched printed %d lines:\n%s", n, stdout)
	}
}

// A FILTERFILE with known patterns: the per-pattern and ignoreregex counts
// are exact.
func TestTestFilterFile(t *testing.T) {
	dir := t.TempDir()
	filter := writeFile(t, dir, "myapp.yaml", `# a user filter, as under filters.myapp in the config
programs: [myapp]
failregex:
  - '^login failed for \S+ from <HOST>$'
  - '^too many attempts from <HOST>$'
ignoreregex:
  - '^login failed for \S+ from 192\.0\.2\.99$'
`)
	log := writeFile(t, dir, "app.log", `Nov 21 10:00:00 h myapp[1]: login failed for bob from 198.51.100.7
Nov 21 10:00:01 h myapp[1]: login failed for bob from 192.0.2.99
Nov 21 10:00:02 h myapp[1]: login failed for bob from 198.51.100.7
Nov 21 10:00:03 h myapp[1]: too many attempts from 198.51.100.8
Nov 21 10:00:04 h myapp[1]: login ok for bob from 198.51.100.7
Nov 21 10:00:05 h otherapp[1]: login failed for bob from 198.51.100.9
`)
	code, stdout, stderr := sysbanTest(t, "", filter, log, "--print-all-ignored")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"sysban test: filter myapp from " + filter,
		"  myapp: 3 matched, 1 ignored, 0 pending\n",
		`      1)        2  ^login failed for \S+ from <HOST>$` + "\n",
		`      2)        1  ^too many attempts from <HOST>$` + "\n",
		`    ignoreregex 1)        1  ^login failed for \S+ from 192\.0\.2\.99$` + "\n",
		"  198.51.100.7  2 failure(s)\n",
		"ignored line 2 myapp #1 ignoreregex #1 | Nov 21 10:00:01",
		"Lines: 6 read, 3 matched, 1 ignored, 0 pending, 2 missed\n",
		"Addresses found: 2\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	// A file name that is no valid filter name is made one.
	odd := writeFile(t, dir, "My.App Filter.yml", "programs: [myapp]\nfailregex: ['^login failed for \\S+ from <HOST>$']\n")
	if code, stdout, stderr := sysbanTest(t, "", odd, log); code != 0 || !strings.Contains(stdout, "filter my-app-filter from") || !strings.Contains(stdout, "Lines: 6 read, 3 matched, 0 ignored") {
		t.Errorf("oddly named filter file: exit %d\n%s%s", code, stdout, stderr)
	}

	// name: overrides the file name.
	named := writeFile(t, dir, "f.yml", "name: custom\nprograms: [myapp]\nfailregex: ['^login failed for \\S+ from <HOST>$']\n")
	if code, stdout, stderr := sysbanTest(t, "", named, log); code != 0 || !strings.Contains(stdout, "filter custom from") || !strings.Contains(stdout, "Lines: 6 read, 3 matched, 0 ignored") {
		t.Errorf("named filter file: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestTestBadUsage(t *testing.T) {
	dir := t.TempDir()
	log := writeFile(t, dir, "log", "x\n")
	noHost := writeFile(t, dir, "nohost.yaml", "programs: [a]\nfailregex: ['^failed from \\S+$']\n")
	unknownKey := writeFile(t, dir, "typo.yaml", "programs: [a]\nfailregexp: ['^x <HOST>$']\n")
	notYAML := writeFile(t, dir, "bad.yaml", "programs: [a\n")
	badConfig := writeFile(t, dir, "sysban.yaml", "defaults:\n  verdict: accept\n")
	tests := []struct {
		args   []string
		stderr string
	}{
		{nil, "got 0 arguments"},
		{[]string{"sshd"}, "got 1 arguments"},
		{[]string{"sshd", log, "extra"}, "got 3 arguments"},
		{[]string{"--bogus", "sshd", log}, "flag provided but not defined: -bogus"},
		{[]string{"nosuchfilter", log}, `"nosuchfilter" is no filter, jail or filter file; known: all, `},
		{[]string{"recidive", log}, `jail recidive counts sysban's own bans (filter recidive), not log lines`},
		{[]string{"sshd", filepath.Join(dir, "missing.log")}, "no such file"},
		{[]string{"sshd", dir}, "is a directory"},
		{[]string{filepath.Join(dir, "missing.yaml"), log}, "filter file: open"},
		{[]string{noHost, log}, "missing <HOST>"},
		{[]string{unknownKey, log}, "failregexp"},
		{[]string{notYAML, log}, "filter file " + notYAML},
		{[]string{"--mode", "nosuchmode", "sshd", log}, "nosuchmode"},
		{[]string{"--config", badConfig, "sshd", log}, "defaults.verdict"},
	}
	for _, tt := range tests {
		code, stdout, stderr := sysbanTest(t, "", tt.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("sysban test %q = %d\nstdout: %s\nstderr: %s\nwant 2 and stderr with %q", tt.args, code, stdout, stderr, tt.stderr)
		}
	}
}

// TestTestViaRun goes through the command table and the real os.Stdin.
func TestTestViaRun(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "stdin", secureLog)
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"test", "sshd", "-"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Lines: 7 read, 5 matched") {
		t.Errorf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "test FILTER|all LOGFILE   run filters") {
		t.Errorf("usage lacks the test command:\n%s", stdout.String())
	}
	stderr.Reset()
	if code := run([]string{"test", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "usage: sysban test [flags] FILTER|JAIL|FILTERFILE|all LOGFILE|-") {
		t.Errorf("test -h = %d:\n%s", code, stderr.String())
	}
}

func TestTestLongLinesAndGzip(t *testing.T) {
	dir := t.TempDir()
	long := "Nov 21 10:00:00 h sshd[1]: Failed password for " + strings.Repeat("u", 100<<10) + " from 192.0.2.5 port 22 ssh2\n"
	huge := "Nov 21 10:00:01 h sshd[1]: " + strings.Repeat("x", maxLineLen+10) + "\n"
	last := "Nov 21 10:00:02 h sshd[1]: Failed password for root from 192.0.2.6 port 22 ssh2\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(long + huge + last))
	zw.Close()
	path := writeFile(t, dir, "secure.1.gz", gz.String())
	code, stdout, stderr := sysbanTest(t, "", "sshd", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := fmt.Sprintf("Lines: 3 read, 2 matched, 0 ignored, 0 pending, 0 missed, 1 skipped (longer than %d bytes)\n", maxLineLen)
	if !strings.Contains(stdout, want) || !strings.Contains(stdout, "192.0.2.5") || !strings.Contains(stdout, "192.0.2.6") {
		t.Errorf("want %q and both hosts:\n%s", want, stdout)
	}
}

// TestTestFixtures runs `sysban test --json FILTER` over every annotated
// sample of pipeline/filters/testdata (the annotations stripped) and checks each
// line's verdict against its annotation: the command sees the file exactly
// as the pipeline's own fixture test does, through ParseFileLine.
func TestTestFixtures(t *testing.T) {
	files, _ := filepath.Glob("../../pipeline/filters/testdata/*.log")
	if len(files) == 0 {
		t.Skip("no fixtures in pipeline/filters/testdata")
	}
	dir := t.TempDir()
	for _, file := range files {
		base := strings.TrimSuffix(filepath.Base(file), ".log")
		filter, mode, _ := strings.Cut(base, ".")
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var lines, notes []string
			note := ""
			for _, l := range strings.Split(string(data), "\n") {
				switch {
				case strings.HasPrefix(l, "## mode:"):
					mode = strings.TrimSpace(strings.TrimPrefix(l, "## mode:"))
				case strings.HasPrefix(l, "#"):
					if !strings.HasPrefix(l, "##") {
						note = strings.TrimSpace(strings.TrimPrefix(l, "#"))
					}
				case strings.TrimSpace(l) == "":
				default:
					lines = append(lines, l)
					notes = append(notes, note)
					note = ""
				}
			}
			log := writeFile(t, dir, base, strings.Join(lines, "\n")+"\n")
			args := []string{"--json", filter, log}
			if mode != "" {
				args = append(args, "--mode", mode)
			}
			code, stdout, stderr := sysbanTest(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := decodeJSONLines(t, stdout)
			if len(got) != len(lines) {
				t.Fatalf("%d objects for %d lines", len(got), len(lines))
			}
			for i, g := range got {
				verdict, host, _ := strings.Cut(notes[i], " ")
				host, times, _ := strings.Cut(host, " x")
				failures := 1
				if times != "" {
					failures, _ = strconv.Atoi(times)
				}
				ok := false
				switch verdict {
				case "match":
					ok = g.Matched && str(g.Host) == host && g.Failures == failures
				case "same":
					ok = !g.Matched && g.Same && str(g.Host) == host
				case "miss":
					ok = !g.Matched && !g.Ignored && !g.Pending
				case "ignore":
					ok = !g.Matched && g.Ignored
				case "pending":
					ok = !g.Matched && g.Pending
				default:
					t.Fatalf("line %d: unknown annotation %q", i+1, notes[i])
				}
				if !ok {
					t.Errorf("line %d: want %q, got matched=%v host=%s ignored=%v pending=%v\n  %s",
						i+1, notes[i], g.Matched, str(g.Host), g.Ignored, g.Pending, lines[i])
				}
			}
		})
	}
}

// BenchmarkTestAll measures `sysban test all` over a generated mixed log of
// the daemons the built-in filters read (most lines are not failures, as in
// a real auth.log/maillog), in the three header shapes.
func BenchmarkTestAll(b *testing.B) {
	const n = 200000
	path := filepath.Join(b.TempDir(), "mixed.log")
	writeMixedLog(b, path, n)
	b.ResetTimer()
	for b.Loop() {
		c := &testCmd{stdout: discard{}, stderr: discard{}, clock: time.Now}
		if code := c.run([]string{"all", path}); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// mixedTemplates are message shapes by program; %d is replaced by a counter
// so addresses and ids vary.
var mixedTemplates = []struct{ prog, text string }{
	{"sshd", "Failed password for invalid user admin%d from 192.0.2.%d port 52144 ssh2"},
	{"sshd", "Accepted publickey for deploy from 198.51.100.%d port 40%d ssh2: ED25519 SHA256:abc"},
	{"sshd", "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=%d%d)"},
	{"sshd-session", "Connection closed by authenticating user root 203.0.113.%d port 5%d [preauth]"},
	{"postfix/smtpd", "warning: unknown[203.0.113.%d]: SASL LOGIN authentication failed: authentication failure%.0d"},
	{"postfix/smtpd", "connect from mail%d.example.org[198.51.100.%d]"},
	{"postfix/qmgr", "4F1A2B3C%d: from=<a@example.org>, size=%d, nrcpt=1 (queue active)"},
	{"dovecot", "imap-login: Login: user=<bob%d>, method=PLAIN, rip=198.51.100.%d, lip=10.0.0.1, mpid=1, TLS"},
	{"dovecot", "pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<a%d>, method=PLAIN, rip=::ffff:192.0.2.%d, lip=::ffff:10.0.0.1"},
	{"sendmail", "s0QBU1Ir%06d: from=<a@example.org>, size=%d, class=0, nrcpts=1"},
	{"named", "client @0x7f 192.0.2.%d#53%d (example.com): query (cache) 'example.com/ANY/IN' denied"},
	{"CRON", "pam_unix(cron:session): session closed for user root%.0d%.0d"},
	{"systemd", "Started Session %d of User deploy%.0d."},
	{"kernel", "[%d.123] IN=eth0 OUT= SRC=192.0.2.%d DST=10.0.0.1 PROTO=TCP DPT=23"},
}

func writeMixedLog(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range n {
		tpl := mixedTemplates[i%len(mixedTemplates)]
		ts := t0.Add(time.Duration(i) * 50 * time.Millisecond)
		text := fmt.Sprintf(tpl.text, i%250+1, i%97)
		switch i % 3 {
		case 0:
			fmt.Fprintf(w, "%s mx %s[%d]: %s\n", ts.Format(time.Stamp), tpl.prog, 1000+i%5000, text)
		case 1:
			fmt.Fprintf(w, "%s mx %s[%d]: %s\n", ts.Format("2006-01-02T15:04:05.000000-07:00"), tpl.prog, 1000+i%5000, text)
		default:
			fmt.Fprintf(w, "<38>%s mx %s[%d]: %s\n", ts.Format(time.Stamp), tpl.prog, 1000+i%5000, text)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// The multi-line sendmail failure of sendmail 8.13 + saslauthd on CentOS 5: the AUTH failure names no client,
// the same queue id's later line does, other daemons' lines in between. The
// correlation window follows the log's times: a close 20 minutes after its
// open (sendmail-auth waits 10) is a miss, however fast the file is read.
func TestTestMultiLine(t *testing.T) {
	log := writeFile(t, t.TempDir(), "maillog", `Jan 26 19:30:05 fedora sendmail[2370]: s0QBU1Ir002370: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed
Jan 26 19:30:05 fedora saslauthd[27264]: pam_unix(smtp:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=
Jan 26 19:30:06 fedora sendmail[2370]: s0QBU1Ir002370: 223.59.18.218.broad.sz.gd.dynamic.163data.com.cn [218.18.59.223] (may be forged) did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
Jan 26 20:00:00 fedora sendmail[3001]: s0QC00aa003001: AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed
Jan 26 20:20:00 fedora sendmail[3001]: s0QC00aa003001: [192.0.2.44] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
`)
	code, stdout, stderr := sysbanTest(t, "", "--json", "sendmail-auth", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := decodeJSONLines(t, stdout)
	if len(got) != 5 {
		t.Fatalf("%d objects:\n%s", len(got), stdout)
	}
	type want struct {
		matched, pending, correlated bool
		host                         string
	}
	for i, w := range []want{
		{pending: true},
		{}, // saslauthd: not a program sendmail-auth reads
		{matched: true, correlated: true, host: "218.18.59.223"},
		{pending: true},
		{}, // 20 minutes later: the open has expired
	} {
		g := got[i]
		h := ""
		if g.Host != nil {
			h = *g.Host
		}
		if g.Matched != w.matched || g.Pending != w.pending || g.Correlated != w.correlated || h != w.host {
			t.Errorf("line %d: matched=%v pending=%v correlated=%v host=%q, want %+v", i+1, g.Matched, g.Pending, g.Correlated, h, w)
		}
	}

	_, stdout, _ = sysbanTest(t, "", "--print-all-matched", "sendmail-auth", log)
	if !strings.Contains(stdout, "pending line 1 sendmail-auth #") || !strings.Contains(stdout, "matched line 3 sendmail-auth #") ||
		strings.Count(stdout, " line ") != 3 {
		t.Errorf("--print-all-matched should print the two pending lines and the failure:\n%s", stdout)
	}

	// With all, a line several filters matched lists them all.
	_, stdout, _ = sysbanTest(t, "", "--json", "all", log)
	got = decodeJSONLines(t, stdout)
	if len(got) != 5 || len(got[2].Matches) != 3 || got[2].Matches[0].Filter != "saslauthd" || str(got[2].Matches[2].Host) != "218.18.59.223" {
		t.Errorf("line 3 with all: matches %+v", got[2].Matches)
	}

	// all: sendmail-reject counts the "did not issue" lines on their own,
	// so the expired close is a failure there, and 218.18.59.223 is found
	// by three filters.
	_, stdout, _ = sysbanTest(t, "", "all", log)
	for _, want := range []string{
		"Lines: 5 read, 2 matched, 0 ignored, 2 pending, 1 missed\n",
		"  218.18.59.223  3 failure(s)\n",
		"  192.0.2.44  1 failure(s)\n      2026-01-26 20:20:00 +0000  sendmail-reject #1\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("all: output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestTestAddressTimes: the address report shows each failure's time in
// the zone its line gave (the tally keeps times as Unix time and a zone
// index), at most maxAddrTimes times per address and the rest as a count,
// and "(no time)" for a bare message.
func TestTestAddressTimes(t *testing.T) {
	var log strings.Builder
	for i, zone := range []string{"+05:30", "Z", "-07:00", "+05:30"} {
		fmt.Fprintf(&log, "2026-06-09T10:00:0%d.5%s h sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2\n", i, zone)
	}
	for i := range maxAddrTimes + 2 {
		fmt.Fprintf(&log, "Jun  9 11:00:%02d h sshd[2]: Failed password for root from 198.51.100.9 port 22 ssh2\n", i)
	}
	path := writeFile(t, t.TempDir(), "zones", log.String())
	code, stdout, stderr := sysbanTest(t, "", "sshd", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"  192.0.2.7  4 failure(s)\n" +
			"      2026-06-09 10:00:00 +0530  sshd #1\n" +
			"      2026-06-09 10:00:01 +0000  sshd #1\n" +
			"      2026-06-09 10:00:02 -0700  sshd #1\n" +
			"      2026-06-09 10:00:03 +0530  sshd #1\n",
		"  198.51.100.9  12 failure(s)\n      2026-06-09 11:00:00 +0000  sshd #1\n",
		"      2026-06-09 11:00:09 +0000  sshd #1\n      ... 2 more\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	bare := writeFile(t, t.TempDir(), "bare", "Failed password for root from 203.0.113.5 port 22 ssh2\n")
	_, stdout, _ = sysbanTest(t, "", "sshd", bare)
	if want := "  203.0.113.5  1 failure(s)\n      (no time)  sshd #1\n"; !strings.Contains(stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, stdout)
	}
}
