package receiver

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// fastShapes are inputs the fast paths exist for: each must be taken by
// one (fastTaken), and the fuzz target checks that the result is the full
// path's.
var fastShapes = []string{
	"<38>Nov 21 18:40:46 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52144 ssh2",
	"<38>Nov  1 08:00:00 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52144 ssh2",
	"<38>Nov 01 08:00:00 web1 sshd[1234]: space- or zero-padded day",
	"<38>Nov 21 18:40:46.123 web1 sshd[1234]: fraction",
	"<38>2026-11-21T18:40:46.123456+00:00 web1 sshd-session[77]: Invalid user admin from 198.51.100.2 port 4022",
	"<86>2026-11-21T19:40:46.5+01:00 mx postfix/smtpd[123]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed",
	"<38>2026-11-21T18:40:46Z web1 sshd: no pid",
	"<38>Nov 21 18:40:46 sshd[123]: Invalid user test from 192.0.2.44 port 5555",                           // FreeBSD: no host
	"<83>Nov 21 18:40:46 sshd-session[77]: error: PAM: Authentication failure for root from 192.0.2.9\x00", // glibc
	"<38>Nov 21 18:40:46 2001:db8::7 sshd[1]: rsyslog names a nameless sender by address",
	"<38>Nov 21 18:40:46 ::ffff:192.0.2.1 sshd[1]: mapped",
	"<38>Nov 21 18:40:46 fe80::1%eth0 sshd[1]: zone",
	"<38>Nov 21 18:40:46 cafe: looks like an address, is a tag",
	"<38>Nov 21 18:40:46 2001:db8::7 2001:db8::8 two addresses",
	"<38>Nov 21 18:40:46 web1 sshd[1]:no space after the colon",
	"<38>Nov 21 18:40:46 web1 a message without a tag",
	"<38>Nov 21 18:40:46 web1 sshd[1]: text with \x00 NUL, \n LF and \xff invalid UTF-8",
	"<38>Nov 21 18:40:46 web1 singleword",
	"<38>Nov 21 18:40:46 singleword",
	"<38>Nov 21 18:40:46 web1 sshd[]: empty pid",
	"<38>1 2026-11-21T18:40:46.123456+00:00 web1 sshd 1234 - - Failed password for root from 203.0.113.7 port 52144 ssh2",
	"<13>1 2026-11-21T18:52:45.084498+00:00 vm postfix 23820 - -  line one#012line two",
	`<13>1 2026-11-21T18:44:39.823690+00:00 vm sshd - AUTH [timeQuality tzKnown="1" isSynced="0"] Failed x`,
	`<13>1 2026-11-21T18:44:39+01:00 vm sshd - - [a@1][b@1 x="" y="ü"]`,
	"<13>1 - - - - - -",
	"<13>1 - - - - - - \ufeffBOM then text",
	"<0>1 2026-02-28T23:59:59.1-05:30 h a p m - x",
}

// fullOnlyShapes are inputs the fast paths must leave to the full path.
var fullOnlyShapes = []string{
	"<38>sshd[1]: no header time",
	"<38>Nov 21 18:40:46 - sshd[1]: dash host",
	"<38>Nov 21 18:40:46 ab[12 web sshd: bracket in the first word",
	"<38>Nov 21 18:40:46 web1\tsshd: tab after the first word",
	"<38>Nov 21 18:40:46 web1\x00sshd: NUL after the first word",
	"<38>Nov 21 18:40:46 wéb1 sshd: non-ASCII first word",
	`<38>1 - web1 sshd 1 - [a@1 u="x]y"] unescaped ] in an SD value`,
	`<38>1 - web1 sshd 1 - [a@1 u="x\"y"] escaped quote in an SD value`,
	"<38>Nov 21 18:40:46 web1    ",
	"<38>Nov 21 18:40:46 " + strings.Repeat("h", 256) + " sshd: long first word",
	"<38>Nov 21 18:40:46 2001:db8::7 web1 sshd[1]: address then host",
	"<013>1 2026-11-21T18:40:46Z h a p m - leading zero in PRI",
	"<13>1 2026-11-21T18:40:46.1234567Z h a p m - seven fraction digits",
	"<13>1 2026-02-29T00:00:00Z h a p m - no such day",
	"<13>1 2026-11-21t18:40:46Z h a p m - lower-case t",
	`<13>1 - h a p m [a x="\"q\""] escapes`,
	`<13>1 - h a p m [a][a] repeated id`,
	`<13>1 - h a p m [a x="` + "\xff" + `"] invalid UTF-8 in a value`,
	"<13>1 - h a p m -x",
	"<13>1 - " + strings.Repeat("h", 256) + " a p m - long host",
}

