package receiver

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/sysban/sysban"
)

type fileLineCase struct {
	name string
	in   string
	want sysban.Message
	err  error // nil: success; errAny: any error
}

var errAny = errors.New("any error")

// fileLineCases are lines as they sit in real hosts' log files
// (/var/log/secure, maillog, all.log, openvpn.log, error_log) and in the
// files rsyslog and journalctl write, plus hostile shapes.
var fileLineCases = []fileLineCase{
	{
		name: "bracketed first word is no host: all text, as Parse reads it",
		in:   "Jun  9 03:35:33 host[1] sshd[2]: Failed password for root from 192.0.2.7 port 1 ssh2",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(6, 9, 3, 35, 33), Text: "host[1] sshd[2]: Failed password for root from 192.0.2.7 port 1 ssh2"},
	},
	{
		name: "centos5 secure, single-digit day",
		in:   "Jun  9 03:35:33 kvm-vpn sshd[1709]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=58.83.131.67 user=root\n",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(6, 9, 3, 35, 33), Hostname: "kvm-vpn", AppName: "sshd", ProcID: "1709",
			Text: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=58.83.131.67 user=root"},
	},
	{
		name: "centos5 secure, day without padding",
		in:   "Jun 9 03:35:33 kvm-vpn sshd[1709]: Disconnecting: Too many authentication failures for root",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(6, 9, 3, 35, 33), Hostname: "kvm-vpn", AppName: "sshd", ProcID: "1709",
			Text: "Disconnecting: Too many authentication failures for root"},
	},
	{
		name: "freebsd postfix, CRLF",
		in:   "Oct 26 10:21:21 hoge postfix/smtpd[4911]: warning: unknown[94.156.102.204]: SASL LOGIN authentication failed: authentication failure\r\n",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(10, 26, 10, 21, 21), Hostname: "hoge", AppName: "postfix/smtpd", ProcID: "4911",
			Text: "warning: unknown[94.156.102.204]: SASL LOGIN authentication failed: authentication failure"},
	},
	{
		name: "rsyslog file format, ISO with microseconds",
		in:   "2026-11-21T10:00:00.123456+01:00 mail dovecot: pop3-login: Aborted login (auth failed, 1 attempts): user=<a>, method=PLAIN, rip=::ffff:192.0.2.9, lip=::ffff:10.0.0.1",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.FixedZone("", 3600)), Hostname: "mail", AppName: "dovecot",
			Text: "pop3-login: Aborted login (auth failed, 1 attempts): user=<a>, method=PLAIN, rip=::ffff:192.0.2.9, lip=::ffff:10.0.0.1"},
	},
	{
		name: "journalctl short-iso, offset without colon",
		in:   "2026-11-21T10:00:00+0100 web sshd-session[88]: Invalid user admin from 198.51.100.2 port 4022",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Hostname: "web", AppName: "sshd-session", ProcID: "88",
			Text: "Invalid user admin from 198.51.100.2 port 4022"},
	},
	{
		name: "ISO with space and no zone",
		in:   "2026-11-21 10:00:00 web sshd[1]: x",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Hostname: "web", AppName: "sshd", ProcID: "1", Text: "x"},
	},
	{
		name: "ISO Z",
		in:   "2026-11-21T10:00:00Z web sshd[1]: x",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Hostname: "web", AppName: "sshd", ProcID: "1", Text: "x"},
	},
	{
		name: "no hostname (some BSD files, journalctl -o short without host)",
		in:   "Nov 21 10:00:00 sshd[12]: Failed password for root from 192.0.2.1 port 22 ssh2",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 10, 0, 0), AppName: "sshd", ProcID: "12",
			Text: "Failed password for root from 192.0.2.1 port 22 ssh2"},
	},
	{
		name: "IPv6 host ending in colons",
		in:   "Nov 21 10:00:00 2001:db8:: sshd[12]: x",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 10, 0, 0), Hostname: "2001:db8::", AppName: "sshd", ProcID: "12", Text: "x"},
	},
	{
		name: "lone word is the message",
		in:   "Nov 21 10:00:00 hello  ",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 10, 0, 0), Text: "hello  "},
	},
	{
		// Exim's own mainlog line (and OpenVPN 2.5+'s log file): an ISO
		// date, then no tag. The line stays whole for --program.
		name: "ISO date without a tag is a daemon's own line",
		in:   "2024-09-03 16:22:48 login authenticator failed for (x) [192.0.2.7]: 535 Incorrect authentication data",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2024, 9, 3, 16, 22, 48, 0, time.UTC),
			Text: "2024-09-03 16:22:48 login authenticator failed for (x) [192.0.2.7]: 535 Incorrect authentication data"},
		err: ErrNoHeader,
	},
	{
		// FreeBSD's syslogd -v: the facility and level before the host.
		name: "FreeBSD facility.level before the host",
		in:   "Jun 17 14:37:39 <mail.info> lark sm-mta[3107]: 5A3FkQ2b003107: from=<a@b>",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(6, 17, 14, 37, 39), Hostname: "lark", AppName: "sm-mta", ProcID: "3107", Text: "5A3FkQ2b003107: from=<a@b>"},
	},
	{
		name: "no tag: last message repeated",
		in:   "Nov 21 10:00:00 host last message repeated 3 times",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 10, 0, 0), Hostname: "host", Text: "last message repeated 3 times"},
	},
	{
		name: "qpopper from FreeBSD all.log",
		in:   "Nov 21 03:11:04 mx popper[9915]: user at host (203.0.113.5): -ERR [AUTH] Password supplied for \"u\" is incorrect.",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 3, 11, 4), Hostname: "mx", AppName: "popper", ProcID: "9915",
			Text: "user at host (203.0.113.5): -ERR [AUTH] Password supplied for \"u\" is incorrect."},
	},
	{
		name: "wire line with PRI",
		in:   "<38>Nov 21 18:40:46 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52144 ssh2\n",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "web1", AppName: "sshd", ProcID: "1234",
			Text: "Failed password for root from 203.0.113.7 port 52144 ssh2"},
	},
	{
		name: "wire line RFC 5424",
		in:   "<86>1 2026-11-21T10:00:00Z host sshd 42 AUTH - Failed password for root from 192.0.2.1 port 22 ssh2",
		want: sysban.Message{Facility: 10, Severity: 6, Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Hostname: "host", AppName: "sshd", ProcID: "42", MsgID: "AUTH",
			Text: "Failed password for root from 192.0.2.1 port 22 ssh2"},
	},
	{
		name: "centos5 openvpn.log: ctime stamp kept in the text",
		in:   "Tue Jun 10 18:57:41 2014 176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695)",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2014, 6, 10, 18, 57, 41, 0, time.UTC),
			Text: "Tue Jun 10 18:57:41 2014 176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695)"},
		err: ErrNoHeader,
	},
	{
		name: "centos5 apache 2.2 error_log",
		in:   "[Sat Jun 30 04:09:24 2012] [error] [client 118.142.43.102] File does not exist: /data/www/html/phpMyAdmin-2.8.3",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2012, 6, 30, 4, 9, 24, 0, time.UTC),
			Text: "[Sat Jun 30 04:09:24 2012] [error] [client 118.142.43.102] File does not exist: /data/www/html/phpMyAdmin-2.8.3"},
		err: ErrNoHeader,
	},
	{
		name: "apache 2.4 error_log with microseconds",
		in:   "[Sat Nov 21 10:00:00.123456 2026] [auth_basic:error] [pid 1] [client 192.0.2.3:5000] AH01618: user bob not found: /private",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC),
			Text: "[Sat Nov 21 10:00:00.123456 2026] [auth_basic:error] [pid 1] [client 192.0.2.3:5000] AH01618: user bob not found: /private"},
		err: ErrNoHeader,
	},
	{
		name: "BIND named.log",
		in:   "21-Nov-2026 10:00:00.123 client 192.0.2.4#53000 (example.com): query: example.com IN ANY +E(0) (10.0.0.1)",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 123000000, time.UTC),
			Text: "21-Nov-2026 10:00:00.123 client 192.0.2.4#53000 (example.com): query: example.com IN ANY +E(0) (10.0.0.1)"},
		err: ErrNoHeader,
	},
	{
		name: "bare message",
		in:   "Failed password for root from 192.0.2.1 port 22 ssh2",
		want: sysban.Message{Facility: 1, Severity: 5, Text: "Failed password for root from 192.0.2.1 port 22 ssh2"},
		err:  ErrNoHeader,
	},
	{
		name: "header only",
		in:   "Nov 21 10:00:00   ",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 10, 0, 0), Text: "   "},
		err:  errAny,
	},
	{
		name: "empty line",
		in:   "\n",
		want: sysban.Message{Facility: 1, Severity: 5},
		err:  ErrNoHeader,
	},
	{
		name: "time glued to text is not a header",
		in:   "2026-11-21T10:00:00Zhost sshd: x",
		want: sysban.Message{Facility: 1, Severity: 5, Text: "2026-11-21T10:00:00Zhost sshd: x"},
		err:  ErrNoHeader,
	},
	{
		name: "bad date is not a header",
		in:   "2026-02-30T10:00:00Z host sshd: x",
		want: sysban.Message{Facility: 1, Severity: 5, Text: "2026-02-30T10:00:00Z host sshd: x"},
		err:  ErrNoHeader,
	},
	{
		name: "hostile text keeps control bytes and invalid UTF-8",
		in:   "Nov 21 10:00:00 h sshd[1]: a\x00b\xffc\td",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 10, 0, 0), Hostname: "h", AppName: "sshd", ProcID: "1", Text: "a\x00b\xffc\td"},
	},
}

