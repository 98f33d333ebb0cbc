package pipeline

import (
	"fmt"
	"regexp"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/filters"
)

// Resent lines (filters.AttemptRules.Resends). A UDP client that gets no
// answer resends its first packet: OpenVPN's, with a wrong tls-auth or
// tls-crypt key, goes out again after 2, 4, 8, 16 s until the client's
// handshake window (60 s) closes, and the server logs one "TLS Error: ...
// from [AF_INET]IP:port" line per copy. The copies come from the same
// source port; a new attempt (the client restarted, or another client on
// the same address) comes from another port, or from the same one after
// the window. So the lines of one address and port are one attempt for
// ResendWindow from the first, which counts one failure; the copies count
// nothing.
//
// The window runs from the first line and is not extended by the copies,
// so a sender that keeps one port and keeps sending still counts once per
// window; a sender that changes port counts each port. The address is in
// the key, so two clients never share an attempt.

// DefaultResendWindow is filters.AttemptRules.ResendWindow when zero:
// OpenVPN's default handshake window (--hand-window 60), within which its
// client resends its first packet.
const DefaultResendWindow = 60 * time.Second

// maxSessionLen bounds the session a resend line gives (a port number is
// five digits): a longer one is not a session, and its line counts as a
// failure of its own.
const maxSessionLen = 32

// resendRules is compiled Resends.
type resendRules struct {
	rules  []attemptMatcher
	group  []int // index of each rule's session group
	window time.Duration
}

// compileResends compiles a's Resends with compile (compileAttempts').
func compileResends(a *filters.AttemptRules, compile func(string, []string) ([]attemptMatcher, []*regexp.Regexp, error)) (resendRules, error) {
	if a.ResendWindow < 0 {
		return resendRules{}, fmt.Errorf("attempts: resend window %v: must not be negative", a.ResendWindow)
	}
	rules, res, err := compile("resends", a.Resends)
	if err != nil {
		return resendRules{}, err
	}
	r := resendRules{rules: rules, window: a.ResendWindow}
	if r.window == 0 {
		r.window = DefaultResendWindow
	}
	for i, re := range res {
		g := re.SubexpIndex("session")
		if g < 0 {
			return resendRules{}, fmt.Errorf("attempts: resends[%d] %q: no (?P<session>...) group", i, a.Resends[i])
		}
		r.group = append(r.group, g)
	}
	return r, nil
}

// session returns the session of text if it is a resend line.
func (r *resendRules) session(text string, prefilter bool) (string, bool) {
	var buf [fastMaxSlots]int
	for i := range r.rules {
		if !r.rules[i].may(text, prefilter) {
			continue
		}
		loc := r.rules[i].find(text, buf[:])
		if loc == nil {
			continue
		}
		g := r.group[i]
		if loc[2*g] < 0 || loc[2*g+1]-loc[2*g] > maxSessionLen {
			return "", false
		}
		return text[loc[2*g]:loc[2*g+1]], true
	}
	return "", false
}

// account applies a resend line of session to failure result out: the
// first of its address and session in a window is one failure, the
// others are repeats.
func (r *resendRules) account(out result, session string, m *sysban.Message, st *corrState, clock func() time.Time) result {
	key := out.host + "\x00" + session
	if m != nil {
		key = m.Hostname + "\x00" + key
	}
	if len(key) > maxKeyLen+maxHostLen {
		return out
	}
	now := clock()
	n := 0
	st.attempts.update(key, now, func(e *pendingEntry) { n = e.acct.resend(now, r.window) })
	if n == 0 {
		out.repeat = true
	}
	return out
}

// resend accounts a resent line at now and returns the failures it
// counts: 1 when it opens the attempt, 0 for a copy inside its window.
// The entry is a session's alone, so one open attempt is all it holds.
func (a *attemptAcct) resend(now time.Time, window time.Duration) int {
	if a.nOpen > 0 && now.Before(a.open[0].until) {
		return 0
	}
	a.open[0] = openAttempt{until: now.Add(window)}
	a.nOpen = 1
	return 1
}
