package receiver

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// testNow is the receiver clock in parse tests: UTC, so BSD header times
// (which carry no zone) are read as UTC.
var testNow = time.Date(2026, 11, 21, 18, 41, 0, 0, time.UTC)

func bsd(mon time.Month, day, hh, mm, ss int) time.Time {
	return time.Date(2026, mon, day, hh, mm, ss, 0, time.UTC)
}

type parseCase struct {
	name    string
	in      string
	want    sysban.Message
	wantErr bool
}

// parseCases are the exact bytes real forwarders send (captured or built
// from their documented templates), plus hostile input.
var parseCases = []parseCase{
	{
		name: "rsyslog traditional forward",
		in:   "<38>Nov 21 18:40:46 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52144 ssh2",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "web1", AppName: "sshd", ProcID: "1234",
			Text: "Failed password for root from 203.0.113.7 port 52144 ssh2"},
	},
	{
		name: "rsyslog RSYSLOG_ForwardFormat microseconds",
		in:   "<38>2026-11-21T18:40:46.123456+00:00 web1 sshd-session[77]: Invalid user admin from 198.51.100.2 port 4022",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 123456000, time.UTC), Hostname: "web1",
			AppName: "sshd-session", ProcID: "77", Text: "Invalid user admin from 198.51.100.2 port 4022"},
	},
	{
		name: "rsyslog ForwardFormat with offset",
		in:   "<86>2026-11-21T19:40:46.5+01:00 mx postfix/smtpd[123]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed",
		want: sysban.Message{Facility: 10, Severity: 6, Timestamp: time.Date(2026, 11, 21, 19, 40, 46, 500000000, time.FixedZone("", 3600)), Hostname: "mx",
			AppName: "postfix/smtpd", ProcID: "123", Text: "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed"},
	},
	{
		name: "rsyslog SyslogProtocol23Format",
		in:   "<38>1 2026-11-21T18:40:46.123456+00:00 web1 sshd 1234 - - Failed password for root from 203.0.113.7 port 52144 ssh2\n",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 123456000, time.UTC), Hostname: "web1",
			AppName: "sshd", ProcID: "1234", Text: "Failed password for root from 203.0.113.7 port 52144 ssh2"},
	},
	{
		name: "rsyslog SyslogProtocol23Format relaying 3164 (captured): leading space, slash cut by rsyslog",
		in:   "82 <13>1 2026-11-21T18:52:45.084498+00:00 vm postfix 23820 - -  line one#012line two\n"[3:],
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 18, 52, 45, 84498000, time.UTC), Hostname: "vm",
			AppName: "postfix", ProcID: "23820", Text: "line one#012line two"},
	},
	{
		name: "RFC5424 BOM",
		in:   "<13>1 - h app - - - \xef\xbb\xbfhello",
		want: sysban.Message{Facility: 1, Severity: 5, Hostname: "h", AppName: "app", Text: "hello"},
	},
	{
		name: "rsyslog #012 escapes kept",
		in:   "<38>Nov 21 18:40:46 web1 dovecot: auth: line one#012line two",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "web1", AppName: "dovecot",
			Text: "auth: line one#012line two"},
	},
	{
		name: "RFC5424 with structured data and msgid",
		in:   `<165>1 2026-11-21T18:40:46.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high"] An application event`,
		want: sysban.Message{Facility: 20, Severity: 5, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 3000000, time.UTC), Hostname: "mymachine.example.com",
			AppName: "evntslog", MsgID: "ID47",
			StructuredData: map[string]map[string]string{
				"exampleSDID@32473":     {"iut": "3", "eventSource": "Application"},
				"examplePriority@32473": {"class": "high"},
			},
			Text: "An application event"},
	},
	{
		name: "logger --rfc5424 (captured)",
		in:   `<13>1 2026-11-21T18:44:39.823690+00:00 vm sshd - AUTH [timeQuality tzKnown="1" isSynced="0"] Failed x`,
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 18, 44, 39, 823690000, time.UTC), Hostname: "vm",
			AppName: "sshd", MsgID: "AUTH", StructuredData: map[string]map[string]string{"timeQuality": {"tzKnown": "1", "isSynced": "0"}},
			Text: "Failed x"},
	},
	{
		name: "logger --rfc5424=notime,notq (nil values)",
		in:   `<13>1 - vm root - - - plain`,
		want: sysban.Message{Facility: 1, Severity: 5, Hostname: "vm", AppName: "root", Text: "plain"},
	},
	{
		name: "logger --rfc3164 remote (captured)",
		in:   "<13>Nov 21 18:44:39 vm sshd[6144]: Failed password for root from 10.0.0.1 port 22 ssh2",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 44, 39), Hostname: "vm", AppName: "sshd", ProcID: "6144",
			Text: "Failed password for root from 10.0.0.1 port 22 ssh2"},
	},
	{
		name: "logger on unix socket, glibc shape, no hostname (captured)",
		in:   "<13>Nov 21 18:44:40 postfix/smtpd[6157]: hello",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 44, 40), AppName: "postfix/smtpd", ProcID: "6157", Text: "hello"},
	},
	{
		name: "glibc syslog(3) NUL terminated",
		in:   "<83>Nov 21 18:40:46 sshd-session[77]: error: PAM: Authentication failure for root from 192.0.2.9\x00",
		want: sysban.Message{Facility: 10, Severity: 3, Timestamp: bsd(11, 21, 18, 40, 46), AppName: "sshd-session", ProcID: "77",
			Text: "error: PAM: Authentication failure for root from 192.0.2.9"},
	},
	{
		name: "journald forward to /dev/log",
		in:   "<30>Nov 21 18:40:46 named[5]: client @0x7f 192.0.2.1#53 (example.com): query (cache) 'example.com/ANY/IN' denied\n",
		want: sysban.Message{Facility: 3, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), AppName: "named", ProcID: "5",
			Text: "client @0x7f 192.0.2.1#53 (example.com): query (cache) 'example.com/ANY/IN' denied"},
	},
	{
		name: "FreeBSD syslogd default forward: no hostname",
		in:   "<38>Nov 21 18:40:46 sshd[123]: Invalid user test from 192.0.2.44 port 5555",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), AppName: "sshd", ProcID: "123",
			Text: "Invalid user test from 192.0.2.44 port 5555"},
	},
	{
		name: "FreeBSD no hostname, tag without pid",
		in:   "<22>Nov 21 18:40:46 dovecot: imap-login: Disconnected (auth failed, 1 attempts): rip=192.0.2.5",
		want: sysban.Message{Facility: 2, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), AppName: "dovecot",
			Text: "imap-login: Disconnected (auth failed, 1 attempts): rip=192.0.2.5"},
	},
	{
		name: "FreeBSD syslogd relaying another host's message",
		in:   "<38>Nov 21 18:40:46 Forwarded from web3.example.org: sshd[123]: Invalid user test from 192.0.2.44 port 5555",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "web3.example.org", AppName: "sshd", ProcID: "123",
			Text: "Invalid user test from 192.0.2.44 port 5555"},
	},
	{
		name: "FreeBSD relay, origin an address, tag without pid",
		in:   "<22>Nov 21 18:40:46 Forwarded from 192.0.2.60: dovecot: imap-login: Disconnected (auth failed, 1 attempts): rip=192.0.2.5",
		want: sysban.Message{Facility: 2, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "192.0.2.60", AppName: "dovecot",
			Text: "imap-login: Disconnected (auth failed, 1 attempts): rip=192.0.2.5"},
	},
	{
		name: "FreeBSD relay of a relayed message: only the outer origin counts",
		in:   "<38>Nov 21 18:40:46 Forwarded from a.example: Forwarded from b.example: sshd[1]: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "a.example",
			Text: "from b.example: sshd[1]: x"},
	},
	{
		name: "not a relay: the origin is not one word",
		in:   "<38>Nov 21 18:40:46 Forwarded from a b: sshd[1]: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "Forwarded",
			Text: "from a b: sshd[1]: x"},
	},
	{
		name: "FreeBSD syslogd -O rfc5424",
		in:   "<38>1 2026-11-21T18:40:46.123456+00:00 fbsd.example.org sshd 123 - - Invalid user test from 192.0.2.44",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 123456000, time.UTC), Hostname: "fbsd.example.org",
			AppName: "sshd", ProcID: "123", Text: "Invalid user test from 192.0.2.44"},
	},
	{
		name: "OpenBSD syslogd -h forward",
		in:   "<38>Nov  1 08:05:09 obsd sshd[9]: Failed publickey for root from 192.0.2.3 port 1 ssh2",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 1, 8, 5, 9), Hostname: "obsd", AppName: "sshd", ProcID: "9",
			Text: "Failed publickey for root from 192.0.2.3 port 1 ssh2"},
	},
	{
		name: "busybox syslogd remote: no hostname",
		in:   "<86>Nov  1 08:05:09 openvpn[1]: 192.0.2.8:1194 TLS Error: TLS handshake failed",
		want: sysban.Message{Facility: 10, Severity: 6, Timestamp: bsd(11, 1, 8, 5, 9), AppName: "openvpn", ProcID: "1",
			Text: "192.0.2.8:1194 TLS Error: TLS handshake failed"},
	},
	{
		name: "IPv6 literal as hostname",
		in:   "<38>Nov 21 18:40:46 2001:db8::7 sshd[9]: Failed password for root from 2001:db8::66 port 2 ssh2",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "2001:db8::7", AppName: "sshd", ProcID: "9",
			Text: "Failed password for root from 2001:db8::66 port 2 ssh2"},
	},
	{
		name: "IPv4 literal as hostname",
		in:   "<38>Nov 21 18:40:46 192.0.2.1 sshd[9]: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "192.0.2.1", AppName: "sshd", ProcID: "9", Text: "x"},
	},
	{
		name: "zero-padded day",
		in:   "<38>Nov 01 08:05:09 host sshd[9]: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 1, 8, 5, 9), Hostname: "host", AppName: "sshd", ProcID: "9", Text: "x"},
	},
	{
		name: "syslog-ng network() ISO date",
		in:   "<86>2026-11-21T18:40:46+00:00 mx postfix/submission/smtpd[9]: warning: hostname example.net does not resolve to address 192.0.2.77\n",
		want: sysban.Message{Facility: 10, Severity: 6, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 0, time.UTC), Hostname: "mx",
			AppName: "postfix/submission/smtpd", ProcID: "9", Text: "warning: hostname example.net does not resolve to address 192.0.2.77"},
	},
	{
		name: "syslog-ng network() BSD date",
		in:   "<86>Nov 21 18:40:46 mx postfix/submission/smtpd[9]: warning: x\n",
		want: sysban.Message{Facility: 10, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "mx", AppName: "postfix/submission/smtpd", ProcID: "9",
			Text: "warning: x"},
	},
	{
		name: "BSD time with fraction",
		in:   "<13>Nov 21 18:40:46.250 h a[1]: frac",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 40, 46).Add(250 * time.Millisecond), Hostname: "h", AppName: "a", ProcID: "1", Text: "frac"},
	},
	{
		name: "no tag",
		in:   "<13>Nov 21 18:40:46 host message without a tag",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "host", Text: "message without a tag"},
	},
	{
		name: "no timestamp",
		in:   "<13>sshd[1]: no time here",
		want: sysban.Message{Facility: 1, Severity: 5, AppName: "sshd", ProcID: "1", Text: "no time here"},
	},
	{
		name: "invalid UTF-8, NUL and LF kept in text",
		in:   "<13>Nov 21 18:40:46 host app[2]: bad \xff\xfe utf8\x00nul\nsecond line",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "host", AppName: "app", ProcID: "2",
			Text: "bad \xff\xfe utf8\x00nul\nsecond line"},
	},
	{
		name: "RFC5424 invalid UTF-8",
		in:   "<13>1 2026-11-21T18:40:46Z h app 1 - - bad \xff",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 0, time.UTC), Hostname: "h", AppName: "app", ProcID: "1", Text: "bad \xff"},
	},
	{
		name: "tag colon without space",
		in:   "<13>Nov 21 18:40:46 host sshd[1]:msg",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "host", AppName: "sshd", ProcID: "1", Text: "msg"},
	},
	{
		name: "tag without colon is text",
		in:   "<13>Nov 21 18:40:46 host sshd[1] x",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "host", Text: "sshd[1] x"},
	},
	{
		name: "empty message after tag",
		in:   "<13>Nov 21 18:40:46 host sshd[1]: ",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "host", AppName: "sshd", ProcID: "1"},
	},
	{
		name: "kernel line with brackets in text",
		in:   "<4>Nov 21 18:40:46 host kernel: [12345.678] IN=eth0 SRC=192.0.2.1",
		want: sysban.Message{Facility: 0, Severity: 4, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "host", AppName: "kernel", Text: "[12345.678] IN=eth0 SRC=192.0.2.1"},
	},
	{
		name: "NUL inside tag area",
		in:   "<13>Nov 21 18:40:46 host ss\x00hd[1]: x",
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "host", Text: "ss\x00hd[1]: x"},
	},
	// Brackets where a header is read. A tag is a word then an optional
	// "[pid]" and ':'; no forwarder we know writes "[tag]:" (rsyslog and
	// syslog-ng write "tag[pid]:", FreeBSD, busybox and glibc the same
	// without a hostname). A bracketed word is therefore text: the
	// message has no program, and the pipeline counts it unrouted.
	{
		name: "bracketed tag is text, not a program",
		in:   "<38>Nov 21 18:40:46 web1 [sshd]: Failed password for root from 192.0.2.7 port 1 ssh2",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "web1",
			Text: "[sshd]: Failed password for root from 192.0.2.7 port 1 ssh2"},
	},
	{
		name: "bracketed tag and pid, no hostname",
		in:   "<38>Nov 21 18:40:46 [sshd][12]: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Text: "[sshd][12]: x"},
	},
	{
		name: "bracketed first word is no hostname (the machine made \"1]\" of it)",
		in:   "<38>Nov 21 18:40:46 host[1] sshd[2]: Failed password for root from 192.0.2.7 port 1 ssh2",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46),
			Text: "host[1] sshd[2]: Failed password for root from 192.0.2.7 port 1 ssh2"},
	},
	{
		name: "no hostname has brackets",
		in:   "<38>Nov 21 18:40:46 evil]host sshd[2]: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Text: "evil]host sshd[2]: x"},
	},
	{
		name: "tag without colon then a colon word: no hostname (the machine made \"2]\" of it)",
		in:   "<38>Nov 21 18:40:46 sshd[2] evil.example: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Text: "sshd[2] evil.example: x"},
	},
	{
		name: "IPv6 host then a bracketed word: the host stays, the rest is text",
		in:   "<38>Nov 21 18:40:46 2001:db8::7 a[1] sshd[2]: x",
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: bsd(11, 21, 18, 40, 46), Hostname: "2001:db8::7", Text: "a[1] sshd[2]: x"},
	},
	// No header time: busybox syslogd forwarding a local line, embedded
	// syslogds. The tag is read; Message.Timestamp stays zero and the
	// pipeline counts the line at its receive time (Message.Received).
	{
		name: "no timestamp, busybox-style dropbear",
		in:   "<38>dropbear[812]: Bad password attempt for 'root' from 192.0.2.7:51234",
		want: sysban.Message{Facility: 4, Severity: 6, AppName: "dropbear", ProcID: "812", Text: "Bad password attempt for 'root' from 192.0.2.7:51234"},
	},
	{
		name: "no timestamp, leading blank, slash in tag",
		in:   "<34> postfix/smtpd[9]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed",
		want: sysban.Message{Facility: 4, Severity: 2, AppName: "postfix/smtpd", ProcID: "9", Text: "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed"},
	},
	{
		name: "no timestamp, a hostname is text (RFC 3164 4.3.3)",
		in:   "<34>web1 sshd[12]: x",
		want: sysban.Message{Facility: 4, Severity: 2, Text: "web1 sshd[12]: x"},
	},
	// RFC 5424 structured data with an unescaped ']' inside a quoted
	// value: read by the quotes (the machine refused the whole header).
	{
		name: "SD value with unescaped ]",
		in:   `<38>1 2026-11-21T18:40:46Z h sshd 12 - [meta@1 user="a]b"] Failed password for a]b from 192.0.2.7 port 1 ssh2`,
		want: sysban.Message{Facility: 4, Severity: 6, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 0, time.UTC), Hostname: "h", AppName: "sshd", ProcID: "12",
			StructuredData: map[string]map[string]string{"meta@1": {"user": "a]b"}},
			Text:           "Failed password for a]b from 192.0.2.7 port 1 ssh2"},
	},
	{
		name: "SD value ending in unescaped ], a second element, escapes undone",
		in:   `<38>1 - h app - - [a@1 x="v]" y="q\"]\\ \n"][b@1 z="]"] msg`,
		want: sysban.Message{Facility: 4, Severity: 6, Hostname: "h", AppName: "app",
			StructuredData: map[string]map[string]string{"a@1": {"x": "v]", "y": `q"]\ \n`}, "b@1": {"z": "]"}},
			Text:           "msg"},
	},
	{
		name: "SD value with ] that looks like a header: stays in the value",
		in:   `<38>1 - h sshd 1 - [meta@1 user="x] evil 2 - - Failed password for root from 192.0.2.99 port 1 ssh2"] Connection closed`,
		want: sysban.Message{Facility: 4, Severity: 6, Hostname: "h", AppName: "sshd", ProcID: "1",
			StructuredData: map[string]map[string]string{"meta@1": {"user": "x] evil 2 - - Failed password for root from 192.0.2.99 port 1 ssh2"}},
			Text:           "Connection closed"},
	},
	{
		name: "SD value with a stray quote is ambiguous: refused, kept as text",
		in:   `<38>1 - h sshd 1 - [meta@1 user="say "hi" x"] Failed`,
		want: sysban.Message{Facility: 4, Severity: 6, Hostname: "h", AppName: "sshd", ProcID: "1",
			StructuredData: map[string]map[string]string{"meta@1": {}},
			Text:           `1 - h sshd 1 - [meta@1 user="say "hi" x"] Failed`},
		wantErr: true,
	},
	{
		name: "SD with ] and a repeated SD-ID: refused as the machine refuses it",
		in:   `<38>1 - h sshd 1 - [a@1 x="]"][a@1 x="y"] m`,
		want: sysban.Message{Facility: 4, Severity: 6, Hostname: "h", AppName: "sshd", ProcID: "1",
			StructuredData: map[string]map[string]string{"a@1": {}},
			Text:           `1 - h sshd 1 - [a@1 x="]"][a@1 x="y"] m`},
		wantErr: true,
	},
	{
		name: "SD value with ] but no closing quote: refused",
		in:   `<38>1 - h sshd 1 - [a@1 x="]] m`,
		want: sysban.Message{Facility: 4, Severity: 6, Hostname: "h", AppName: "sshd", ProcID: "1",
			StructuredData: map[string]map[string]string{"a@1": {}},
			Text:           `1 - h sshd 1 - [a@1 x="]] m`},
		wantErr: true,
	},
	// Hostile input: never panics, text kept, default PRI when absent.
	{name: "no timestamp, words", in: "<13>lf frame", want: sysban.Message{Facility: 1, Severity: 5, Text: "lf frame"}},
	{name: "PRI and blanks", in: "<0>  ", want: sysban.Message{Text: "  "}, wantErr: true},
	{name: "only PRI", in: "<13>", want: sysban.Message{Facility: 1, Severity: 5}, wantErr: true},
	{name: "empty", in: "", want: sysban.Message{Facility: 1, Severity: 5}, wantErr: true},
	{name: "empty PRI", in: "<>", want: sysban.Message{Facility: 1, Severity: 5, Text: "<>"}, wantErr: true},
	{name: "PRI out of range", in: "<999>Nov 21 18:40:46 h a: x", want: sysban.Message{Facility: 1, Severity: 5, Text: "<999>Nov 21 18:40:46 h a: x"}, wantErr: true},
	{name: "spaces only", in: "    ", want: sysban.Message{Facility: 1, Severity: 5, Text: "    "}, wantErr: true},
	{name: "no PRI", in: "hello world", want: sysban.Message{Facility: 1, Severity: 5, Text: "hello world"}, wantErr: true},
	{
		name: "truncated RFC5424 with SD open",
		in:   `<13>1 2026-11-21T18:40:46Z h app 1 ID [sd@1 a="unterminated`,
		want: sysban.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 11, 21, 18, 40, 46, 0, time.UTC), Hostname: "h", AppName: "app", ProcID: "1", MsgID: "ID",
			StructuredData: map[string]map[string]string{"sd@1": {}},
			Text:           `1 2026-11-21T18:40:46Z h app 1 ID [sd@1 a="unterminated`},
		wantErr: true,
	},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			var got sysban.Message
			err := Parse([]byte(tc.in), testNow, &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Parse(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if !got.Timestamp.Equal(tc.want.Timestamp) {
				t.Errorf("Timestamp = %v, want %v", got.Timestamp, tc.want.Timestamp)
			}
			got.Timestamp, tc.want.Timestamp = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%q)\n got  %+v\n want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// TestParseNoAliasing checks that no string in the message shares memory
// with the input buffer, which the listeners reuse.
func TestParseNoAliasing(t *testing.T) {
	for _, tc := range parseCases {
		b := []byte(tc.in)
		var m sysban.Message
		Parse(b, testNow, &m)
		for i := range b {
			b[i] = 'X'
		}
		var fresh sysban.Message
		Parse([]byte(tc.in), testNow, &fresh)
		if m.Text != fresh.Text || m.Hostname != fresh.Hostname || m.AppName != fresh.AppName || m.ProcID != fresh.ProcID {
			t.Errorf("%s: message changed after input buffer reuse: %+v", tc.name, m)
		}
	}
}

func TestParseNoTimezoneUsesNowLocation(t *testing.T) {
	zone := time.FixedZone("X", -5*3600)
	var m sysban.Message
	if err := Parse([]byte("<13>Nov 21 10:00:00 h a: x"), testNow.In(zone), &m); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 21, 10, 0, 0, 0, zone); !m.Timestamp.Equal(want) {
		t.Errorf("Timestamp = %v, want %v", m.Timestamp, want)
	}
}

