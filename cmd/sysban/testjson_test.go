package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// jsonLine is the --json object; pointers tell null from zero values.
type jsonLine struct {
	Line       int     `json:"line"`
	Matched    bool    `json:"matched"`
	Host       *string `json:"host"`
	Filter     *string `json:"filter"`
	Pattern    *int    `json:"pattern"`
	Regex      *string `json:"regex"`
	Ignored    bool    `json:"ignored"`
	Pending    bool    `json:"pending"`
	Correlated bool    `json:"correlated"`
	Same       bool    `json:"same_attempt"`
	Failures   int     `json:"failures"`
	Timestamp  *string `json:"timestamp"`
	Hostname   *string `json:"hostname"`
	App        *string `json:"app"`
	ProcID     *string `json:"procid"`
	MsgID      *string `json:"msgid"`
	Message    string  `json:"message"`
	Matches    []struct {
		Filter     string  `json:"filter"`
		Pattern    int     `json:"pattern"`
		Host       *string `json:"host"`
		Ignored    bool    `json:"ignored"`
		Pending    bool    `json:"pending"`
		Correlated bool    `json:"correlated"`
	} `json:"matches"`
}

// decodeJSONLines checks that stdout is exactly one JSON object per line,
// with the line numbers in order, and decodes them strictly.
func decodeJSONLines(t *testing.T, stdout string) []jsonLine {
	t.Helper()
	var out []jsonLine
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var l jsonLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("decode %s: %v", sc.Text(), err)
		}
		if l.Line != len(out)+1 {
			t.Fatalf("line %d out of order: %s", len(out)+1, sc.Text())
		}
		out = append(out, l)
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func TestTestJSON(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		stdin string
		log   string
		// want per line: host ("" = not matched), app, hostname, timestamp
		want []jsonWant
	}{
		{
			name: "file form",
			log:  secureLog,
			args: []string{"sshd"},
			want: []jsonWant{
				{host: "jumbotrace.cmu.ac.th", app: "sshd", hostname: "kvm-vpn", procid: "1709", ts: "2026-06-09T03:35:33Z"},
				{host: "58.83.131.67", app: "sshd", hostname: "kvm-vpn", procid: "2972", ts: "2026-06-09T14:20:40Z"},
				{host: "58.83.131.67", app: "sshd", hostname: "kvm-vpn", procid: "2974", ts: "2026-06-09T14:20:43Z"},
				{host: "116.10.191.188", app: "sshd", hostname: "kvm-vpn", procid: "3391", ts: "2026-06-09T17:45:49Z"},
				{app: "sshd", hostname: "kvm-vpn", procid: "3400", ts: "2026-06-09T17:50:00Z", msg: "Accepted password for bob from 192.0.2.50 port 22 ssh2"},
				{app: "crond", hostname: "kvm-vpn", procid: "4286", ts: "2026-06-10T01:05:26Z"},
				{host: "192.0.2.7", app: "sshd", hostname: "kvm-vpn", procid: "5000", ts: "2026-06-10T02:00:00Z"},
			},
		},
		{
			name: "ISO times (rsyslog file format, journalctl short-iso)",
			log: "2026-11-21T10:00:00.123456+01:00 web sshd[7]: Failed password for root from 203.0.113.9 port 2222 ssh2\n" +
				"2026-11-21T10:00:01+0100 web sshd-session[8]: Invalid user admin from 2001:db8::7 port 4022\n" +
				"2026-11-21T10:00:02Z web systemd[1]: Started session 5.\n",
			args: []string{"sshd"},
			want: []jsonWant{
				{host: "203.0.113.9", app: "sshd", hostname: "web", procid: "7", ts: "2026-11-21T10:00:00.123456+01:00"},
				{host: "2001:db8::7", app: "sshd-session", hostname: "web", procid: "8", ts: "2026-11-21T10:00:01+01:00"},
				{app: "systemd", hostname: "web", procid: "1", ts: "2026-11-21T10:00:02Z"},
			},
		},
		{
			name: "wire lines, RFC 3164 and 5424",
			log: "<38>Nov 21 18:40:46 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52144 ssh2\n" +
				"<86>1 2026-11-21T10:00:00Z host sshd 42 AUTH - Failed password for root from 192.0.2.1 port 22 ssh2\n",
			args: []string{"all"},
			want: []jsonWant{
				{host: "203.0.113.7", app: "sshd", hostname: "web1", procid: "1234", ts: "2026-11-21T18:40:46Z"},
				{host: "192.0.2.1", app: "sshd", hostname: "host", procid: "42", msgid: "AUTH", ts: "2026-11-21T10:00:00Z"},
			},
		},
		{
			name: "bare messages with --program",
			log: "Failed password for root from 198.51.100.4 port 22 ssh2\n" +
				"Server listening on 0.0.0.0 port 22.\n",
			args: []string{"--program", "sshd", "all"},
			want: []jsonWant{
				{host: "198.51.100.4", app: "sshd", msg: "Failed password for root from 198.51.100.4 port 22 ssh2"},
				{app: "sshd", msg: "Server listening on 0.0.0.0 port 22."},
			},
		},
		{
			name: "bare messages without --program: all routes them nowhere",
			log:  "Failed password for root from 198.51.100.4 port 22 ssh2\n",
			args: []string{"all"},
			want: []jsonWant{{msg: "Failed password for root from 198.51.100.4 port 22 ssh2"}},
		},
		{
			name: "bare messages, one filter: read as its program",
			log:  "Failed password for root from 198.51.100.4 port 22 ssh2\n",
			args: []string{"sshd"},
			want: []jsonWant{{host: "198.51.100.4", app: "sshd"}},
		},
		{
			name: "a daemon's own log file (a CentOS 5 host's openvpn.log), one filter",
			log: "Tue Jun 10 18:57:41 2014 176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695), which must be > 0 and <= 1560 -- please ensure that --tun-mtu or --link-mtu is equal on both peers -- this condition could also indicate a possible active attack on the TCP link -- [Attempting restart...]\n" +
				"Tue Jun 10 18:58:00 2014 Initialization Sequence Completed\n",
			args: []string{"openvpn"},
			want: []jsonWant{
				{host: "176.114.32.92", app: "openvpn", ts: "2014-06-10T18:57:41Z"},
				{app: "openvpn", ts: "2014-06-10T18:58:00Z", msg: "Tue Jun 10 18:58:00 2014 Initialization Sequence Completed"},
			},
		},
		{
			name:  "stdin, CRLF, no final newline, hostile bytes",
			stdin: "Nov 21 10:00:00 h sshd[1]: Failed password for root from 192.0.2.3 port 1 ssh2\r\nNov 21 10:00:01 h sshd[1]: \"quoted\\\" \x01\xff tab\there",
			args:  []string{"sshd"},
			want: []jsonWant{
				{host: "192.0.2.3", app: "sshd", hostname: "h", procid: "1", ts: "2026-11-21T10:00:00Z"},
				{app: "sshd", hostname: "h", procid: "1", ts: "2026-11-21T10:00:01Z", msg: "\"quoted\\\" \x01\ufffd tab\there"},
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logPath := "-"
			if tt.log != "" {
				logPath = writeFile(t, dir, fmt.Sprintf("log%d", i), tt.log)
			}
			args := append(append([]string{"--json"}, tt.args...), logPath)
			code, stdout, stderr := sysbanTest(t, tt.stdin, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.HasPrefix(stderr, fmt.Sprintf("sysban test: %d lines, ", len(tt.want))) {
				t.Errorf("stderr summary: %q", stderr)
			}
			got := decodeJSONLines(t, stdout)
			if len(got) != len(tt.want) {
				t.Fatalf("%d objects, want %d:\n%s", len(got), len(tt.want), stdout)
			}
			for n, w := range tt.want {
				w.check(t, got[n])
			}
		})
	}
}

