package pipeline

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
)

// Multi-line failures. A filter's Correlation pairs an Open line with a
// Close line that carries the same key (a sendmail queue id, an sshd pid):
// one of the two names the host, the other shows the failure. Between them
// any other lines may arrive. The pending opens live in a pendingSet per
// distinct Open: a map bounded by an entry count and a window, because the
// lines that fill it come from the network.

// DefaultMaxPending bounds the pending opens remembered per correlation set
// (per filter and pipeline, or per Tester).
const DefaultMaxPending = 10000

// Keys and hosts longer than these are not remembered: no daemon writes
// such keys, and the bound keeps an entry's memory small whatever arrives.
const (
	maxKeyLen  = 128
	maxHostLen = 255
)

// outcomeKind is what one line did to a filter.
type outcomeKind uint8

const (
	kindNone       outcomeKind = iota // nothing matched
	kindFailure                       // a failregex matched: a failure of host
	kindPending                       // an Open matched: remembered, no failure yet
	kindCorrelated                    // a Close completed an Open: a failure of host
)

// outcome is what matching one line against a filter (with its correlation
// state) found.
type outcome struct {
	kind    outcomeKind
	pattern int    // index into Filter.Patterns(); -1 with kindNone
	host    string // the host to count (kindPending: the Open's host, maybe "")
	ignore  int    // index into IgnoreRegex that vetoed the line; -1: none
}

// corrState is the mutable side of a filter's correlations: one pending set
// per distinct Open. It is safe for concurrent use.
type corrState struct {
	sets []pendingSet
}

// newCorrState returns the state for f, nil when f does not correlate.
func newCorrState(f *Filter, limit int) *corrState {
	if f.sets == 0 {
		return nil
	}
	if limit <= 0 {
		limit = DefaultMaxPending
	}
	st := &corrState{sets: make([]pendingSet, f.sets)}
	for i := range st.sets {
		s := &st.sets[i]
		s.window, s.limit = f.windows[i], limit
		s.m = make(map[string]*pendingEntry)
		s.lru.prev, s.lru.next = &s.lru, &s.lru
	}
	return st
}

// pending returns how many opens are waiting, and how many were evicted
// because a set was full.
func (st *corrState) stats(now time.Time) (pending int, evicted uint64) {
	if st == nil {
		return 0, 0
	}
	for i := range st.sets {
		s := &st.sets[i]
		s.mu.Lock()
		s.prune(now)
		pending += len(s.m)
		s.mu.Unlock()
		evicted += s.evicted.Load()
	}
	return pending, evicted
}

// pendingSet is one bounded map key -> pending open. Entries sit on a list
// in the order they were (last) opened, which with one window per set is
// also expiry order: pruning and eviction both take from the front.
type pendingSet struct {
	mu      sync.Mutex
	window  time.Duration
	limit   int
	m       map[string]*pendingEntry
	lru     pendingEntry // sentinel: lru.next is the oldest
	evicted atomic.Uint64
}

type pendingEntry struct {
	key        string
	host       string // the Open's host; "" when the Close carries it
	expiry     time.Time
	prev, next *pendingEntry
}

// put remembers an open of key at now. A key opened again keeps the latest
// open (its host and a fresh window): a daemon reusing a pid or queue id
// means the earlier session is over.
func (s *pendingSet) put(key, host string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	e := s.m[key]
	switch {
	case e != nil:
		s.unlink(e)
	case len(s.m) >= s.limit:
		e = s.lru.next
		s.unlink(e)
		delete(s.m, e.key)
		s.evicted.Add(1)
		fallthrough
	default:
		if e == nil {
			e = new(pendingEntry)
		}
		// Clone: key and host may share memory with the message.
		e.key = strings.Clone(key)
		s.m[e.key] = e
	}
	e.host = strings.Clone(host)
	e.expiry = now.Add(s.window)
	s.pushBack(e)
}

// take completes key: it returns the open's host and forgets the open, or
// false when key has no open inside the window.
func (s *pendingSet) take(key string, now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	e := s.m[key]
	if e == nil {
		return "", false
	}
	s.unlink(e)
	delete(s.m, key)
	return e.host, true
}

