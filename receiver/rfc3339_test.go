package receiver

import (
	"testing"
	"time"
)

// TestRFC3339Readers pins where the three readers of RFC 3339 times differ:
// the RFC 3164 header (parseStamp -> readISO with syslogISO), the RFC 5424
// fast path (stamp5424, which must agree with go-syslog's rfc5424 machine)
// and file lines (parseBSDorISO -> readISO with the file rules). Each row
// says why the readers differ on it.
func TestRFC3339Readers(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	readers := []struct {
		name string
		read func(b []byte) (time.Time, bool)
	}{
		{"3164", func(b []byte) (time.Time, bool) { ts, n := parseStamp(b, now); return ts, n > 0 }},
		{"5424", func(b []byte) (time.Time, bool) { ts, _, ok := stamp5424(b); return ts, ok }},
		{"file", func(b []byte) (time.Time, bool) { ts, n := parseBSDorISO(b, now, nil, nil); return ts, n > 0 }},
	}
	tests := []struct {
		in     string
		accept [3]bool // 3164, 5424, file
		want   time.Time
		why    string
	}{
		{"2026-12-06T10:00:00Z", [3]bool{true, true, true}, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
			"the RFC's own shape: every reader takes it"},
		{"2026-12-06T10:00:00.123456-05:30", [3]bool{true, true, true}, time.Date(2026, 12, 6, 15, 30, 0, 123456000, time.UTC),
			"six fraction digits and a numeric offset: every reader takes it"},
		{"2026-12-06t10:00:00z", [3]bool{true, false, true}, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
			"RFC 3339 5.6 allows lower case; RFC 5424 6.2.3 and the rfc5424 machine do not"},
		{"2026-12-06T10:00:00.1234567Z", [3]bool{true, false, true}, time.Date(2026, 12, 6, 10, 0, 0, 123456700, time.UTC),
			"RFC 5424's TIME-SECFRAC has at most six digits; elsewhere up to nanoseconds"},
		{"2026-12-31T23:59:60Z", [3]bool{true, false, true}, time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC),
			"a leap second is kept (clamped to :59); time.Parse behind the rfc5424 machine rejects it"},
		{"2026-12-06 10:00:00+01:00", [3]bool{false, false, true}, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC),
			"daemons' files write a space for the T; in a syslog header the space ends the field"},
		{"2026-12-06T10:00:00", [3]bool{false, false, true}, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
			"a file line without offset is in the host's zone; a syslog header must say its zone"},
		{"2026-12-06T10:00:00+0100", [3]bool{false, false, true}, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC),
			"ISO 8601's basic offset, seen in files; RFC 3339 has only ±hh:mm"},
		{"2026-12-06T10:00:00+01", [3]bool{false, false, true}, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC),
			"ISO 8601's hour-only offset, seen in files; RFC 3339 has only ±hh:mm"},
		{"2026-02-30T10:00:00Z", [3]bool{false, false, false}, time.Time{},
			"no such day: every reader refuses it"},
	}
	for _, tt := range tests {
		for k, r := range readers {
			got, ok := r.read([]byte(tt.in + " rest"))
			if ok != tt.accept[k] {
				t.Errorf("%s reader on %q: accepted %v, want %v (%s)", r.name, tt.in, ok, tt.accept[k], tt.why)
				continue
			}
			if ok && !got.Equal(tt.want) {
				t.Errorf("%s reader on %q = %v, want %v", r.name, tt.in, got, tt.want)
			}
		}
	}
}

// TestRFC3339ZeroOffset pins the zone of "+00:00": the readISO readers
// give time.UTC (one shared zone, nothing allocated), stamp5424 what
// time.Parse gives (time.Local when the local zone is UTC at that instant,
// else a fixed zone), because the fast path's messages must equal the full
// parser's.
func TestRFC3339ZeroOffset(t *testing.T) {
	const in = "2026-12-06T10:00:00+00:00 rest"
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if ts, n := parseStamp([]byte(in), now); n == 0 || ts.Location() != time.UTC {
		t.Errorf("3164 header: %v (%d bytes), want time.UTC", ts, n)
	}
	if ts, n := parseBSDorISO([]byte(in), now, nil, nil); n == 0 || ts.Location() != time.UTC {
		t.Errorf("file line: %v (%d bytes), want time.UTC", ts, n)
	}
	want, err := time.Parse("2006-01-02T15:04:05.999999Z07:00", in[:25])
	if err != nil {
		t.Fatal(err)
	}
	if ts, _, ok := stamp5424([]byte(in)); !ok || ts.Location() != want.Location() {
		t.Errorf("5424 header: %v in %p, time.Parse gives %p", ts, ts.Location(), want.Location())
	}
}
