package receiver

import (
	"bufio"
	"bytes"
	"time"

	"gopkg.in/mcuadros/go-syslog.v2/format"

	"github.com/sysban/sysban"
)

const maxMessageSizeDefault = 64 << 10

// Drop reasons reported in ListenerStats.Dropped.
const (
	ReasonSenderNotAllowed = "sender_not_allowed"
	ReasonTooLarge         = "too_large"
	// ReasonConnectionLimit: a stream connection evicted (closed) to make
	// room for a new one at Options.MaxConnections: the one that had gone
	// longest without a complete frame.
	ReasonConnectionLimit = "connection_limit"
	ReasonEmpty           = "empty"
	ReasonGarbage         = "garbage" // stream bytes that were not a frame
	// ReasonSourceConnectionLimit: a tcp/tls connection evicted at
	// Options.MaxConnectionsPerSource for its source (address, and on
	// loopback the peer's uid): that source's connection silent longest.
	ReasonSourceConnectionLimit = "source_connection_limit"
	// ReasonFirstFrameTimeout: a stream connection closed because no
	// complete frame arrived within Options.FirstFrameTimeout.
	ReasonFirstFrameTimeout = "first_frame_timeout"
	// ReasonFrameTimeout: a stream connection closed because a frame did
	// not complete within Options.FrameTimeout (slowloris).
	ReasonFrameTimeout = "frame_timeout"
	// ReasonRateLimited: a udp message over Options.RatePerSender.
	ReasonRateLimited = "rate_limited"
	// ReasonUDPRemoteRefused: a udp datagram from a non-loopback source
	// while Options.RemoteStreamOnly is set.
	ReasonUDPRemoteRefused = "udp_remote_refused"
	// ReasonTLSHandshake: a TLS connection whose handshake failed or timed
	// out (no certificate, untrusted certificate, wrong protocol, silence).
	ReasonTLSHandshake = "tls_handshake"
	// ReasonTLSClientRefused: a verified TLS client certificate whose names
	// are not in the allowed client names (TLSFiles.ClientNames).
	ReasonTLSClientRefused = "tls_client_refused"
	// ReasonReservedProgram: a message whose program is one sysban writes
	// itself (Options.ReservedPrograms): a syslog sender may not speak
	// for sysban's own sources.
	ReasonReservedProgram = "reserved_program"
)

// Format is sysban's syslog wire format: RFC 6587 framing (octet counting and
// LF/NUL-terminated, decided per frame) and the Parse parser. It implements
// go-syslog.v2's format.Format, and our own listeners use the same type
// (through its unexported fast paths) so there is one framing and one parser.
type Format struct {
	// MaxMessageSize bounds one frame; larger frames are dropped and the
	// stream resynchronised. Zero means 64 KiB.
	MaxMessageSize int
	// Now is the clock used for year inference and the zone of header
	// times without one. Nil means time.Now.
	Now func() time.Time
}

var _ format.Format = (*Format)(nil)

func (f *Format) maxSize() int {
	if f == nil || f.MaxMessageSize <= 0 {
		return maxMessageSizeDefault
	}
	return f.MaxMessageSize
}

