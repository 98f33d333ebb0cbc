package pipeline

import (
	"net/netip"
	"time"

	"github.com/sysban/sysban"
)

// Matching one line against one filter, the whole path: failregexes and
// ignoreregexes (match, stateless, safe on any goroutine), then the
// correlations (correlate, which needs the lines in order and the pending
// opens of correlate.go), reported as one result that carries the pattern
// that decided the line. Match is that result as Check and Tester report
// it.

// Match is one filter's verdict on a line, as Check and Tester.Test report
// it.
type Match struct {
	Filter string
	// Pattern indexes the filter's Patterns(): FailRegex, then the mode's
	// failregexes, then each Correlation's Open and Close (see
	// Filter.Patterns).
	Pattern int
	Regex   string // that pattern as written
	// Host is the <HOST> capture; for a Correlated match the correlated
	// host (from whichever of the two lines carried it); for a Pending
	// match the Open's capture, empty when the Close will carry it.
	Host string
	// Addr is Host as a canonical address; invalid when Host is a hostname
	// (hostnames are not banned: they are counted as unresolved).
	Addr netip.Addr
	// Ignored: an IgnoreRegex matched too, so the line is not a failure.
	Ignored     bool
	IgnoreIndex int // index into IgnoreRegex when Ignored; -1 otherwise
	// Pending: the line opened a multi-line failure (no failure yet).
	Pending bool
	// Correlated: the line completed a multi-line failure.
	Correlated bool
	// Repeat: a failure line of an attempt already counted (the filter's
	// AttemptRules, attempt.go), or a provisional line whose attempt is
	// held until its verdict: it counts nothing.
	Repeat bool
	// Count is how many failures the line counts when more than one (an
	// attempt's end line naming several uncounted attempts).
	Count int
}

// newMatch reports r, a result of filter f; ok is false when nothing
// matched.
func newMatch(f *Filter, r result) (Match, bool) {
	if r.pattern == nil {
		return Match{}, false
	}
	m := Match{
		Filter:      f.name,
		Pattern:     r.pattern.index,
		Regex:       r.pattern.src,
		Host:        r.host,
		Ignored:     r.ignore != nil,
		IgnoreIndex: -1,
		Pending:     r.pattern.kind == openPattern,
		Correlated:  r.pattern.kind == closePattern,
		Repeat:      r.repeat,
		Count:       r.n,
	}
	if r.ignore != nil {
		m.IgnoreIndex = r.ignore.index
	}
	if a, err := netip.ParseAddr(r.host); err == nil {
		m.Addr = sysban.CanonicalAddr(a)
	}
	return m, true
}

// result is what one line did to one filter.
type result struct {
	// pattern decided the line; nil when nothing matched. Its kind says
	// what the line is: a failure (failPattern), a pending open
	// (openPattern) or a completed correlation (closePattern).
	pattern *pattern
	// host is the host to count: the capture, for a completed correlation
	// the host of whichever line carried it, for an open its own capture
	// ("" when the close will carry it).
	host string
	// ignore is the ignoreregex that vetoed the line; nil when none did.
	ignore *pattern
	// repeat: a failure line of an attempt already counted (attempt.go),
	// which counts nothing; n: the failures an attempt's end line counts
	// when more than one.
	repeat bool
	n      int
}

// failure reports whether the line counts as a failure of r.host.
func (r *result) failure() bool {
	return r.pattern != nil && r.ignore == nil && r.pattern.kind != openPattern && !r.repeat
}

// match runs the filter's failregexes over text, stopping at the first that
// captures a host, and its ignoreregexes when one did. It keeps no state.
// Failure patterns are tried first because almost every line fails their
// prefilter; ignore patterns only run on lines that would otherwise count.
func (f *Filter) match(text string, prefilter bool) result {
	var r result
	for i := range f.fail {
		p := &f.fail[i]
		if prefilter && !p.pre.mayMatch(text) {
			continue
		}
		host := p.hostIn(text)
		if host == "" {
			continue
		}
		r.pattern = p
		r.host = host
		r.ignore = f.ignored(text, prefilter)
		break
	}
	return r
}

// eval matches text (already trimmed and unwrapped) from message m against
// f: failregexes first, then the Closes of its correlations (a Close counts
// only when its key has a pending Open), then their Opens. st holds the
// correlation state; with st nil (Pipeline.Check) Opens are reported as
// pending but not remembered and Closes never complete. m may be nil.
// clock is called only when a correlation line matched, so the common
// path costs no clock read.
func (f *Filter) eval(text string, m *sysban.Message, st *corrState, clock func() time.Time, prefilter bool) result {
	return f.correlate(f.match(text, prefilter), text, m, st, clock, prefilter)
}

