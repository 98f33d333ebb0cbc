package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/filters"
)

// One attempt, one failure. A daemon and its PAM stack often print several
// failure lines about one password: sshd's pam_unix line and its "Failed
// password", Dovecot's passwd-file mismatch, pam_unix line and auth
// worker's pam_authenticate() failure. maxretry counts attempts, so a
// filter's AttemptRules tie those lines into attempts and count each
// attempt once (issue 15).
//
// The lines of one attempt are tied by the client's address (the only
// thing all of them carry: pam_unix has no session id, and under
// keyboard-interactive sshd runs PAM in a child with a pid of its own)
// and by the kind of line: an attempt holds at most one line of each kind.
// A failure line of kind k joins the oldest open attempt of its address
// that has no line of kind k yet and counts nothing; when every open
// attempt has one, it opens a new attempt and counts one failure. So the
// count is never below the number of lines of the most frequent kind
// (each attempt prints its pam_unix line, or its "Failed" verdict), and
// concurrent sessions of one address each get their own attempt. An open
// attempt closes after AttemptRules.Window, and each address keeps at
// most maxOpenAttempts open.
//
// End lines say a session ended after N attempts ("Disconnected (auth
// failed, 3 attempts)", sshd's "Connection closed by authenticating user
// ... [preauth]", N = 1 when the line gives no number). They count what
// the attempt lines did not: N minus the attempts counted for the address
// since its last end, never below zero. With auth_verbose = no, where the
// end line is Dovecot's only line, it counts its N; with every attempt
// already counted, it adds nothing.
//
// Quiet lines are failure lines that count nothing on their own: a
// passdb that does not know the user, when a later passdb may (the login
// may yet succeed). The session's end line counts the attempt if nothing
// else did.
//
// Provisional lines are attempt lines whose attempt may yet succeed:
// pam_unix stacked "sufficient" before pam_sss or pam_ldap logs its
// failure, and the next module accepts the password. An attempt such a
// line opens is held, counting nothing, until the daemon's verdict: a
// line of another kind joining it ("Failed password") counts it; a
// Success line of the address ("Accepted password") drops it. A held
// attempt also counts when its address opens another attempt (the
// client went on to the next password) or ends a session, and, once its
// window has passed, at the address's next attempt line: a verdict that
// never came does not let an attempt go uncounted. Lines are held only
// on senders known to log verdicts (they have logged a Success line):
// a log with PAM's lines alone counts each at once.
//
// Resend lines are the copies a UDP client's retransmissions make the
// server print: tied by address and source port, not by kind
// (attempt_resend.go).
//
// Success lines are not failure lines: they erase nothing counted
// before them (attackers try users until one works), and drop only the
// address's held attempt, the one that succeeded. The rules are
// filters.AttemptRules, data of the filter's Spec.

// DefaultAttemptWindow is how long an attempt waits for its other lines
// when filters.AttemptRules.Window is zero. The lines of one attempt come within
// milliseconds, or after PAM's failure delay (2 s by default) and a slow
// passdb.
const DefaultAttemptWindow = 10 * time.Second

// maxOpenAttempts bounds the open attempts remembered per address: the
// concurrent sessions of one client whose lines may still interleave.
const maxOpenAttempts = 8

// maxEndAttempts caps the number an end line may claim: no daemon allows
// more attempts per session, and the cap bounds what one line can count.
const maxEndAttempts = 100

// attemptRole is what a failure line is to the accounting.
type attemptRole uint8

const (
	roleOther attemptRole = iota // not classified: one failure
	roleLine                     // one line of an attempt, of a kind
	roleQuiet                    // counts nothing on its own
	roleEnd                      // a session ended after n attempts
)

// attemptRules is compiled AttemptRules.
type attemptRules struct {
	lines, quiet, ends []attemptMatcher
	provisional        []attemptMatcher
	success            []pattern // with <HOST>
	endN               []int     // index of the n or more group per end; -1: none
	endMore            []bool    // the group is "more": one attempt beyond it
	window             time.Duration
	resends            resendRules
}

// attemptMatcher is one rule's regex with its literal prefilter: every
// failure line is classified by every rule until one matches, and the
// prefilter turns most of them away for the cost of a prefix compare
// (running the regexes was 3.6k instructions per failure line).
type attemptMatcher struct {
	matcher
	pre prefilter
}

// may reports whether the rule may match text: always when prefilter is
// off (TesterOptions.NoPrefilter).
func (a *attemptMatcher) may(text string, prefilter bool) bool {
	return !prefilter || a.pre.mayMatch(text)
}