type jsonWant struct {
	host, app, hostname, procid, msgid, ts, msg string
}

func (w jsonWant) check(t *testing.T, g jsonLine) {
	t.Helper()
	nullable := func(field string, p *string, want string) {
		if want == "" && p != nil || want != "" && (p == nil || *p != want) {
			t.Errorf("line %d: %s = %s, want %q", g.Line, field, str(p), want)
		}
	}
	if g.Matched != (w.host != "") {
		t.Errorf("line %d: matched = %v, want %v", g.Line, g.Matched, w.host != "")
	}
	nullable("host", g.Host, w.host)
	nullable("app", g.App, w.app)
	nullable("hostname", g.Hostname, w.hostname)
	nullable("procid", g.ProcID, w.procid)
	nullable("msgid", g.MsgID, w.msgid)
	nullable("timestamp", g.Timestamp, w.ts)
	if w.msg != "" && g.Message != w.msg {
		t.Errorf("line %d: message %q, want %q", g.Line, g.Message, w.msg)
	}
	if g.Matched != (g.Filter != nil && g.Pattern != nil && g.Regex != nil) {
		t.Errorf("line %d: matched %v but filter %s pattern %v regex %s", g.Line, g.Matched, str(g.Filter), g.Pattern, str(g.Regex))
	}
	if g.Matched && !strings.Contains(*g.Regex, "<HOST>") {
		t.Errorf("line %d: regex %q is not the pattern as written", g.Line, *g.Regex)
	}
}

