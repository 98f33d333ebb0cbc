package receiver

import (
	"bytes"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sysban/sysban"
)

// The fast paths below parse the header shapes real forwarders send by hand,
// without leodido's machines: the machines cost a copy of the message, a
// time.Parse of the header time and a string per field, and were half of
// the CPU of a busy TCP listener. Each fast path accepts an input only when
// it is sure to produce exactly the Message (and the nil error) the full
// path would, and otherwise returns false with m untouched, so the full
// path in parse.go stays the definition of what a message means.
// FuzzFastPathMatchesFull holds the two to that.
//
// Each accepted message costs one string allocation (plus an IPv6 host's
// text and the maps of structured data): the header fields and the text
// are substrings of one copy of the bytes after the time. A field kept
// alone pins at most that one message, which MaxMessageSize bounds.

// fast3164 is the fast path of parse3164 for messages with a header time.
func (p *parser) fast3164(rest []byte, now time.Time, m *sysban.Message) bool {
	ts, n := p.stamp(rest, now)
	if n == 0 {
		// No header time: parse3164 treats a leading "word word" as text
		// there, after asking the machine; leave that shape to it.
		return false
	}
	body := skipSpaces(rest[n:])
	if len(body) == 0 || bytes.HasPrefix(body, forwardedFrom) {
		return false // a relayed message: parse3164 takes its origin
	}
	hostEnd, kind, addr := firstWord(body)
	var ipHost string
	switch kind {
	case wordUnsure:
		return false
	case wordIPv6:
		// parse3164 peels an IPv6 literal off before the machine sees the
		// rest; the machine then looks for a hostname again. Only the
		// common follow-up, a tag, is taken here.
		body = skipSpaces(body[hostEnd:])
		if len(body) == 0 {
			return false
		}
		if _, k, _ := firstWord(body); k != wordNone && k != wordIPv6 {
			return false
		}
		ipHost = addr.String()
		hostEnd = 0
	case wordNone:
		hostEnd = 0
	}
	msgStart := hostEnd
	for msgStart < len(body) && body[msgStart] == ' ' {
		msgStart++
	}
	if hostEnd > 0 && msgStart == len(body) {
		return false // "host" and blanks only: rare, and the machine's call
	}
	s := string(body)
	tagEnd, pidStart, pidEnd, textStart := tagSplit(body[msgStart:])
	m.Timestamp = ts
	m.Hostname = s[:hostEnd]
	if ipHost != "" {
		m.Hostname = ipHost
	}
	m.AppName = s[msgStart : msgStart+tagEnd]
	m.ProcID = s[msgStart+pidStart : msgStart+pidEnd]
	m.Text = s[msgStart+textStart:]
	return true
}

// How leodido's rfc3164 machine reads the first word of what follows the
// header time, as firstWord predicts it.
const (
	wordNone   = iota // not a hostname: the machine reports none
	wordHost          // a hostname the machine reports as it is
	wordIPv6          // an IPv6 literal parse3164 peels off itself
	wordUnsure        // a shape whose reading is left to the machine
)

// firstWord predicts whether the rfc3164 machine (as parse3164 calls it,
// control bytes blanked) takes body's first word for a hostname, and
// returns where the word ends. Its hostname is 1..255 graphic ASCII bytes
// without ':' followed by a space; a word holding a ':' cannot be one.
// Anything the prediction is not certain of is wordUnsure:
//   - a word ending in any byte other than a space (a tab, a control byte
//     the machine sees as a space, a byte above 0x7e);
//   - '[' or ']' in the word: the machine's tag alternative moves the mark
//     its hostname is cut from, giving hostnames that are not the word;
//   - "-", which the machine reports as no hostname, and words over 255
//     bytes.
func firstWord(body []byte) (end, kind int, addr netip.Addr) {
	colon, bracket := false, false
	addrLike, zone := true, false // only hex digits, '.' and ':' before any '%'
	i := 0
	for ; i < len(body); i++ {
		c := body[i]
		if c <= ' ' || c >= 0x7f {
			break
		}
		switch {
		case c == ':':
			colon = true
		case c == '[' || c == ']':
			bracket = true
		case c == '%':
			zone = true
		}
		if !zone && !isHexDigit(c) && c != '.' && c != ':' {
			addrLike = false
		}
	}
	if i == len(body) {
		return i, wordNone, addr // no space after it: never a hostname
	}
	if body[i] != ' ' {
		return i, wordUnsure, addr
	}
	if colon {
		// parse3164 asks netip.ParseAddr about any word with a ':'; a
		// tag such as "sshd[1]:" cannot be an address, and asking would
		// cost a string and an error per message.
		if addrLike {
			if a, err := netip.ParseAddr(string(body[:i])); err == nil {
				return i, wordIPv6, a
			}
		}
		return i, wordNone, addr
	}
	if bracket || i > 255 || i == 1 && body[0] == '-' {
		return i, wordUnsure, addr
	}
	return i, wordHost, addr
}

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func skipSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// tagBytes are the bytes a tag is made of: printable ASCII but ':', '['
// and ']'. A table, because tagSplit tests every byte of every tag. It is
// never written after init.
var tagBytes = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = c != ':' && c != '[' && c != ']'
	}
	return t
}()

