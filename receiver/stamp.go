package receiver

import "time"

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseStamp reads the header time at the start of b: the BSD "Mmm dd
// hh:mm:ss" (day space- or zero-padded, optional fraction) or RFC 3339 with
// optional fraction. It returns the time and the number of bytes consumed,
// or zero and 0 when b does not start with a time (some senders omit it; the
// rest is then parsed as "host tag: msg").
func parseStamp(b []byte, now time.Time) (time.Time, int) {
	if t, n, ok := parseBSD(b, now); ok {
		return t, n
	}
	if t, n, ok := parseRFC3339(b); ok {
		return t, n
	}
	return time.Time{}, 0
}

func parseBSD(b []byte, now time.Time) (time.Time, int, bool) {
	if len(b) < 14 {
		return time.Time{}, 0, false
	}
	mon := -1
	for i, name := range months {
		if b[0] == name[0] && b[1] == name[1] && b[2] == name[2] {
			mon = i
			break
		}
	}
	if mon < 0 || b[3] != ' ' {
		return time.Time{}, 0, false
	}
	i := 4
	if b[i] == ' ' { // space-padded day: "Nov  1"
		i++
	}
	day, i, ok := digits(b, i, 1, 2)
	if !ok || day < 1 || day > 31 || i >= len(b) || b[i] != ' ' {
		return time.Time{}, 0, false
	}
	hh, mm, ss, ns, i, ok := clock(b, i+1)
	if !ok {
		return time.Time{}, 0, false
	}
	if i < len(b) && b[i] != ' ' {
		return time.Time{}, 0, false
	}
	t, ok := inferYear(time.Month(mon+1), day, hh, mm, ss, ns, now)
	if !ok {
		return time.Time{}, 0, false
	}
	return t, i, true
}

// inferYear picks the latest year in which month/day is not more than
// yearSlack after now. Feb 29 only exists in leap years, so the search walks
// back until the date is real (at most 8 years).
func inferYear(mon time.Month, day, hh, mm, ss, ns int, now time.Time) (time.Time, bool) {
	loc := now.Location()
	limit := now.Add(yearSlack)
	// Start at the limit's own year, not the year after: any time in a
	// later year is after the limit, so trying it only cost a time.Date
	// per line (inferYear was 7% of `sysban test` in a profile). The
	// lower bound stays relative to now.
	oldest := now.Year() - 8 // a calendar conversion: not per iteration
	for y := limit.Year(); y >= oldest; y-- {
		if day > daysIn(mon, y) {
			continue // no such day in that year (Feb 29, or Apr 31)
		}
		// Checking the day before time.Date, rather than reading the
		// normalised result's Month and Day back, saves two calendar
		// conversions per line.
		t := time.Date(y, mon, day, hh, mm, ss, ns, loc)
		if !t.After(limit) {
			return t, true
		}
	}
	return time.Time{}, false
}

// daysIn returns the number of days of month m in year y (proleptic
// Gregorian, as package time counts).
func daysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// clock parses "hh:mm:ss" with an optional ".fraction" (1-9 digits).
func clock(b []byte, i int) (hh, mm, ss, ns, end int, ok bool) {
	if hh, i, ok = digits(b, i, 2, 2); !ok || hh > 23 || i >= len(b) || b[i] != ':' {
		return 0, 0, 0, 0, 0, false
	}
	if mm, i, ok = digits(b, i+1, 2, 2); !ok || mm > 59 || i >= len(b) || b[i] != ':' {
		return 0, 0, 0, 0, 0, false
	}
	if ss, i, ok = digits(b, i+1, 2, 2); !ok || ss > 60 {
		return 0, 0, 0, 0, 0, false
	}
	if ss == 60 { // leap second: keep the message, clamp the time
		ss = 59
	}
	if i < len(b) && b[i] == '.' {
		start := i + 1
		var frac int
		if frac, i, ok = digits(b, start, 1, 9); !ok {
			return 0, 0, 0, 0, 0, false
		}
		for k := i - start; k < 9; k++ {
			frac *= 10
		}
		ns = frac
	}
	return hh, mm, ss, ns, i, true
}

// digits reads between min and max ASCII digits at b[i:].
func digits(b []byte, i, min, max int) (v, end int, ok bool) {
	j := i
	for j < len(b) && j-i < max && isDigit(b[j]) {
		v = v*10 + int(b[j]-'0')
		j++
	}
	if j-i < min {
		return 0, i, false
	}
	return v, j, true
}

// sysban reads RFC 3339 times in three places. Two share readISO below,
// with the rules that tell them apart; the third, stamp5424 in
// parse_fast.go, is the RFC 5424 fast path and must accept exactly what
// go-syslog's rfc5424 machine (time.Parse) accepts, so it keeps its own
// stricter reader. TestRFC3339Readers pins every difference.