func TestParseFileLine(t *testing.T) {
	for _, tc := range fileLineCases {
		t.Run(tc.name, func(t *testing.T) {
			var m sysban.Message
			err := ParseFileLine([]byte(tc.in), testNow, &m)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.err == errAny && err == nil, tc.err != nil && tc.err != errAny && !errors.Is(err, tc.err):
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !m.Timestamp.Equal(tc.want.Timestamp) {
				t.Errorf("timestamp %v, want %v", m.Timestamp, tc.want.Timestamp)
			}
			m.Timestamp, tc.want.Timestamp = time.Time{}, time.Time{}
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("got  %+v\nwant %+v", m, tc.want)
			}
		})
	}
}

// TestParseFileLineReuse checks that a reused Message ends up exactly as a
// fresh one (no field leaks from the previous line) and that only the text
// is allocated when host, program and pid repeat.
func TestParseFileLineReuse(t *testing.T) {
	var reused sysban.Message
	for _, tc := range fileLineCases {
		var fresh sysban.Message
		err1 := ParseFileLine([]byte(tc.in), testNow, &fresh)
		err2 := ParseFileLine([]byte(tc.in), testNow, &reused)
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(fresh, reused) {
			t.Errorf("%s: reused message differs:\n fresh  %+v\n reused %+v", tc.name, fresh, reused)
		}
	}
	line := []byte("Nov 21 10:00:00 kvm-vpn sshd[1709]: Failed password for root from 192.0.2.1 port 22 ssh2")
	var m sysban.Message
	allocs := testing.AllocsPerRun(100, func() {
		if err := ParseFileLine(line, testNow, &m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations per line, want at most 1 (the text)", allocs)
	}
}

func TestParseFileLineYear(t *testing.T) {
	// A Dec 31 line read on Jan 2 is last year's, as in Parse.
	now := time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
	var m sysban.Message
	if err := ParseFileLine([]byte("Dec 31 23:59:59 h sshd[1]: x"), now, &m); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC); !m.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", m.Timestamp, want)
	}
}