func compileAttempts(a *filters.AttemptRules) (*attemptRules, error) {
	if a == nil {
		return nil, nil
	}
	if len(a.Lines) > 64 {
		return nil, fmt.Errorf("attempts: %d kinds of line, at most 64", len(a.Lines))
	}
	if a.Window < 0 {
		return nil, fmt.Errorf("attempts: window %v: must not be negative", a.Window)
	}
	r := &attemptRules{window: a.Window}
	if r.window == 0 {
		r.window = DefaultAttemptWindow
	}
	// compile returns the matchers and, for the end lines' groups, the
	// regexps they were made of.
	compile := func(what string, srcs []string) ([]attemptMatcher, []*regexp.Regexp, error) {
		out, res := make([]attemptMatcher, len(srcs)), make([]*regexp.Regexp, len(srcs))
		for i, src := range srcs {
			if !strings.HasPrefix(src, "^") {
				return nil, nil, fmt.Errorf("attempts: %s[%d] %q: must be anchored with ^", what, i, src)
			}
			if strings.Contains(src, hostPlaceholder) {
				return nil, nil, fmt.Errorf("attempts: %s[%d] %q: <HOST> belongs in the failregex, not here", what, i, src)
			}
			re, err := regexp.Compile(src)
			var tree *syntax.Regexp
			if err == nil {
				tree, err = syntax.Parse(src, syntax.Perl)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("attempts: %s[%d]: %w", what, i, err)
			}
			out[i] = attemptMatcher{matcher: newMatcher(re, tree), pre: newPrefilter(tree)}
			res[i] = re
		}
		return out, res, nil
	}
	var err error
	if r.lines, _, err = compile("lines", a.Lines); err != nil {
		return nil, err
	}
	if r.quiet, _, err = compile("quiet", a.Quiet); err != nil {
		return nil, err
	}
	if r.provisional, _, err = compile("provisional", a.Provisional); err != nil {
		return nil, err
	}
	for i, src := range a.Success {
		p, err := compilePattern(src, failPattern, nil)
		if err != nil {
			return nil, fmt.Errorf("attempts: success[%d] %q: %w", i, src, err)
		}
		r.success = append(r.success, p)
	}
	var ends []*regexp.Regexp
	if r.ends, ends, err = compile("ends", a.Ends); err != nil {
		return nil, err
	}
	if r.resends, err = compileResends(a, compile); err != nil {
		return nil, err
	}
	if len(r.lines)+len(r.ends)+len(r.quiet)+len(r.resends.rules) == 0 {
		return nil, errors.New("attempts: no lines, ends, quiet lines or resends")
	}
	for _, re := range ends {
		g, more := re.SubexpIndex("n"), false
		if g < 0 {
			g = re.SubexpIndex("more")
			more = g >= 0
		}
		r.endN = append(r.endN, g)
		r.endMore = append(r.endMore, more)
	}
	return r, nil
}

// classify returns the role of failure line text: its kind for roleLine,
// its number of attempts for roleEnd. prefilter is as for Filter.match.
func (r *attemptRules) classify(text string, prefilter bool) (role attemptRole, kindOrN int) {
	// Quiet first: a quiet line may have the wording of a kind too.
	for i := range r.quiet {
		if r.quiet[i].may(text, prefilter) && r.quiet[i].matches(text) {
			return roleQuiet, 0
		}
	}
	for k := range r.lines {
		if r.lines[k].may(text, prefilter) && r.lines[k].matches(text) {
			return roleLine, k
		}
	}
	var buf [fastMaxSlots]int
	for i := range r.ends {
		if !r.ends[i].may(text, prefilter) {
			continue
		}
		loc := r.ends[i].find(text, buf[:])
		if loc == nil {
			continue
		}
		n := 1
		if g := r.endN[i]; g >= 0 && loc[2*g] >= 0 {
			if v, err := strconv.Atoi(text[loc[2*g]:loc[2*g+1]]); err == nil && v >= 0 {
				if r.endMore[i] {
					v++
				}
				n = min(v, maxEndAttempts)
			}
		}
		return roleEnd, n
	}
	return roleOther, 0
}

// account applies the rules to failure result out of text: it returns
// out unchanged (one failure), with n set (an end counting several), or
// with repeat set (a line of an attempt already counted: no failure).
func (r *attemptRules) account(out result, text string, m *sysban.Message, st *corrState, clock func() time.Time, prefilter bool) result {
	if session, ok := r.resends.session(text, prefilter); ok {
		return r.resends.account(out, session, m, st, clock)
	}
	role, kn := r.classify(text, prefilter)
	if role == roleOther {
		return out
	}
	if role == roleQuiet {
		out.repeat = true
		return out
	}
	key := out.host
	if m != nil {
		key = m.Hostname + "\x00" + key
	}
	if len(key) > maxKeyLen+maxHostLen {
		return out
	}
	now := clock()
	var n int
	// A provisional line is held only where a verdict will follow: on
	// a sender that has logged a Success line. Logs that carry PAM's
	// lines alone (a pam_unix-only excerpt, a syslog filter) count it
	// at once, as its only line.
	sender := ""
	if m != nil {
		sender = m.Hostname
	}
	held := role == roleLine && r.isProvisional(text) && st.logsVerdicts(sender)
	st.attempts.update(key, now, func(e *pendingEntry) {
		if role == roleLine {
			n = e.acct.line(kn, held, now, r.window)
		} else {
			n = e.acct.end(kn)
		}
	})
	switch n {
	case 0:
		out.repeat = true
	case 1:
	default:
		out.n = n
	}
	return out
}

