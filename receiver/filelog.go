package receiver

import (
	"bytes"
	"errors"
	"net/netip"
	"time"
	"unsafe"

	"github.com/sysban/sysban"
)

// ErrNoHeader is returned by ParseFileLine for a line that starts with no
// syslog header it knows: a daemon's own log file (OpenVPN's openvpn.log,
// BIND's named.log, Apache's error_log) or a bare message. The whole line is
// then the message text, so a caller that knows the program can still match
// it.
var ErrNoHeader = errors.New("receiver: file line: no syslog header")

// errHeaderOnly is a header with nothing after it.
var errHeaderOnly = errors.New("receiver: file line: header without a message")

// ParseFileLine parses one line of a log file, as syslog daemons and
// journalctl write them, into m:
//
//   - the classic file form "Mmm dd hh:mm:ss host prog[pid]: msg" (the year
//     is inferred from now as Parse does; the host may be missing, as in
//     "Mmm dd hh:mm:ss prog[pid]: msg");
//   - ISO 8601 / RFC 3339 times, as rsyslog's RSYSLOG_FileFormat and
//     journalctl -o short-iso write them ("2026-11-21T10:00:00.123456+01:00
//     host prog[pid]: msg"; an offset without a colon, or none, is accepted);
//   - syslog wire lines starting with "<PRI>" (a log of captured frames,
//     rsyslog's RSYSLOG_ForwardFormat written to a file), read as Parse
//     reads them: RFC 3164 lines with a header time here, without Parse's
//     per-call parser state, everything else by Parse itself.
//
// Any other line returns ErrNoHeader with the whole line as m.Text and, when
// it starts with a daemon's own time stamp (ctime "Tue Jun 10 18:57:41 2014",
// Apache's "[Sat Jun 30 04:09:24 2012]", BIND's "21-Nov-2026 10:00:00.123"),
// that time in m.Timestamp: the text is kept whole because filters for those
// daemons match the line as rsyslog's imfile forwards it, stamp included.
//
// Times without a zone are in now's location. Received, Listener and Sender
// are left alone. A line costs one string allocation: host, program, pid
// and text are cut from one copy of the line after its time. line is not
// retained and never modified.
func ParseFileLine(line []byte, now time.Time, m *sysban.Message) error {
	return parseFileLine(lineSource{b: line}, now, m, nil)
}

// FileParser is ParseFileLine for a caller that reads many lines on one
// goroutine and holds each in a string (`sysban test` cuts a batch of lines
// from one buffer): m's strings are cut from the line itself, so a line
// costs no allocation, and the last BSD header time is remembered, since a
// log has many lines per second and inferring the year of each was the
// costliest part of a line's header. The zero value is ready; a FileParser
// is not safe for concurrent use.
type FileParser struct {
	stamps stampCache
}

// ParseString parses line as ParseFileLine does, into m, whose strings
// then share line's memory (they keep it alive, and line must not change
// while they are in use). It returns exactly what ParseFileLine returns
// for the same bytes.
func (p *FileParser) ParseString(line string, now time.Time, m *sysban.Message) error {
	// A read-only view: nothing on this path writes to the line's bytes
	// (ParseFileLine's contract), and the one path that hands them on,
	// Parse, gets a copy.
	b := unsafe.Slice(unsafe.StringData(line), len(line))
	return parseFileLine(lineSource{b: b, s: line}, now, m, &p.stamps)
}

// lineSource is the line being parsed, and the same bytes as a string when
// the caller has one: then the message's strings are cut from it instead
// of copied.
type lineSource struct {
	b []byte
	s string // "" or b's bytes
}

// str returns sub, a slice of src.b, as a string: a substring of src.s
// when there is one, else a copy.
func (src lineSource) str(sub []byte) string {
	if len(sub) == 0 {
		return ""
	}
	if src.s != "" {
		off := int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(src.b))))
		if off >= 0 && off+len(sub) <= len(src.s) {
			return src.s[off : off+len(sub)]
		}
	}
	return string(sub)
}