func FuzzParseFileLine(f *testing.F) {
	for _, tc := range fileLineCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte("2026-11-21T10:00:00+01 h a: b"))
	f.Add([]byte("[Sat Jun 30 04:09:24 2012"))
	f.Add([]byte("31-Feb-2026 10:00:00 x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var m sysban.Message
		err := ParseFileLine(b, testNow, &m)
		if !bytes.Equal(in, b) {
			t.Fatal("ParseFileLine modified its input")
		}
		if m.Facility > 23 || m.Severity > 7 {
			t.Fatalf("facility/severity out of range: %d/%d", m.Facility, m.Severity)
		}
		trimmed := trimTrailing(in)
		if errors.Is(err, ErrNoHeader) && m.Text != string(trimmed) {
			t.Fatalf("no header: text %q, want the whole line %q", m.Text, trimmed)
		}
		if err == nil && len(m.Text) > len(trimmed) {
			t.Fatalf("text %q longer than the line %q", m.Text, trimmed)
		}
		if err == nil && !bytes.Contains(trimmed, []byte(m.Text)) {
			t.Fatalf("text %q is not part of the line %q", m.Text, trimmed)
		}
		// Parsing into a used message must give the same result.
		used := sysban.Message{Hostname: "x", AppName: "y", ProcID: "z", MsgID: "w", Text: "t", Timestamp: testNow}
		err2 := ParseFileLine(b, testNow, &used)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(m, used) {
			t.Fatalf("result depends on the message's previous content:\n fresh %+v\n used  %+v", m, used)
		}
		// FileParser gives the same, its stamp cache too: the same line
		// again, and at a now a year and a half later, when the year it
		// infers for a BSD time differs.
		var p FileParser
		for _, now := range []time.Time{testNow, testNow, testNow.AddDate(1, 6, 0), testNow} {
			var want, got sysban.Message
			werr := ParseFileLine(b, now, &want)
			gerr := p.ParseString(string(b), now, &got)
			if !sameError(werr, gerr) || !reflect.DeepEqual(want, got) {
				t.Fatalf("at %v: ParseString %+v (%v), ParseFileLine %+v (%v)", now, got, gerr, want, werr)
			}
		}
	})
}