// fastTaken reports whether a fast path accepts in (in a fresh parser).
func fastTaken(in string) bool {
	b := trimTrailing([]byte(in))
	_, n, ok := parsePRI(b)
	if !ok || n == len(b) {
		return false
	}
	var m sysban.Message
	if isRFC5424(b[n:]) {
		return newParser().fast5424(b, n, &m)
	}
	return newParser().fast3164(b[n:], testNow, &m)
}

func TestFastPathTakesCommonShapes(t *testing.T) {
	for _, in := range fastShapes {
		if !fastTaken(in) {
			t.Errorf("fast path refused %q", in)
		}
	}
	for _, in := range fullOnlyShapes {
		if fastTaken(in) {
			t.Errorf("fast path took %q, which is the full path's", in)
		}
	}
}

// TestFastPathMatchesFull runs the fuzz target's check on the shapes and on
// parseCases with a message already holding another line's fields, as
// Parse's callers may pass.
func TestFastPathMatchesFull(t *testing.T) {
	var all []string
	all = append(all, fastShapes...)
	all = append(all, fullOnlyShapes...)
	for _, tc := range parseCases {
		all = append(all, tc.in)
	}
	for _, in := range all {
		checkFastMatchesFull(t, []byte(in))
	}
}

// TestStamp5424MatchesTimeParse holds stamp5424 to time.Parse with the
// layout the rfc5424 machine uses. Whether an offset is the local zone's
// decides the result's Location, so the offsets cover common zones; run
// with TZ set (TZ=Europe/Paris, TZ=Asia/Kolkata) to exercise both sides.
func TestStamp5424MatchesTimeParse(t *testing.T) {
	const layout = "2006-01-02T15:04:05.999999Z07:00" // rfc5424.RFC3339MICRO
	for _, in := range []string{
		"2026-11-21T18:40:46Z",
		"2026-11-21T18:40:46.1Z",
		"2026-11-21T18:40:46.123456Z",
		"2026-11-21T18:40:46.123456+00:00",
		"2026-11-21T18:40:46.123456-00:00",
		"2026-11-21T18:40:46+01:00",
		"2026-06-21T18:40:46+02:00",
		"2026-11-21T18:40:46-05:30",
		"2026-11-21T18:40:46+05:30",
		"2026-11-21T18:40:46-03:30",
		"2026-03-29T01:30:00+01:00", // Europe/Paris: the hour DST starts
		"2026-03-29T03:30:00+02:00",
		"2024-02-29T23:59:59.999999+14:00",
		"0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59-23:59",
	} {
		want, err := time.Parse(layout, in)
		if err != nil {
			t.Fatalf("time.Parse(%q): %v", in, err)
		}
		got, n, ok := stamp5424([]byte(in + " rest"))
		if !ok || n != len(in) {
			t.Errorf("stamp5424(%q) = %v, %d, %v; want %d bytes", in, got, n, ok, len(in))
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stamp5424(%q) = %v (%p), time.Parse = %v (%p)", in, got, got.Location(), want, want.Location())
		}
	}
}