func TestInferYear(t *testing.T) {
	tests := []struct {
		now      time.Time
		mon      time.Month
		day      int
		wantYear int
	}{
		{time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), 11, 21, 2026},
		{time.Date(2027, 1, 1, 0, 5, 0, 0, time.UTC), 12, 31, 2026},   // Dec 31 seen on Jan 1: last year
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), 1, 1, 2027},  // sender clock ahead over new year
		{time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 11, 27, 2026}, // 6 days ahead: still this year
		{time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 11, 29, 2025}, // 8 days ahead: last year
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 2, 29, 2024},    // leap day: latest leap year
		{time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), 2, 29, 2028},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 1, 15, 2026},
	}
	for _, tc := range tests {
		got, ok := inferYear(tc.mon, tc.day, 0, 0, 0, 0, tc.now)
		if !ok || got.Year() != tc.wantYear || got.Month() != tc.mon || got.Day() != tc.day {
			t.Errorf("inferYear(%v %d, now %v) = %v, %v; want year %d", tc.mon, tc.day, tc.now, got, ok, tc.wantYear)
		}
	}
}

func TestParseStamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		n    int
	}{
		{"Nov  1 08:05:09 x", bsd(11, 1, 8, 5, 9), 15},
		{"Nov 01 08:05:09 x", bsd(11, 1, 8, 5, 9), 15},
		{"Nov 1 08:05:09 x", bsd(11, 1, 8, 5, 9), 14},
		{"Nov 21 18:40:46", bsd(11, 21, 18, 40, 46), 15},
		{"2026-11-21T18:40:46Z x", time.Date(2026, 11, 21, 18, 40, 46, 0, time.UTC), 20},
		{"2026-11-21T18:40:46.123456789-02:30 x", time.Date(2026, 11, 21, 18, 40, 46, 123456789, time.FixedZone("", -9000)), 35},
		{"Nov 32 08:05:09 x", time.Time{}, 0},
		{"Nov 21 24:05:09 x", time.Time{}, 0},
		{"Foo 21 08:05:09 x", time.Time{}, 0},
		{"2026-02-30T00:00:00Z", time.Time{}, 0},
		{"2026-11-21T18:40:46", time.Time{}, 0},
		{"Nov 21 18:40:46x", time.Time{}, 0},
	}
	for _, tc := range tests {
		got, n := parseStamp([]byte(tc.in), testNow)
		if n != tc.n || !got.Equal(tc.want) {
			t.Errorf("parseStamp(%q) = %v, %d; want %v, %d", tc.in, got, n, tc.want, tc.n)
		}
	}
}

func TestParseHugeGarbage(t *testing.T) {
	in := "<13>" + strings.Repeat("\x01\xff<>[]: ", 64<<10/8)
	var m sysban.Message
	Parse([]byte(in), testNow, &m) // must not panic
	if len(m.Text) == 0 {
		t.Error("text lost")
	}
}