// parseFileLine is ParseFileLine with src's strings and, when stamps is
// not nil, a cache of the last BSD header time.
func parseFileLine(src lineSource, now time.Time, m *sysban.Message, stamps *stampCache) error {
	line := trimTrailing(src.b)
	if pri, n, ok := parsePRI(line); ok {
		rest := line[n:]
		// An RFC 3164 wire line with a time is a file line behind a PRI:
		// read it here, without Parse's per-call machines. Anything else
		// (RFC 5424, no time) goes to Parse, which knows those shapes.
		if !isRFC5424(rest) {
			// A relayed FreeBSD line ("Forwarded from HOST: ...") is Parse's.
			if ts, k := parseStamp(rest, now); k > 0 && !bytes.HasPrefix(skipSpaces(rest[k:]), forwardedFrom) {
				m.Facility, m.Severity = pri/8, pri%8
				m.MsgID = ""
				m.StructuredData = nil
				return afterStamp(src, rest[k:], ts, m)
			}
		}
		// Parse expects a fresh message; a reused one must not keep the
		// previous line's fields.
		clearHeader(m)
		m.Text = ""
		if src.s != "" {
			// Parse's contract does not promise to leave its input
			// alone; a string's bytes must never change.
			return Parse([]byte(src.s[:len(line)]), now, m)
		}
		return Parse(line, now, m)
	}
	m.Facility, m.Severity = defaultFacility, defaultSeverity
	m.MsgID = ""
	m.StructuredData = nil

	ts, n := parseBSDorISO(line, now, m.Timestamp.Location(), stamps)
	if n == 0 {
		m.Timestamp = daemonStamp(line, now)
		m.Hostname, m.AppName, m.ProcID = "", "", ""
		m.Text = src.str(line)
		return ErrNoHeader
	}
	err := afterStamp(src, line[n:], ts, m)
	if err == nil && m.AppName == "" && line[0] >= '0' && line[0] <= '9' {
		// An ISO time and words but no "tag:" after them: not a syslog
		// file line (rsyslog and journalctl always write a tag) but a
		// daemon's own log line that starts with an ISO-like date
		// (Exim's mainlog "2024-09-03 16:22:48 login authenticator
		// failed ...", OpenVPN 2.5+'s log file). Keep it whole, as for
		// the daemon stamps above, so --program can match it as written.
		m.Hostname, m.ProcID = "", ""
		m.Text = src.str(line)
		return ErrNoHeader
	}
	return err
}

// afterStamp reads "[host ]tag[pid]: msg" after the header time ts; rest
// is a slice of src.b.
func afterStamp(src lineSource, rest []byte, ts time.Time, m *sysban.Message) error {
	m.Timestamp = ts
	body := skipFacilityLevel(skipBlanks(rest))
	if len(body) == 0 {
		m.Hostname, m.AppName, m.ProcID = "", "", ""
		m.Text = src.str(rest) // only blanks, but nothing is dropped (as Parse)
		return errHeaderOnly
	}
	// A host name never ends in ':' but a tag does ("sshd[1]:"), so a first
	// word ending in ':' is the tag of a host-less line — unless it is an
	// IPv6 address such as "2001:db8::", which rsyslog writes as the host
	// of senders without a name. A lone word is the message, not a host
	// with nothing to say.
	// A word with brackets is no host either ("host[1] sshd[2]: x"):
	// with neither a host nor a tag, the line is all text, as Parse
	// reads it.
	hostEnd, msgStart := 0, 0
	if sp := indexBlank(body); sp >= 0 && len(skipBlanks(body[sp:])) > 0 {
		if word := body[:sp]; (word[len(word)-1] != ':' || isAddr(word)) && bytes.IndexAny(word, "[]") < 0 {
			hostEnd, msgStart = sp, len(body)-len(skipBlanks(body[sp:]))
		}
	}
	// One string for the line, the fields cut from it: the text had to be
	// copied anyway (or is cut from the caller's string), and the host,
	// program and pid then cost nothing.
	s := src.str(body)
	tagEnd, pidStart, pidEnd, textStart := tagSplit(body[msgStart:])
	m.Hostname = s[:hostEnd]
	m.AppName = s[msgStart : msgStart+tagEnd]
	m.ProcID = s[msgStart+pidStart : msgStart+pidEnd]
	m.Text = s[msgStart+textStart:]
	return nil
}