// TestRecordEncoding holds the hand-written --json encoder to what
// encoding/json makes of the documented lineRecord: the same bytes.
func TestRecordEncoding(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.FixedZone("", 3600))
	hostile := "\"q\\\" \x01\x08\x0c\x1f\xff tab\there <a&b> \u2028\u2029 é 日本"
	msg := sysban.Message{Timestamp: at, Hostname: "web", AppName: "sshd", ProcID: "7", Text: "Failed password for root from 192.0.2.1 port 22 ssh2"}
	fail := pipeline.Match{Filter: "sshd", Pattern: 2, Regex: `^Failed \S+ for <HOST> & <x>$`, Host: "192.0.2.1"}
	tests := []struct {
		name    string
		msg     sysban.Message
		matches []pipeline.Match
	}{
		{"missed, nothing known", sysban.Message{Text: "x"}, nil},
		{"matched", msg, []pipeline.Match{fail}},
		{"hostile text everywhere", sysban.Message{Hostname: hostile, AppName: hostile, MsgID: hostile, Text: hostile},
			[]pipeline.Match{{Filter: "f", Regex: hostile, Host: hostile}}},
		{"ignored", msg, []pipeline.Match{{Filter: "sshd", Pattern: 0, Regex: "^a <HOST>$", Host: "192.0.2.1", Ignored: true, IgnoreIndex: 1}}},
		{"several filters", msg, []pipeline.Match{
			{Filter: "sendmail-auth", Pattern: 1, Regex: "^b <HOST>$", Host: "192.0.2.1", Correlated: true},
			{Filter: "sendmail-reject", Pattern: 0, Regex: "^c <HOST>$", Pending: true},
			{Filter: "saslauthd", Pattern: 3, Regex: "^d <HOST>$", Host: "192.0.2.1", Ignored: true}}},
	}
	var rw recordWriter
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(tt.matches)
			got := string(rw.line(uint64(i+1), &tt.msg, tt.matches, v))
			l := rw.record(uint64(i+1), &tt.msg, tt.matches, v)
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(&l); err != nil {
				t.Fatal(err)
			}
			if w := want.String(); got != w {
				t.Errorf("by hand:\n  %s\nencoding/json:\n  %s", got, w)
			}
		})
	}
}

// BenchmarkRecordEncoding compares the hand encoder with encoding/json on
// a typical matched line (the figures in testjson.go are of the whole
// command).
func BenchmarkRecordEncoding(b *testing.B) {
	msg := sysban.Message{Timestamp: time.Now(), Hostname: "mx", AppName: "sshd", ProcID: "4242",
		Text: "Failed password for invalid user admin from 192.0.2.7 port 52144 ssh2"}
	matches := []pipeline.Match{{Filter: "sshd", Pattern: 0, Regex: `^Failed \S+ for (?:invalid user )?.* from <HOST> port \d+ ssh2$`, Host: "192.0.2.7"}}
	v := judge(matches)
	b.Run("hand", func(b *testing.B) {
		var rw recordWriter
		for b.Loop() {
			rw.line(1, &msg, matches, v)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		var rw recordWriter
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for b.Loop() {
			buf.Reset()
			l := rw.record(1, &msg, matches, v)
			enc.Encode(&l)
		}
	})
}