func (f *Format) now() time.Time {
	if f == nil || f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

// GetSplitFunc returns a fresh RFC 6587 split function. It keeps state (to
// skip the rest of an oversized frame across reads), so each stream needs
// its own; go-syslog.v2 calls this once per connection.
func (f *Format) GetSplitFunc() bufio.SplitFunc {
	return f.newSplitter(nil).Split
}

// newSplitter is the listeners' way to GetSplitFunc: same framer, plus a
// drop callback for the stats and the log.
func (f *Format) newSplitter(onDrop func(reason string, n int)) *Splitter {
	return NewSplitter(f.maxSize(), onDrop)
}

// newParser is the listeners' fast path to GetParser: a parser owned by one
// goroutine that fills a reused sysban.Message, with no LogParts map and no
// per-message parser allocation.
func (f *Format) newParser() *parser { return newParser() }

// GetParser returns a go-syslog.v2 parser for one frame. line is parsed when
// Parse is called and not retained after.
func (f *Format) GetParser(line []byte) format.LogParser {
	return &LogParser{line: line, now: f.now()}
}

// LogParser adapts Parse to go-syslog.v2's format.LogParser. Our listeners
// do not use it: they parse straight into a reused sysban.Message and skip
// the LogParts map.
type LogParser struct {
	line []byte
	now  time.Time
	loc  *time.Location
	msg  sysban.Message
}

// Parse parses the line; on error Dump still returns the best-effort result.
func (p *LogParser) Parse() error {
	now := p.now
	if p.loc != nil {
		now = now.In(p.loc)
	}
	err := Parse(p.line, now, &p.msg)
	p.line = nil
	return err
}

// Location sets the zone assumed for header times that carry none.
func (p *LogParser) Location(loc *time.Location) { p.loc = loc }

// Message returns the parsed message (valid after Parse).
func (p *LogParser) Message() *sysban.Message { return &p.msg }

// Dump returns the result under go-syslog.v2's key names (the union of its
// RFC 3164 and RFC 5424 keys). hostname is left empty when the sender sent
// none: unlike the library's own RFC 3164 format, ours never invents it.
func (p *LogParser) Dump() format.LogParts {
	m := &p.msg
	return format.LogParts{
		"priority":        int(m.Facility)*8 + int(m.Severity),
		"facility":        int(m.Facility),
		"severity":        int(m.Severity),
		"timestamp":       m.Timestamp,
		"hostname":        m.Hostname,
		"tag":             m.AppName,
		"app_name":        m.AppName,
		"proc_id":         m.ProcID,
		"msg_id":          m.MsgID,
		"structured_data": m.StructuredData,
		"content":         m.Text,
		"message":         m.Text,
	}
}

// Splitter is the RFC 6587 stream framer, usable as a bufio.SplitFunc. Each
// frame is framed on its own merits:
//   - a digit starts an octet count "N SP" followed by N bytes (a trailing
//     LF inside the count, as rsyslog sends, is trimmed);
//   - '<' starts a frame terminated by LF or NUL (a CR before it is trimmed);
//   - LF, CR, NUL and spaces between frames are skipped silently;
//   - anything else is garbage: skipped up to the next '<' or the byte after
//     the next LF/NUL, and reported.
//
// A frame longer than max is dropped (reported as too large) and the stream
// resynchronised: an octet-counted frame by skipping exactly its length, an
// LF frame by skipping to its terminator, so the memory held never exceeds
// max plus a count prefix.
type Splitter struct {
	max     int
	skipN   int  // bytes of an oversized octet-counted frame still to skip
	skipEOL bool // skipping an oversized LF frame up to its terminator
	junk    bool // inside garbage that ran past the end of the last read
	onDrop  func(reason string, n int)
	// atLeast is set while onDrop hears of an LF frame dropped before its
	// end was seen: n is then the bytes read so far, not its size.
	atLeast bool
}

// maxCountDigits bounds the octet count: nine digits is already far above
// any MaxMessageSize; more is garbage, not a length to honour.
const maxCountDigits = 9

// NewSplitter returns a framer for frames up to max bytes. onDrop, if not
// nil, is told of every dropped frame (with its size) and of every garbage
// run (with the bytes seen when it started).
func NewSplitter(max int, onDrop func(reason string, n int)) *Splitter {
	if max <= 0 {
		max = maxMessageSizeDefault
	}
	return &Splitter{max: max, onDrop: onDrop}
}

// midFrame reports whether the splitter is inside a frame it has not
// finished consuming: skipping an oversized frame or a garbage run. Bytes
// the scanner holds unconsumed are the caller's to account for.
func (s *Splitter) midFrame() bool { return s.skipN > 0 || s.skipEOL || s.junk }

// BufferSize is the largest buffer the splitter ever asks bufio.Scanner for.
func (s *Splitter) BufferSize() int { return s.max + maxCountDigits + 2 }

func (s *Splitter) drop(reason string, n int) {
	if s.onDrop != nil {
		s.onDrop(reason, n)
	}
}

// Split implements bufio.SplitFunc.
//
// It keeps going past separators and skipped bytes within one call and only
// returns without a token when it needs more data: bufio.Scanner reads again
// after any token-less return (blocking a stream's next frame until the
// sender writes more) and stops for good if that happens at EOF.
func (s *Splitter) Split(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for advance < len(data) {
		n, tok, err := s.step(data[advance:], atEOF)
		if tok != nil || err != nil {
			return advance + n, tok, err
		}
		if n == 0 {
			break
		}
		advance += n
	}
	return advance, nil, nil
}

func (s *Splitter) step(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	if s.skipN > 0 {
		n := min(s.skipN, len(data))
		s.skipN -= n
		return n, nil, nil
	}
	if s.junk {
		if n, _, _ := s.garbageFrom(data, 0); n > 0 {
			return n, nil, nil
		}
		// A frame starts right here: frame it below.
	}
	if s.skipEOL {
		if i := indexEOL(data); i >= 0 {
			s.skipEOL = false
			return i + 1, nil, nil
		}
		return len(data), nil, nil
	}
	// Separators between frames.
	i := 0
	for i < len(data) && (data[i] == '\n' || data[i] == '\r' || data[i] == 0 || data[i] == ' ' || data[i] == '\t') {
		i++
	}
	if i > 0 {
		return i, nil, nil
	}
	switch c := data[0]; {
	case isDigit(c):
		return s.octetCounted(data, atEOF)
	case c == '<':
		return s.lineFrame(data, atEOF)
	default:
		return s.garbage(data, atEOF)
	}
}

func (s *Splitter) octetCounted(data []byte, atEOF bool) (int, []byte, error) {
	n, i := 0, 0
	for i < len(data) && isDigit(data[i]) {
		if i == maxCountDigits {
			return s.garbage(data, atEOF)
		}
		n = n*10 + int(data[i]-'0')
		i++
	}
	if i == len(data) {
		if atEOF {
			return s.garbage(data, atEOF)
		}
		return 0, nil, nil // need the rest of the count
	}
	if data[i] != ' ' || n == 0 {
		return s.garbage(data, atEOF)
	}
	hdr := i + 1
	if n > s.max {
		s.drop(ReasonTooLarge, n)
		s.skipN = n
		return hdr, nil, nil
	}
	if len(data) < hdr+n {
		if atEOF { // truncated by the sender: keep what came
			return len(data), trimTrailing(data[hdr:]), nil
		}
		return 0, nil, nil
	}
	return hdr + n, trimTrailing(data[hdr : hdr+n]), nil
}

func (s *Splitter) lineFrame(data []byte, atEOF bool) (int, []byte, error) {
	limit := min(len(data), s.max+1) // the terminator may sit just past max
	if i := indexEOL(data[:limit]); i >= 0 {
		return i + 1, trimTrailing(data[:i]), nil
	}
	if len(data) > s.max {
		if i := indexEOL(data); i >= 0 {
			s.drop(ReasonTooLarge, i)
			return i + 1, nil, nil
		}
		s.atLeast = true
		s.drop(ReasonTooLarge, len(data))
		s.atLeast = false
		s.skipEOL = true
		return len(data), nil, nil
	}
	if atEOF {
		return len(data), trimTrailing(data), nil
	}
	return 0, nil, nil
}

// garbage skips to the next plausible frame start: a '<' or the byte after
// an LF/NUL (where an octet count may begin).
func (s *Splitter) garbage(data []byte, atEOF bool) (int, []byte, error) {
	s.drop(ReasonGarbage, len(data))
	return s.garbageFrom(data, 1)
}

// garbageFrom skips garbage from data[from:] on; while no frame start is in
// sight it swallows everything and stays in the garbage state, so that the
// tail of a long junk run is not mistaken for an octet count.
func (s *Splitter) garbageFrom(data []byte, from int) (int, []byte, error) {
	for i := from; i < len(data); i++ {
		switch data[i] {
		case '<':
			s.junk = false
			return i, nil, nil
		case '\n', 0:
			s.junk = false
			return i + 1, nil, nil
		}
	}
	s.junk = true
	return len(data), nil, nil
}

// indexEOL returns the index of the first LF or NUL in b, or -1. The NUL
// search stops at the LF: scanning the whole buffer for a NUL that LF-framed
// senders never send made every frame cost the buffer's length, not its own.
func indexEOL(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i >= 0 {
		b = b[:i]
	}
	if j := bytes.IndexByte(b, 0); j >= 0 {
		return j
	}
	return i
}

// forEachDatagramMessage calls fn for each message in one datagram: the
// whole datagram, or, when it holds several LF-separated lines that each
// start with "<digit", each line (some relays batch lines that way).
// Embedded LFs are otherwise part of the message text.
func forEachDatagramMessage(b []byte, fn func([]byte)) {
	b = trimTrailing(b)
	if bytes.IndexByte(b, '\n') < 0 || !allLinesArePRI(b) {
		fn(b)
		return
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if line = trimTrailing(line); len(line) > 0 {
			fn(line)
		}
	}
}

func allLinesArePRI(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = trimTrailing(line)
		if len(line) == 0 {
			continue
		}
		if len(line) < 2 || line[0] != '<' || !isDigit(line[1]) {
			return false
		}
	}
	return true
}
