package receiver

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/sysban/sysban"
)

// Defaults applied when a message has no valid PRI: RFC 3164 section 4.3.3
// says a relay must treat such a message as user.notice (PRI 13).
const (
	defaultFacility = 1
	defaultSeverity = 5
)

// yearSlack is how far in the future an RFC 3164 date (which has no year) may
// lie before we decide it belongs to the previous year. Clocks on senders and
// on the receiver drift and messages sit in queues, so "in the future" by a
// few days is still this year; a Dec 31 line seen on Jan 1 is last year's.
const yearSlack = 7 * 24 * time.Hour

var (
	errNoPRI     = errors.New("receiver: parse: missing or invalid <PRI>")
	errEmpty     = errors.New("receiver: parse: empty message after <PRI>")
	errLibPanic  = errors.New("receiver: parse: syslog parser panicked")
	errNoMessage = errors.New("receiver: parse: no message part")
)

// parser holds the leodido/go-syslog machines (nil until a message needs
// them), scratch buffers and the last header time read. None of it is safe
// for concurrent use, so each listener goroutine (and each stream
// connection) owns one parser; that keeps the hot path free of locks and of
// per-message machine allocations.
type parser struct {
	m3164   syslog.Machine
	m5424   syslog.Machine
	scratch []byte
	// full turns the fast paths (parse_fast.go) off, so that tests can
	// hold them to what the full path makes of the same bytes.
	full   bool
	sd     []sdItem // scratch for fast5424
	stamps stampCache
}

// newParser returns a parser whose machines are made on first use: most
// messages take a fast path and never need them, and Parse makes a parser
// per call.
func newParser() *parser { return &parser{} }

// Parse parses one syslog message (RFC 5424, or any of the RFC 3164 shapes
// real forwarders send) into m. It fills every field except Received,
// Listener and Sender, which belong to the socket. now is used to infer the
// year of RFC 3164 dates, and its location is the time zone assumed for
// header times that carry none (pass time.Now() for the local zone).
//
// Parse never panics. On error m still holds whatever could be recovered and
// at least the message text (the raw bytes when nothing else parsed), with
// PRI defaulting to 13 (user.notice), so nothing is lost.
//
// b is not retained: every string in m is a copy. The strings of one
// message may share one copy (the fast paths make one per message), so a
// field kept on its own keeps that message's bytes alive, no more.
func Parse(b []byte, now time.Time, m *sysban.Message) error {
	return newParser().parse(b, now, m)
}

func (p *parser) parse(b []byte, now time.Time, m *sysban.Message) (err error) {
	b = trimTrailing(b)
	m.Facility, m.Severity = defaultFacility, defaultSeverity
	pri, n, ok := parsePRI(b)
	if !ok {
		m.Text = string(b)
		return errNoPRI
	}
	m.Facility, m.Severity = pri/8, pri%8
	rest := b[n:]
	if len(rest) == 0 {
		return errEmpty
	}
	// The third-party machines are generated state machines; a bug in them
	// must cost one message, never the daemon.
	defer func() {
		if r := recover(); r != nil {
			clearHeader(m)
			m.Text = string(rest)
			err = fmt.Errorf("%w: %v", errLibPanic, r)
		}
	}()
	if isRFC5424(rest) {
		if !p.full && p.fast5424(b, n, m) {
			return nil
		}
		return p.parse5424(b, rest, m)
	}
	if !p.full && p.fast3164(rest, now, m) {
		return nil
	}
	return p.parse3164(rest, now, m)
}

func clearHeader(m *sysban.Message) {
	m.Timestamp = time.Time{}
	m.Hostname, m.AppName, m.ProcID, m.MsgID = "", "", "", ""
	m.StructuredData = nil
}