func skipBlanks(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func indexBlank(b []byte) int {
	for i, c := range b {
		if c == ' ' || c == '\t' {
			return i
		}
	}
	return -1
}

func isAddr(word []byte) bool {
	w := word
	for len(w) > 0 && w[len(w)-1] == ':' {
		// "2001:db8::" keeps its "::"; "host:" loses its ':'
		if _, err := netip.ParseAddr(string(w)); err == nil {
			return true
		}
		w = w[:len(w)-1]
	}
	return false
}

// parseBSDorISO reads the header time of a file line: the BSD stamp Parse
// knows, or ISO 8601 in the shapes log files use. It returns the bytes
// consumed, 0 when the line does not start with a time followed by a blank.
// prev is the zone of the previous line's time, reused when the offset is
// the same so that a file of ISO times does not allocate a zone per line.
//
// stamps, when not nil, caches the last BSD time read.
func parseBSDorISO(b []byte, now time.Time, prev *time.Location, stamps *stampCache) (time.Time, int) {
	if stamps != nil {
		if t, n, ok := stamps.readBSD(b, now); ok {
			return t, n
		}
	} else if t, n, ok := parseBSD(b, now); ok {
		return t, n
	}
	// A file line's ISO time: "T" or a space, an offset in any ISO 8601
	// form or none (the host's zone); a blank, not the end, must follow.
	rules := isoRules{spaceSep: true, zoneless: now.Location(), looseOffset: true}
	if t, n, ok := readISO(b, rules, prev); ok && n < len(b) && (b[n] == ' ' || b[n] == '\t') {
		return t, n
	}
	return time.Time{}, 0
}

// daemonStamp reads the time stamp daemons write at the start of their own
// log files, or returns zero:
//
//	Tue Jun 10 18:57:41 2014          OpenVPN (ctime)
//	[Sat Jun 30 04:09:24 2012]        Apache 2.2 error_log
//	[Sat Jun 30 04:09:24.123456 2012] Apache 2.4 error_log
//	21-Nov-2026 10:00:00.123          BIND named.log
func daemonStamp(b []byte, now time.Time) time.Time {
	if len(b) > 0 && b[0] == '[' {
		b = b[1:]
	}
	if t, ok := ctimeStamp(b, now.Location()); ok {
		return t
	}
	if t, ok := bindStamp(b, now.Location()); ok {
		return t
	}
	return time.Time{}
}

var weekdays = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ctimeStamp reads "Www Mmm dd hh:mm:ss[.frac] YYYY".
func ctimeStamp(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 24 || b[3] != ' ' {
		return time.Time{}, false
	}
	known := false
	for _, w := range weekdays {
		if string(b[:3]) == w {
			known = true
			break
		}
	}
	if !known {
		return time.Time{}, false
	}
	mon := monthIndex(b[4:])
	if mon < 0 || b[7] != ' ' {
		return time.Time{}, false
	}
	i := 8
	if b[i] == ' ' {
		i++
	}
	day, i, ok := digits(b, i, 1, 2)
	if !ok || day < 1 || i >= len(b) || b[i] != ' ' {
		return time.Time{}, false
	}
	hh, mm, ss, ns, i, ok := clock(b, i+1)
	if !ok || i >= len(b) || b[i] != ' ' {
		return time.Time{}, false
	}
	year, _, ok := digits(b, i+1, 4, 4)
	if !ok {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(mon+1), day, hh, mm, ss, ns, loc)
	if t.Day() != day {
		return time.Time{}, false
	}
	return t, true
}

// bindStamp reads BIND's "dd-Mmm-YYYY hh:mm:ss[.frac]".
func bindStamp(b []byte, loc *time.Location) (time.Time, bool) {
	day, i, ok := digits(b, 0, 2, 2)
	if !ok || day < 1 || i+5 > len(b) || b[i] != '-' {
		return time.Time{}, false
	}
	mon := monthIndex(b[i+1:])
	if mon < 0 || b[i+4] != '-' {
		return time.Time{}, false
	}
	year, i, ok := digits(b, i+5, 4, 4)
	if !ok || i >= len(b) || b[i] != ' ' {
		return time.Time{}, false
	}
	hh, mm, ss, ns, _, ok := clock(b, i+1)
	if !ok {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(mon+1), day, hh, mm, ss, ns, loc)
	if t.Day() != day {
		return time.Time{}, false
	}
	return t, true
}

// monthIndex returns 0..11 for a month abbreviation at the start of b, or -1.
func monthIndex(b []byte) int {
	if len(b) < 3 {
		return -1
	}
	for i, name := range months {
		if string(b[:3]) == name {
			return i
		}
	}
	return -1
}

// skipFacilityLevel drops the "<mail.info> " FreeBSD's syslogd -v writes
// between the time and the host: the facility and level of the line.
func skipFacilityLevel(b []byte) []byte {
	if len(b) < 5 || b[0] != '<' {
		return b
	}
	dot := false
	for i := 1; i < len(b) && i < 32; i++ {
		switch c := b[i]; {
		case c == '>':
			if dot && i+1 < len(b) && b[i+1] == ' ' && b[i-1] != '.' {
				return skipBlanks(b[i+1:])
			}
			return b
		case c == '.':
			if dot || i == 1 {
				return b
			}
			dot = true
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			return b
		}
	}
	return b
}