// prune drops expired opens from the front. It is O(1) amortised: each
// entry is dropped once.
func (s *pendingSet) prune(now time.Time) {
	for e := s.lru.next; e != &s.lru && !now.Before(e.expiry); e = s.lru.next {
		s.unlink(e)
		delete(s.m, e.key)
	}
}

func (s *pendingSet) unlink(e *pendingEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *pendingSet) pushBack(e *pendingEntry) {
	e.prev = s.lru.prev
	e.next = &s.lru
	s.lru.prev.next = e
	s.lru.prev = e
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

// capture returns p's host capture in text, "" when p has none or it did
// not take part in the match.
func capture(p *pattern, loc []int, text string) string {
	if p.host < 0 || loc[2*p.host] < 0 {
		return ""
	}
	return text[loc[2*p.host]:loc[2*p.host+1]]
}

// eval matches text (already trimmed and unwrapped) from message m against
// f: failregexes first, then the Closes of its correlations (a Close counts
// only when its key has a pending Open), then their Opens. st holds the
// correlation state; with st nil (Pipeline.Check) Opens are reported as
// pending but not remembered and Closes never complete. m may be nil.
// clock is called only when a correlation line matched, so the common
// path costs no clock read.
func (f *Filter) eval(text string, m *sysban.Message, st *corrState, clock func() time.Time, prefilter bool) outcome {
	return f.evalMatched(f.match(text, prefilter), text, m, st, clock, prefilter)
}

// evalMatched is eval given the result of f.match(text, prefilter), which
// is stateless and may have been computed on another goroutine (Tester's
// Prematch); what is left here is correlation, which must see lines in
// order.
func (f *Filter) evalMatched(r result, text string, m *sysban.Message, st *corrState, clock func() time.Time, prefilter bool) outcome {
	if r.pattern >= 0 {
		return outcome{kind: kindFailure, pattern: r.pattern, host: r.host, ignore: r.ignore}
	}
	none := outcome{kind: kindNone, pattern: -1, ignore: -1}
	if len(f.corr) == 0 {
		return none
	}
	base := len(f.fail)
	if st != nil {
		for i := range f.corr {
			c := &f.corr[i]
			if prefilter && !c.close.mayMatch(text) {
				continue
			}
			loc := c.close.re.FindStringSubmatchIndex(text)
			if loc == nil {
				continue
			}
			key, ok := corrKey(&c.close, loc, text, m)
			if !ok {
				continue
			}
			host := capture(&c.close, loc, text)
			if c.close.host >= 0 && host == "" {
				continue
			}
			stored, ok := st.sets[c.set].take(key, clock())
			if !ok {
				continue
			}
			if host == "" {
				host = stored
			}
			return outcome{kind: kindCorrelated, pattern: base + 2*i + 1, host: host, ignore: f.ignored(text, prefilter)}
		}
	}
	for i := range f.corr {
		c := &f.corr[i]
		if prefilter && !c.open.mayMatch(text) {
			continue
		}
		loc := c.open.re.FindStringSubmatchIndex(text)
		if loc == nil {
			continue
		}
		key, ok := corrKey(&c.open, loc, text, m)
		if !ok {
			continue
		}
		host := capture(&c.open, loc, text)
		if (c.open.host >= 0 && host == "") || len(host) > maxHostLen {
			continue
		}
		out := outcome{kind: kindPending, pattern: base + 2*i, host: host, ignore: f.ignored(text, prefilter)}
		// An ignored open is not remembered: the line is excused, so
		// nothing it starts may count.
		if st != nil && out.ignore < 0 {
			st.sets[c.set].put(key, host, clock())
		}
		return out
	}
	return none
}

// ignored returns the index of the first IgnoreRegex matching text, or -1.
func (f *Filter) ignored(text string, prefilter bool) int {
	for i := range f.ignore {
		p := &f.ignore[i]
		if prefilter && !p.mayMatch(text) {
			continue
		}
		if p.re.MatchString(text) {
			return i
		}
	}
	return -1
}