// sameError reports whether a and b say the same (errors of the RFC 5424
// parser are made per call).
func sameError(a, b error) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error())
}

// TestFileParserAsParseFileLine holds FileParser.ParseString to
// ParseFileLine over the tables, one parser and one message for all the
// lines in turn (its stamp cache and the reused message carry over), and
// checks that its strings are cut from the line and that it allocates
// nothing.
func TestFileParserAsParseFileLine(t *testing.T) {
	var p FileParser
	var got sysban.Message
	var ins []string
	for _, tc := range fileLineCases {
		ins = append(ins, tc.in)
	}
	for _, tc := range parseCases {
		ins = append(ins, tc.in)
	}
	for _, now := range []time.Time{testNow, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)} {
		for _, in := range ins {
			var want sysban.Message
			werr := ParseFileLine([]byte(in), now, &want)
			gerr := p.ParseString(in, now, &got)
			if !sameError(werr, gerr) || !reflect.DeepEqual(want, got) {
				t.Errorf("%q at %v:\n ParseString  %+v (%v)\n ParseFileLine %+v (%v)", in, now, got, gerr, want, werr)
			}
		}
	}
	line := "Nov 21 10:00:00 kvm-vpn sshd[1709]: Failed password for root from 192.0.2.1 port 22 ssh2"
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.ParseString(line, testNow, &got); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per line, want 0", allocs)
	}
	if unsafe.StringData(got.Text) != unsafe.StringData(line[len(line)-len(got.Text):]) {
		t.Errorf("text %q is a copy, not a substring of the line", got.Text)
	}
}

func BenchmarkParseFileLine(b *testing.B) {
	lines := [][]byte{
		[]byte("Nov 21 10:00:00 kvm-vpn sshd[1709]: Failed password for root from 192.0.2.1 port 22 ssh2"),
		[]byte("2026-11-21T10:00:00.123456+01:00 mail postfix/smtpd[4911]: warning: unknown[94.156.102.204]: SASL LOGIN authentication failed: authentication failure"),
		[]byte("Tue Jun 10 18:57:41 2014 176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695)"),
	}
	var m sysban.Message
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ParseFileLine(lines[i%len(lines)], testNow, &m)
	}
}

// BenchmarkFileParser is BenchmarkParseFileLine through a FileParser, as
// `sysban test` parses: no copy, and the stamp cache.
func BenchmarkFileParser(b *testing.B) {
	lines := []string{
		"Nov 21 10:00:00 kvm-vpn sshd[1709]: Failed password for root from 192.0.2.1 port 22 ssh2",
		"Nov 21 10:00:00 kvm-vpn sshd[1709]: Connection closed by 192.0.2.1 port 22 [preauth]",
		"2026-11-21T10:00:00.123456+01:00 mail postfix/smtpd[4911]: warning: unknown[94.156.102.204]: SASL LOGIN authentication failed: authentication failure",
	}
	var p FileParser
	var m sysban.Message
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.ParseString(lines[i%len(lines)], testNow, &m)
	}
}

// TestParseFileLineWireAsParse checks that wire lines read through
// ParseFileLine's fast path give what the daemon's Parse gives, on the
// receiver's table of real forwarder output.
func TestParseFileLineWireAsParse(t *testing.T) {
	for _, tc := range parseCases {
		var want, got sysban.Message
		errWant := Parse([]byte(tc.in), testNow, &want)
		errGot := ParseFileLine([]byte(tc.in), testNow, &got)
		if (errWant == nil) != (errGot == nil) || !reflect.DeepEqual(want, got) {
			t.Errorf("%s: %q\n Parse         %+v (%v)\n ParseFileLine %+v (%v)", tc.name, tc.in, want, errWant, got, errGot)
		}
	}
}