// isoRules are what a caller of readISO accepts beyond RFC 3339's
// "YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)". Both readers take a lower-case
// "t" and "z" (RFC 3339 section 5.6 allows them), one to nine fraction
// digits, and a leap second (":60", clamped to :59 so the message is kept);
// an offset of zero gives time.UTC, any other a fixed zone.
type isoRules struct {
	// spaceSep takes a space for the "T" ("2026-12-06 10:00:00"), as
	// daemons write ISO 8601 in their own files; in a syslog header the
	// space would end the field.
	spaceSep bool
	// zoneless, when set, is the zone of a time written without an offset
	// (a file line in the host's zone); nil requires the offset, as RFC
	// 3339 does.
	zoneless *time.Location
	// looseOffset takes ISO 8601's "±hhmm" and "±hh" too, seen in files;
	// RFC 3339 has only "±hh:mm".
	looseOffset bool
}

// syslogISO are the rules of an RFC 3339 time in an RFC 3164 header
// (rsyslog's RSYSLOG_ForwardFormat writes one): the RFC's shape only.
var syslogISO = isoRules{}

// parseRFC3339 reads the RFC 3339 time of an RFC 3164 header at the start
// of b; a space or the end must follow it.
func parseRFC3339(b []byte) (time.Time, int, bool) {
	t, i, ok := readISO(b, syslogISO, nil)
	if !ok || i < len(b) && b[i] != ' ' {
		return time.Time{}, 0, false
	}
	return t, i, true
}

// readISO reads "YYYY-MM-DD(T|t)hh:mm:ss[.frac](Z|z|±hh:mm)" at the start
// of b, and what r allows beyond it, and returns the time and the bytes
// read. A numeric offset equal to prev's zone reuses prev (nil: none), so
// that a file of times in one zone does not allocate a zone per line.
func readISO(b []byte, r isoRules, prev *time.Location) (time.Time, int, bool) {
	year, i, ok := digits(b, 0, 4, 4)
	if !ok || i >= len(b) || b[i] != '-' {
		return time.Time{}, 0, false
	}
	mon, i, ok := digits(b, i+1, 2, 2)
	if !ok || mon < 1 || mon > 12 || i >= len(b) || b[i] != '-' {
		return time.Time{}, 0, false
	}
	day, i, ok := digits(b, i+1, 2, 2)
	if !ok || day < 1 || day > 31 || i >= len(b) || (b[i] != 'T' && b[i] != 't' && (!r.spaceSep || b[i] != ' ')) {
		return time.Time{}, 0, false
	}
	hh, mm, ss, ns, i, ok := clock(b, i+1)
	if !ok {
		return time.Time{}, 0, false
	}
	loc := r.zoneless
	switch {
	case i < len(b) && (b[i] == 'Z' || b[i] == 'z'):
		loc = time.UTC
		i++
	case i < len(b) && (b[i] == '+' || b[i] == '-'):
		off, j, ok := zoneOffset(b, i+1, r.looseOffset)
		if !ok {
			return time.Time{}, 0, false
		}
		if b[i] == '-' {
			off = -off
		}
		switch {
		case off == 0:
			loc = time.UTC
		case sameOffset(prev, off):
			loc = prev
		default:
			loc = time.FixedZone("", off)
		}
		i = j
	case loc == nil:
		return time.Time{}, 0, false
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, ns, loc)
	if t.Day() != day {
		return time.Time{}, 0, false
	}
	return t, i, true
}

// sameOffset reports whether loc is a fixed zone of off seconds.
func sameOffset(loc *time.Location, off int) bool {
	if loc == nil || loc == time.UTC || loc == time.Local {
		return false
	}
	name, o := time.Unix(0, 0).In(loc).Zone()
	return name == "" && o == off
}

// zoneOffset reads "hh:mm" at b[i:] as seconds, or with loose also "hhmm"
// or "hh".
func zoneOffset(b []byte, i int, loose bool) (int, int, bool) {
	oh, j, ok := digits(b, i, 2, 2)
	if !ok || oh > 23 {
		return 0, 0, false
	}
	colon := j < len(b) && b[j] == ':'
	if colon {
		j++
	} else if !loose {
		return 0, 0, false
	}
	om, k, ok := digits(b, j, 2, 2)
	if !ok {
		if colon || !loose {
			return 0, 0, false
		}
		return oh * 3600, j, true
	}
	if om > 59 {
		return 0, 0, false
	}
	return oh*3600 + om*60, k, true
}