// tagSplit finds splitTag's "tag[pid]: " at the start of b: the tag is
// b[:tagEnd], the pid b[pidStart:pidEnd] and the message starts at
// textStart. Without a tag all four are 0.
func tagSplit(b []byte) (tagEnd, pidStart, pidEnd, textStart int) {
	i := 0
	for i < len(b) && i < 48 && tagBytes[b[i]] {
		i++
	}
	if i == 0 {
		return 0, 0, 0, 0
	}
	tagEnd = i
	if i < len(b) && b[i] == '[' {
		j := bytes.IndexByte(b[i:], ']')
		if j < 0 {
			return 0, 0, 0, 0
		}
		for _, c := range b[i+1 : i+j] {
			// Bytes, not runes: any byte above 0x7e is part of a rune
			// (or an invalid one) that is not printable ASCII either.
			if c <= ' ' || c >= 0x7f {
				return 0, 0, 0, 0
			}
		}
		pidStart, pidEnd = i+1, i+j
		i += j + 1
	}
	if i >= len(b) || b[i] != ':' {
		return 0, 0, 0, 0
	}
	i++
	if i < len(b) && b[i] == ' ' {
		i++
	}
	if pidStart == 0 {
		pidStart, pidEnd = tagEnd, tagEnd
	}
	return tagEnd, pidStart, pidEnd, i
}

// fast5424 is the fast path of parse5424 for b, whose PRI is n bytes long.
// It takes what leodido's rfc5424 machine accepts without error, except
// structured data with escapes (rare), and reads it the same way: fields of
// graphic ASCII within the RFC's lengths ("-" for none), the RFC 3339 time
// with at most six fraction digits, and any bytes as MSG.
func (p *parser) fast5424(b []byte, n int, m *sysban.Message) bool {
	return p.read5424(b, n, m, false)
}

// read5424 is fast5424, and with lenientSD the second reading parse5424
// gives a message the machine refused: the same header rules, but a
// PARAM-VALUE may hold an unescaped ']' (RFC 5424 6.3.3 asks senders to
// escape it; real ones forget, and the machine then loses the whole
// header) and backslash escapes, which are undone. A value still ends at
// the first unescaped '"', and what follows it must be a space and the
// next PARAM or the closing ']': a value with a stray '"' is ambiguous
// and refused. The header fields come before the structured data, so no
// value can change the hostname or the program; leniency decides only
// where MSG starts, and the quotes decide that. m is written only when
// it returns true.
func (p *parser) read5424(b []byte, n int, m *sysban.Message, lenientSD bool) bool {
	if n > 3 && b[1] == '0' {
		return false // "<013>": the machine wants no leading zero
	}
	i := n
	for i < len(b) && b[i] != ' ' {
		i++ // the VERSION isRFC5424 checked
	}
	i++
	var ts time.Time
	hasTime := false
	if i < len(b) && b[i] == '-' {
		i++
	} else {
		var k int
		var ok bool
		if ts, k, ok = stamp5424(b[i:]); !ok {
			return false
		}
		hasTime = true
		i += k
	}
	if i >= len(b) || b[i] != ' ' {
		return false
	}
	i++
	start := i // of the copy the strings are cut from
	var f [4][2]int
	for k, max := range [4]int{255, 48, 128, 32} {
		j := i
		for j < len(b) && b[j] > ' ' && b[j] < 0x7f {
			j++
		}
		if j == i || j-i > max || j >= len(b) || b[j] != ' ' {
			return false
		}
		if j-i != 1 || b[i] != '-' {
			f[k] = [2]int{i - start, j - start}
		}
		i = j + 1
	}
	sdStart := i - start
	var sd []sdItem
	if i < len(b) && b[i] == '-' {
		i++
	} else {
		var k int
		var ok bool
		if sd, k, ok = p.scanSD(b[i:], lenientSD); !ok {
			return false
		}
		for x := range sd {
			sd[x].shift(sdStart)
		}
		i += k
	}
	if i < len(b) && b[i] != ' ' {
		return false
	}
	textStart := min(i+1, len(b)) - start
	s := string(b[start:])
	if hasTime {
		m.Timestamp = ts
	}
	m.Hostname = s[f[0][0]:f[0][1]]
	m.AppName = s[f[1][0]:f[1][1]]
	m.ProcID = s[f[2][0]:f[2][1]]
	m.MsgID = s[f[3][0]:f[3][1]]
	if len(sd) > 0 {
		m.StructuredData = buildSD(s, sd)
	}
	m.Text = trim5424Msg(s[textStart:])
	return true
}