// isProvisional reports whether attempt line text may belong to an
// attempt that yet succeeds.
func (r *attemptRules) isProvisional(text string) bool {
	for i := range r.provisional {
		if r.provisional[i].matches(text) {
			return true
		}
	}
	return false
}

// succeed applies a Success line, if text is one: the address's
// held attempt is dropped uncounted. It counts nothing and creates no
// state: an address without attempts has nothing to drop.
func (r *attemptRules) succeed(text string, m *sysban.Message, st *corrState, clock func() time.Time, prefilter bool) {
	for i := range r.success {
		p := &r.success[i]
		if prefilter && !p.pre.mayMatch(text) {
			continue
		}
		host := p.hostIn(text)
		if host == "" {
			continue
		}
		key := host
		if m != nil {
			key = m.Hostname + "\x00" + key
		}
		if len(key) > maxKeyLen+maxHostLen {
			return
		}
		now := clock()
		sender := ""
		if m != nil {
			sender = m.Hostname
		}
		st.markVerdicts(sender)
		st.attempts.modify(key, now, func(e *pendingEntry) { e.acct.succeed(now) })
		return
	}
}

// attemptAcct is one address's attempts.
type attemptAcct struct {
	open    [maxOpenAttempts]openAttempt // oldest first
	nOpen   int
	counted int // attempts counted since the address's last end line
}

// openAttempt is an attempt that may still get lines: the kinds it has.
type openAttempt struct {
	kinds uint64
	until time.Time
	held  bool // opened by a provisional line, not counted yet
}

// line accounts a line of kind k at now, provisional when held, and
// returns the failures it counts: 0 or 1 for its own attempt, plus the
// held attempts it releases.
func (a *attemptAcct) line(k int, held bool, now time.Time, window time.Duration) int {
	// Drop the attempts whose window has passed (they are oldest first);
	// one still held never got its verdict, and counts now.
	released, drop := 0, 0
	for drop < a.nOpen && !now.Before(a.open[drop].until) {
		released += a.count(drop)
		drop++
	}
	copy(a.open[:], a.open[drop:a.nOpen])
	a.nOpen -= drop
	bit := uint64(1) << k
	for i := range a.nOpen {
		if a.open[i].kinds&bit == 0 {
			a.open[i].kinds |= bit
			if !held {
				// The verdict of a held attempt: it failed.
				released += a.count(i)
			}
			return released
		}
	}
	// A new attempt: the address's held ones are over.
	released += a.releaseAll()
	if a.nOpen == maxOpenAttempts {
		copy(a.open[:], a.open[1:])
		a.nOpen--
	}
	a.open[a.nOpen] = openAttempt{kinds: bit, until: now.Add(window), held: held}
	a.nOpen++
	if held {
		return released
	}
	a.counted++
	return released + 1
}

// count counts open attempt i if it is held, and returns 1 if it was.
func (a *attemptAcct) count(i int) int {
	if !a.open[i].held {
		return 0
	}
	a.open[i].held = false
	a.counted++
	return 1
}

// releaseAll counts every held attempt and returns how many there were.
func (a *attemptAcct) releaseAll() int {
	n := 0
	for i := range a.nOpen {
		n += a.count(i)
	}
	return n
}

// end accounts a session's end after n attempts and returns the failures
// it counts: the held attempts, then those its attempt lines did not.
func (a *attemptAcct) end(n int) int {
	released := a.releaseAll()
	uncounted := max(0, n-a.counted)
	a.counted = max(0, a.counted-n)
	return released + uncounted
}

// succeed drops the held attempt still inside its window: the one the
// success line is about (there is at most one: a new attempt releases
// the held ones). Nothing counted is erased.
func (a *attemptAcct) succeed(now time.Time) {
	for i := a.nOpen - 1; i >= 0; i-- {
		if a.open[i].held && now.Before(a.open[i].until) {
			copy(a.open[i:], a.open[i+1:a.nOpen])
			a.nOpen--
			return
		}
	}
}