func FuzzFastPathMatchesFull(f *testing.F) {
	for _, in := range fastShapes {
		f.Add([]byte(in))
	}
	for _, in := range fullOnlyShapes {
		f.Add([]byte(in))
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range benchShapes {
		f.Add([]byte(s.in))
	}
	for _, tc := range fileLineCases {
		if strings.HasPrefix(tc.in, "<") {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFastMatchesFull(t, b)
	})
}

// checkFastMatchesFull parses b with and without the fast paths, into a
// fresh message and into one holding another message's fields, twice each
// (the parsers keep scratch state), and fails on any difference in the
// messages or the errors.
func checkFastMatchesFull(t *testing.T, b []byte) {
	t.Helper()
	fast, full := newParser(), newParser()
	full.full = true
	used := sysban.Message{
		Timestamp: time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC), Hostname: "old", AppName: "old", ProcID: "1",
		MsgID: "OLD", StructuredData: map[string]map[string]string{"old": {"k": "v"}}, Text: "old",
	}
	for round := range 4 {
		var mf, ms sysban.Message
		if round%2 == 1 {
			mf, ms = used, used
			mf.StructuredData = map[string]map[string]string{"old": {"k": "v"}}
		}
		ef := fast.parse(b, testNow, &mf)
		es := full.parse(b, testNow, &ms)
		if fmt.Sprint(ef) != fmt.Sprint(es) {
			t.Fatalf("%q: fast path error %v, full path %v", b, ef, es)
		}
		if !reflect.DeepEqual(mf, ms) {
			t.Fatalf("%q:\nfast path %#v\nfull path %#v", b, mf, ms)
		}
	}
}

// BenchmarkParseFull is BenchmarkParse with the fast paths off: the cost
// they save, measured in one sitting.
func BenchmarkParseFull(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			p := newParser()
			p.full = true
			in := []byte(s.in)
			var m sysban.Message
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				m = sysban.Message{}
				p.parse(in, testNow, &m)
			}
		})
	}
}

// FuzzStampCache holds parser.stamp to parseStamp when one parser reads
// stamps at different times: the cache must never answer for a now in
// which parseStamp's year inference, or zone, would differ.
func FuzzStampCache(f *testing.F) {
	for _, s := range []string{
		"Nov 21 18:40:46 web1", "Dec 31 23:59:59 h", "Jan  1 00:00:00", "Feb 29 12:00:00.5 x",
		"2026-11-21T18:40:46.123456+00:00 h", "2026-11-21T18:40:46+05:30",
	} {
		f.Add([]byte(s), int64(0), int64(0), false)
		f.Add([]byte(s), int64(-400*24*3600), int64(40*24*3600), true)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	f.Fuzz(func(t *testing.T, b []byte, d1, d2 int64, zone bool) {
		const span = 20 * 365 * 24 * 3600 // keep nows within ±20 years
		now1 := testNow.Add(time.Duration(d1%span) * time.Second)
		now2 := testNow.Add(time.Duration(d2%span) * time.Second)
		if zone {
			now2 = now2.In(paris)
		}
		p := newParser()
		for _, now := range []time.Time{now1, now2, now1, now2.Add(time.Hour), now2.Add(-40 * 24 * time.Hour)} {
			gt, gn := p.stamp(b, now)
			wt, wn := parseStamp(b, now)
			if gn != wn || !reflect.DeepEqual(gt, wt) {
				t.Fatalf("%q at %v: cached %v (%d bytes), parseStamp %v (%d bytes)", b, now, gt, gn, wt, wn)
			}
		}
	})
}

func TestStampCacheAcrossNewYear(t *testing.T) {
	p := newParser()
	in := []byte("Dec 31 23:59:59 h sshd: x")
	for _, tc := range []struct {
		now  time.Time
		want time.Time
	}{
		{time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		// Within yearSlack of a new year a Dec 31 is still last year's...
		{time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		// ...and a year later it is the next one: the cache must not
		// answer with the old year.
		{time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC)},
		{time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)},
	} {
		got, n := p.stamp(in, tc.now)
		if n != 15 || !got.Equal(tc.want) {
			t.Errorf("at %v: %v (%d bytes), want %v", tc.now, got, n, tc.want)
		}
	}
}

// TestTagBytes: the table is the predicate it replaced, on every byte.
func TestTagBytes(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c > ' ' && c < 0x7f && c != ':' && c != '[' && c != ']'
		if tagBytes[c] != want {
			t.Errorf("tagBytes[%#x] = %v, want %v", c, tagBytes[c], want)
		}
	}
}