// stamp5424 reads the RFC 5424 TIMESTAMP as the rfc5424 machine does
// (time.Parse with layout rfc5424.RFC3339MICRO): "T" and "Z" upper case, a
// fraction of one to six digits, an offset "Z" or "±hh:mm". The result is
// time.Parse's: a numeric offset that is the local zone's at that instant
// gives time.Local, any other a fixed zone. It is not readISO (stamp.go)
// with options because the fast path must refuse what the machine refuses
// (lower-case "t", a seventh fraction digit, a leap second) and reads fixed
// positions; TestRFC3339Readers pins how the readers differ.
func stamp5424(b []byte) (time.Time, int, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0, false
	}
	year, _, ok1 := digits(b[:4], 0, 4, 4)
	mon, _, ok2 := digits(b[:7], 5, 2, 2)
	day, _, ok3 := digits(b[:10], 8, 2, 2)
	hh, _, ok4 := digits(b[:13], 11, 2, 2)
	mm, _, ok5 := digits(b[:16], 14, 2, 2)
	ss, _, ok6 := digits(b[:19], 17, 2, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		mon < 1 || mon > 12 || day < 1 || day > daysIn(time.Month(mon), year) ||
		hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, 0, false
	}
	i := 19
	ns := 0
	if b[i] == '.' {
		frac, j, ok := digits(b, i+1, 1, 6)
		if !ok || j < len(b) && isDigit(b[j]) {
			return time.Time{}, 0, false
		}
		for k := j - i - 1; k < 9; k++ {
			frac *= 10
		}
		ns, i = frac, j
	}
	if i >= len(b) {
		return time.Time{}, 0, false
	}
	if b[i] == 'Z' {
		return time.Date(year, time.Month(mon), day, hh, mm, ss, ns, time.UTC), i + 1, true
	}
	if b[i] != '+' && b[i] != '-' || i+6 > len(b) || b[i+3] != ':' {
		return time.Time{}, 0, false
	}
	oh, _, ok1 := digits(b[:i+3], i+1, 2, 2)
	om, _, ok2 := digits(b[:i+6], i+4, 2, 2)
	if !ok1 || !ok2 || oh > 23 || om > 59 {
		return time.Time{}, 0, false
	}
	off := oh*3600 + om*60
	if b[i] == '-' {
		off = -off
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, ns, time.UTC).Add(-time.Duration(off) * time.Second)
	if lt := t.In(time.Local); localOffset(lt) == off {
		return lt, i + 6, true
	}
	return t.In(time.FixedZone("", off)), i + 6, true
}

func localOffset(t time.Time) int {
	_, off := t.Zone()
	return off
}

// sdItem is one SD-ELEMENT's SD-ID (elem set, value unused) or one of its
// SD-PARAMs, as offsets into the bytes scanSD was given.
type sdItem struct {
	elem        bool
	escaped     bool // the value holds backslash escapes to undo
	name, value [2]int
}

func (it *sdItem) shift(d int) {
	it.name[0] += d
	it.name[1] += d
	it.value[0] += d
	it.value[1] += d
}

// scanSD reads STRUCTURED-DATA at the start of b as the rfc5424 machine
// accepts it, except that it gives up (ok false) on a backslash in a
// value rather than unescape. lenient accepts ']' inside a value and reads
// backslash escapes (read5424 says when). It returns the items in p's
// scratch slice and the bytes read.
func (p *parser) scanSD(b []byte, lenient bool) (items []sdItem, n int, ok bool) {
	items = p.sd[:0]
	defer func() {
		if cap(items) > cap(p.sd) {
			p.sd = items[:0]
		}
	}()
	i := 0
	for i < len(b) && b[i] == '[' {
		id, j, ok := sdName(b, i+1)
		if !ok {
			return nil, 0, false
		}
		for _, it := range items {
			if it.elem && string(b[it.name[0]:it.name[1]]) == string(b[id[0]:id[1]]) {
				return nil, 0, false // a repeated SD-ID is an error
			}
		}
		items = append(items, sdItem{elem: true, name: id})
		i = j
		for i < len(b) && b[i] == ' ' {
			name, j, ok := sdName(b, i+1)
			if !ok || j+1 >= len(b) || b[j] != '=' || b[j+1] != '"' {
				return nil, 0, false
			}
			v := j + 2
			k, escaped := v, false
			for k < len(b) && b[k] != '"' {
				if !lenient && (b[k] == '\\' || b[k] == ']') {
					break
				}
				if b[k] == '\\' && k+1 < len(b) {
					escaped = true
					k++ // the escaped byte, '"' included
				}
				k++
			}
			if k >= len(b) || b[k] != '"' || !utf8.Valid(b[v:k]) {
				return nil, 0, false
			}
			items = append(items, sdItem{name: name, value: [2]int{v, k}, escaped: escaped})
			i = k + 1
		}
		if i >= len(b) || b[i] != ']' {
			return nil, 0, false
		}
		i++
	}
	if len(items) == 0 {
		return nil, 0, false
	}
	return items, i, true
}