// trimTrailing drops the LF, CR and NUL terminators senders append (glibc
// and journald NUL-terminate on local sockets, many add LF).
func trimTrailing(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// parsePRI reads "<N>" with N in 0..191 and at most three digits.
func parsePRI(b []byte) (pri uint8, n int, ok bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, 0, false
	}
	v := 0
	i := 1
	for ; i < len(b) && i <= 4 && isDigit(b[i]); i++ {
		v = v*10 + int(b[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(b) || b[i] != '>' || v > 191 {
		return 0, 0, false
	}
	return uint8(v), i + 1, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isRFC5424 reports whether what follows the PRI is an RFC 5424 VERSION
// ("1 ", up to three digits then a space). An RFC 3164 header continues with
// a month name or an RFC 3339 year (four digits then '-'), never this.
func isRFC5424(rest []byte) bool {
	i := 0
	for i < len(rest) && i < 3 && isDigit(rest[i]) {
		i++
	}
	return i > 0 && rest[0] != '0' && i < len(rest) && rest[i] == ' '
}

func (p *parser) parse5424(full, rest []byte, m *sysban.Message) error {
	if p.m5424 == nil {
		p.m5424 = rfc5424.NewMachine(rfc5424.WithBestEffort())
	}
	msg, err := p.m5424.Parse(full)
	if err != nil && p.read5424(full, len(full)-len(rest), m, true) {
		return nil // an unescaped ']' inside a quoted SD value (read5424)
	}
	sm, _ := msg.(*rfc5424.SyslogMessage)
	if sm == nil {
		m.Text = string(rest)
		if err == nil {
			err = errNoMessage
		}
		return fmt.Errorf("receiver: parse rfc5424: %w", err)
	}
	if sm.Timestamp != nil {
		m.Timestamp = *sm.Timestamp
	}
	m.Hostname = deref(sm.Hostname)
	m.AppName = deref(sm.Appname)
	m.ProcID = deref(sm.ProcID)
	m.MsgID = deref(sm.MsgID)
	if sm.StructuredData != nil && len(*sm.StructuredData) > 0 {
		m.StructuredData = *sm.StructuredData
	}
	m.Text = trim5424Msg(deref(sm.Message))
	if err != nil {
		// Best effort stopped somewhere (truncated SD, bad timestamp...).
		// The header fields it did get are kept, but the text must not be
		// lost: fall back to everything after the PRI.
		if sm.Message == nil {
			m.Text = string(rest)
		}
		return fmt.Errorf("receiver: parse rfc5424: %w", err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// parse3164 handles the RFC 3164 family. The header time comes in too many
// shapes for leodido's rfc3164 machine (zero-padded days, RFC 3339 with
// fractions as rsyslog's RSYSLOG_ForwardFormat sends, no time at all), and
// it needs the year fixed at construction while we must infer it per
// message. So we parse PRI and time ourselves and hand the machine a
// canonical "<PRI>Jan  1 00:00:00 " header followed by the rest, letting it do
// the part it is good at: telling "host tag[pid]: msg" (rsyslog, syslog-ng)
// from "tag[pid]: msg" (FreeBSD, busybox, glibc, journald — no hostname).
//
// The machine also rejects control bytes in the message and cuts it at an
// LF; we pass it a copy with control bytes blanked and take the message text
// from the original bytes after the header it found, so NULs, LFs and
// invalid UTF-8 reach the filters exactly as sent.
func (p *parser) parse3164(rest []byte, now time.Time, m *sysban.Message) error {
	if host, inner, ok := relayed(rest, now); ok {
		err := p.parse3164Once(inner, now, m)
		m.Hostname = host
		return err
	}
	return p.parse3164Once(rest, now, m)
}

// forwardedFrom starts the body of a message FreeBSD's syslogd relays in
// the RFC 3164 form: "<PRI>TIME Forwarded from HOST: tag[pid]: msg". The
// relay writes no hostname of its own; HOST is where the message came from.
var forwardedFrom = []byte("Forwarded from ")

// relayed recognises a relayed message and returns its origin HOST and the
// message as HOST sent it ("TIME tag[pid]: msg"), for one ordinary parse.
// A HOST must be one word of hostname or address characters; anything else
// is left as text. Only the outer prefix is taken: a text that says
// "Forwarded from" again is text, so a sender cannot make the parser loop.
func relayed(rest []byte, now time.Time) (host string, inner []byte, ok bool) {
	_, n := parseStamp(rest, now)
	body := skipSpaces(rest[n:])
	if !bytes.HasPrefix(body, forwardedFrom) {
		return "", nil, false
	}
	after := body[len(forwardedFrom):]
	end := bytes.Index(after, []byte(": "))
	if end <= 0 || end > 255 {
		return "", nil, false
	}
	for _, c := range after[:end] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return "", nil, false
		}
	}
	inner = make([]byte, 0, n+1+len(after)-end-2)
	inner = append(inner, rest[:n]...)
	if n > 0 {
		inner = append(inner, ' ')
	}
	inner = append(inner, skipSpaces(after[end+2:])...)
	return string(after[:end]), inner, true
}

func (p *parser) parse3164Once(rest []byte, now time.Time, m *sysban.Message) error {
	ts, n := parseStamp(rest, now)
	m.Timestamp = ts
	body := rest[n:]
	for len(body) > 0 && body[0] == ' ' {
		body = body[1:]
	}
	if len(body) == 0 {
		m.Text = string(rest[n:]) // only blanks, but nothing is dropped
		return errEmpty
	}
	// An IPv6 literal as hostname (rsyslog sends one when the sender has no
	// name) contains ':' and would be read as a tag; peel it off ourselves.
	var ipHost string
	if sp := bytes.IndexByte(body, ' '); sp > 0 && bytes.IndexByte(body[:sp], ':') >= 0 {
		if a, err := netip.ParseAddr(string(body[:sp])); err == nil {
			ipHost = a.String()
			body = bytes.TrimLeft(body[sp:], " ")
			if len(body) == 0 {
				m.Hostname = ipHost
				return errEmpty
			}
		}
	}
	const header = "<13>Jan  1 00:00:00 "
	buf := append(p.scratch[:0], header...)
	for _, c := range body {
		if c < 0x20 && c != '\t' || c == 0x7f {
			c = ' '
		}
		buf = append(buf, c)
	}
	if cap(buf) <= 2*maxMessageSizeDefault {
		p.scratch = buf // keep for reuse, but do not pin a huge buffer
	}
	if p.m3164 == nil {
		p.m3164 = rfc3164.NewMachine(rfc3164.WithBestEffort())
	}
	msg, err := p.m3164.Parse(buf)
	sm, _ := msg.(*rfc3164.SyslogMessage)
	if err != nil || sm == nil {
		m.Text = string(body)
		if err == nil {
			err = errNoMessage
		}
		return fmt.Errorf("receiver: parse rfc3164: %w", err)
	}
	if n == 0 && sm.Hostname != nil {
		// No header time: RFC 3164 section 4.3.3 makes all of it CONTENT.
		// We still accept a leading "tag[pid]:" (senders that omit the
		// time do not add a hostname), but a "word word" start is text,
		// not a hostname.
		m.Text = string(body)
		return nil
	}
	if sm.Hostname != nil && (hostEnd(body, *sm.Hostname) == 0 || strings.ContainsAny(*sm.Hostname, "[]")) {
		// No hostname has brackets, and the machine may even cut its
		// hostname from inside the first word: "host[1] sshd[2]: x"
		// gives "1]", "sshd[2] x: y" gives "2]". A word with brackets
		// followed by a space is neither a hostname nor a tag (a tag
		// ends in ':'), so none of it is a header: a sender's text must
		// not make one up (afterStamp in filelog.go reads file lines
		// by the same rule).
		m.Hostname = ipHost
		m.Text = string(body)
		return nil
	}
	m.Hostname = deref(sm.Hostname)
	if ipHost != "" {
		if m.Hostname != "" { // "addr word rest": the word was not a hostname
			m.AppName, m.ProcID = "", ""
			m.Text = string(body)
			m.Hostname = ipHost
			return nil
		}
		m.Hostname = ipHost
	}
	m.AppName = deref(sm.Appname)
	m.ProcID = deref(sm.ProcID)
	// Check the machine's split against the bytes: in best-effort mode it
	// can return a tag together with a message that starts inside the tag
	// ("sshd[1]:msg" gives tag "sshd" and message "1]:msg"). The text is
	// always taken from the original bytes, after the header we verified.
	off := 0
	if sm.Hostname != nil {
		off = hostEnd(body, *sm.Hostname)
	}
	text := splitTag(body[off:], m)
	if sm.Message != nil && *sm.Message == string(text) {
		m.Text = *sm.Message // already a copy: save an allocation
	} else {
		m.Text = string(text)
	}
	return nil
}

// trim5424Msg drops the UTF-8 BOM RFC 5424 allows before MSG (it marks the
// encoding, it is not text) and leading spaces: rsyslog's
// RSYSLOG_SyslogProtocol23Format relays RFC 3164 input with the space after
// "tag:" still in %msg%, and filters anchored at the text start must see the
// same text whichever format carried it.
func trim5424Msg(s string) string {
	s = strings.TrimPrefix(s, "\ufeff")
	return strings.TrimLeft(s, " ")
}

// hostEnd returns where the text after host and its blanks starts in body
// (0 if body does not start with "host ").
func hostEnd(body []byte, host string) int {
	if len(body) <= len(host) || string(body[:len(host)]) != host || body[len(host)] != ' ' {
		return 0
	}
	i := len(host)
	for i < len(body) && body[i] == ' ' {
		i++
	}
	return i
}

// splitTag checks that b starts with m's "AppName[ProcID]: " and returns the
// message after it. When it does not, it reads the tag itself: up to 48
// printable ASCII bytes other than ':', '[' and ']', an optional "[pid]"
// (no blanks), then ':' and one
// optional space (some senders omit it). Without such a tag, AppName and
// ProcID are cleared and all of b is the message.
func splitTag(b []byte, m *sysban.Message) []byte {
	tagEnd, pidStart, pidEnd, textStart := tagSplit(b)
	if tagEnd == 0 {
		m.AppName, m.ProcID = "", ""
		return b
	}
	tag, pid := b[:tagEnd], b[pidStart:pidEnd]
	if m.AppName != string(tag) || m.ProcID != string(pid) {
		m.AppName, m.ProcID = string(tag), string(pid)
	}
	return b[textStart:]
}