// correlate is eval given r, the result of f.match(text, prefilter), which
// is stateless and may have been computed on another goroutine (Tester's
// Prematch); what is left here is correlation, which must see lines in
// order. A line does one thing only: a failure is not also tried as a
// Close or Open.
func (f *Filter) correlate(r result, text string, m *sysban.Message, st *corrState, clock func() time.Time, prefilter bool) result {
	if r.pattern != nil {
		if f.attempts != nil && st != nil && r.ignore == nil {
			r = f.attempts.account(r, text, m, st, clock, prefilter)
		}
		return r
	}
	if len(f.corr) == 0 {
		f.succeed(text, m, st, clock, prefilter)
		return r
	}
	if st != nil {
		for i := range f.corr {
			p := &f.corr[i].close
			key, host, ok := correlationLine(p, text, m, prefilter)
			if !ok {
				continue
			}
			stored, ok := st.sets[p.corr.set].take(key, clock())
			if !ok {
				continue
			}
			if host == "" {
				host = stored
			}
			out := result{pattern: p, host: host, ignore: f.ignored(text, prefilter)}
			// A completed correlation is a failure line like any other
			// to the attempt rules: sshd's address-less kex line and the
			// "banner exchange" line after it are one probe.
			if f.attempts != nil && out.ignore == nil {
				out = f.attempts.account(out, text, m, st, clock, prefilter)
			}
			return out
		}
	}
	for i := range f.corr {
		p := &f.corr[i].open
		key, host, ok := correlationLine(p, text, m, prefilter)
		if !ok || len(host) > maxHostLen {
			continue
		}
		out := result{pattern: p, host: host, ignore: f.ignored(text, prefilter)}
		// An ignored open is not remembered: the line is excused, so
		// nothing it starts may count.
		if st != nil && out.ignore == nil && st.opens(f, m) {
			st.sets[p.corr.set].put(key, host, clock())
		}
		return out
	}
	f.succeed(text, m, st, clock, prefilter)
	return r
}

// succeed applies the attempt rules' Success lines to text, a line that
// is no failure, open or close (attempt.go).
func (f *Filter) succeed(text string, m *sysban.Message, st *corrState, clock func() time.Time, prefilter bool) {
	if f.attempts != nil && st != nil && len(f.attempts.success) > 0 {
		f.attempts.succeed(text, m, st, clock, prefilter)
	}
}

// correlationLine matches p, a correlation's Open or Close, against text:
// ok when it matched with a usable key and, when p has a host group, with
// a host.
func correlationLine(p *pattern, text string, m *sysban.Message, prefilter bool) (key, host string, ok bool) {
	if prefilter && !p.pre.mayMatch(text) {
		return "", "", false
	}
	var buf [fastMaxSlots]int
	loc := p.find(text, buf[:])
	if loc == nil {
		return "", "", false
	}
	if key, ok = corrKey(p, loc, text, m); !ok {
		return "", "", false
	}
	host = capture(p, loc, text)
	if p.host >= 0 && host == "" {
		return "", "", false
	}
	return key, host, true
}

// corrKey is the key a correlation line carries: its (?P<key>...) capture,
// else the message's ProcID, scoped by the message's hostname so that pids
// and queue ids of different senders never meet. ok is false when there is
// no usable key.
func corrKey(p *pattern, loc []int, text string, m *sysban.Message) (string, bool) {
	var key, hostname string
	if m != nil {
		key, hostname = m.ProcID, m.Hostname
	}
	if p.key >= 0 && loc[2*p.key] >= 0 {
		key = text[loc[2*p.key]:loc[2*p.key+1]]
	}
	if key == "" || len(key) > maxKeyLen || len(hostname) > maxHostLen {
		return "", false
	}
	return hostname + "\x00" + key, true
}

// hostIn matches p against text and returns its host capture, "" when p
// does not match or captures no single address.
func (p *pattern) hostIn(text string) string {
	var buf [fastMaxSlots]int
	loc := p.find(text, buf[:])
	if loc == nil {
		return ""
	}
	return capture(p, loc, text)
}

// capture returns p's host capture in text, "" when p has none, it did
// not take part in the match, or the line names no single address
// (hostCapture).
func capture(p *pattern, loc []int, text string) string {
	if p.host < 0 || loc[2*p.host] < 0 {
		return ""
	}
	host, ok := hostCapture(p, text, loc[2*p.host], loc[2*p.host+1])
	if !ok {
		return ""
	}
	return host
}

// ignored returns the first IgnoreRegex matching text, nil when none does.
func (f *Filter) ignored(text string, prefilter bool) *pattern {
	for i := range f.ignore {
		p := &f.ignore[i]
		if prefilter && !p.pre.mayMatch(text) {
			continue
		}
		if p.matches(text) {
			return p
		}
	}
	return nil
}