// sdName reads an SD-NAME (1 to 32 graphic ASCII bytes other than '=',
// ']' and '"') at b[i:].
func sdName(b []byte, i int) (span [2]int, end int, ok bool) {
	j := i
	for j < len(b) && j-i <= 32 && b[j] > ' ' && b[j] < 0x7f && b[j] != '=' && b[j] != ']' && b[j] != '"' {
		j++
	}
	if j == i || j-i > 32 {
		return span, 0, false
	}
	return [2]int{i, j}, j, true
}

// buildSD makes the StructuredData map of items, whose offsets are into s.
// A parameter named twice keeps its last value, as the machine does.
func buildSD(s string, items []sdItem) map[string]map[string]string {
	sd := make(map[string]map[string]string)
	var cur map[string]string
	for _, it := range items {
		if it.elem {
			cur = make(map[string]string)
			sd[s[it.name[0]:it.name[1]]] = cur
			continue
		}
		v := s[it.value[0]:it.value[1]]
		if it.escaped {
			v = unescapeSD(v)
		}
		cur[s[it.name[0]:it.name[1]]] = v
	}
	return sd
}

// unescapeSD undoes the escapes RFC 5424 6.3.3 defines, '\"', '\\' and
// '\]'; a backslash before any other byte is kept, as the RFC says.
func unescapeSD(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// stampCache remembers the last header time a parser read, because a busy
// sender stamps hundreds of messages with the same second, and reading a
// BSD time (year inference and time.Date) was a quarter of a stream's
// parse. A hit returns exactly what parseStamp would.
type stampCache struct {
	key [40]byte // the stamp's bytes
	n   int      // its length; 0: nothing cached
	t   time.Time
	// A BSD time depends on now through year inference: it is the same
	// for every now in [from, to) in loc, which is while now+yearSlack
	// stays in t's year and not before t (see inferYear). An RFC 3339
	// time does not depend on now.
	bsd      bool
	loc      *time.Location
	from, to time.Time
}

// stamp is parseStamp through p's cache.
func (p *parser) stamp(b []byte, now time.Time) (time.Time, int) {
	c := &p.stamps
	if t, n, ok := c.hit(b, now); ok {
		return t, n
	}
	t, n := parseStamp(b, now)
	c.store(b, t, n, now)
	return t, n
}

// readBSD is parseBSD through c (ParseFileLine reads ISO times by other
// rules than parseStamp, so only its BSD times are cached).
func (c *stampCache) readBSD(b []byte, now time.Time) (time.Time, int, bool) {
	if t, n, ok := c.hit(b, now); ok && c.bsd {
		return t, n, true
	}
	t, n, ok := parseBSD(b, now)
	if ok {
		c.store(b, t, n, now)
	}
	return t, n, ok
}

// hit returns the cached time when b starts with the cached stamp and now
// is in the range it holds for.
func (c *stampCache) hit(b []byte, now time.Time) (time.Time, int, bool) {
	if n := c.n; n > 0 && len(b) >= n && (len(b) == n || b[n] == ' ') && string(b[:n]) == string(c.key[:n]) {
		// parseStamp reads the stamp and checks only that a space or
		// the end follows it, so the same bytes give the same stamp.
		if !c.bsd || now.Location() == c.loc && !now.Before(c.from) && now.Before(c.to) {
			return c.t, n, true
		}
	}
	return time.Time{}, 0, false
}

// store caches t, read from the first n bytes of b at now (n == 0: no
// time was read, and nothing is cached).
func (c *stampCache) store(b []byte, t time.Time, n int, now time.Time) {
	c.n = 0
	if n > 0 && n <= len(c.key) {
		copy(c.key[:], b[:n])
		c.n, c.t = n, t
		c.bsd = !isDigit(b[0])
		if c.bsd {
			c.loc = now.Location()
			c.from = t.Add(-yearSlack)
			c.to = time.Date(t.Year()+1, time.January, 1, 0, 0, 0, 0, c.loc).Add(-yearSlack)
		}
	}
}
