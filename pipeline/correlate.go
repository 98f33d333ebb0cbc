package pipeline

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Multi-line failures. A filter's Correlation pairs an Open line with a
// Close line that carries the same key (a sendmail queue id, an sshd pid):
// one of the two names the host, the other shows the failure. Between them
// any other lines may arrive. The pending opens live in a pendingSet per
// distinct Open: a map bounded by an entry count and a window, because the
// lines that fill it come from the network. This file is that state;
// which lines open and close is decided in match.go.

// DefaultMaxPending bounds the pending opens remembered per correlation set
// (per filter and pipeline, or per Tester).
const DefaultMaxPending = 10000

// Keys and hosts longer than these are not remembered: no daemon writes
// such keys, and the bound keeps an entry's memory small whatever arrives.
const (
	maxKeyLen  = 128
	maxHostLen = 255
)

// corrState is the mutable side of a filter's correlations: one pending set
// per distinct Open. It is safe for concurrent use.
type corrState struct {
	sets []pendingSet
	// attempts are the addresses' attempts (attempt.go), kept for
	// DefaultCorrelationWindow after their last line so that an end line
	// finds what was counted before it.
	attempts pendingSet
	// provenance is the strictest Provenance of the route's jails: an
	// open line names the host, so it must pass what the close's jails
	// would demand of a failure (provenance.go, opens).
	provenance string
	provSet    bool // provenance holds a jail's mode
	// verdicts are the senders (message hostnames) that have logged a
	// Success line: they log their verdicts, so a provisional line of
	// theirs may wait for one (attempt.go). Bounded by maxVerdictSenders.
	verdictMu sync.Mutex
	verdicts  map[string]struct{}
}

// maxVerdictSenders bounds corrState.verdicts: beyond it new senders'
// provisional lines count at once, as before any Success line.
const maxVerdictSenders = 4096

// markVerdicts remembers that sender logs its verdicts.
func (st *corrState) markVerdicts(sender string) {
	st.verdictMu.Lock()
	defer st.verdictMu.Unlock()
	if _, ok := st.verdicts[sender]; ok || len(st.verdicts) >= maxVerdictSenders {
		return
	}
	if st.verdicts == nil {
		st.verdicts = make(map[string]struct{})
	}
	st.verdicts[strings.Clone(sender)] = struct{}{}
}

// logsVerdicts reports whether sender has logged a Success line.
func (st *corrState) logsVerdicts(sender string) bool {
	st.verdictMu.Lock()
	defer st.verdictMu.Unlock()
	_, ok := st.verdicts[sender]
	return ok
}

// newCorrState returns the state for f, nil when f neither correlates nor
// accounts attempts.
func newCorrState(f *Filter, limit int) *corrState {
	if f.sets == 0 && f.attempts == nil {
		return nil
	}
	if limit <= 0 {
		limit = DefaultMaxPending
	}
	st := &corrState{sets: make([]pendingSet, f.sets)}
	for i := range st.sets {
		st.sets[i].init(f.windows[i], limit)
	}
	st.attempts.init(DefaultCorrelationWindow, limit)
	return st
}

func (s *pendingSet) init(window time.Duration, limit int) {
	s.window, s.limit = window, limit
	s.m = make(map[string]*pendingEntry)
	s.lru.prev, s.lru.next = &s.lru, &s.lru
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
	// spare holds entries prune and take dropped, for new keys: an
	// entry is large (an address's attempts), and in a steady stream
	// about as many expire as are made, which was most of `sysban
	// test`'s allocated bytes. At most maxSpare are kept.
	spare []*pendingEntry
}

// maxSpare bounds a pendingSet's spare entries: enough for the churn
// between two arrivals, small next to the set's limit.
const maxSpare = 64

type pendingEntry struct {
	key        string
	host       string      // the Open's host; "" when the Close carries it
	acct       attemptAcct // in the attempts set: the address's attempts
	expiry     time.Time
	prev, next *pendingEntry
}

// put remembers an open of key at now. A key opened again keeps the latest
// open (its host and a fresh window): a daemon reusing a pid or queue id
// means the earlier session is over.
func (s *pendingSet) put(key, host string, now time.Time) {
	s.update(key, now, func(e *pendingEntry) {
		// Clone: host may share memory with the message.
		e.host = strings.Clone(host)
	})
}

// update runs f, under the set's lock, on key's entry, made (zero) when
// key has none, and gives the entry a fresh window.
func (s *pendingSet) update(key string, now time.Time, f func(*pendingEntry)) {
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
		*e = pendingEntry{}
		fallthrough
	default:
		if e == nil {
			e = s.newEntry()
		}
		// Clone: key may share memory with the message.
		e.key = strings.Clone(key)
		s.m[e.key] = e
	}
	f(e)
	e.expiry = now.Add(s.window)
	s.pushBack(e)
}

// modify runs f, under the set's lock, on key's entry when key has one
// inside the window, and gives it a fresh window; it makes no entry.
func (s *pendingSet) modify(key string, now time.Time, f func(*pendingEntry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	e := s.m[key]
	if e == nil {
		return
	}
	f(e)
	s.unlink(e)
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
	host := e.host
	s.drop(e)
	return host, true
}

// prune drops expired opens from the front. It is O(1) amortised: each
// entry is dropped once.
func (s *pendingSet) prune(now time.Time) {
	for e := s.lru.next; e != &s.lru && !now.Before(e.expiry); e = s.lru.next {
		s.unlink(e)
		delete(s.m, e.key)
		s.drop(e)
	}
}

// drop keeps e, unlinked and out of the map, as a spare when there is
// room, cleared so that it holds no strings.
func (s *pendingSet) drop(e *pendingEntry) {
	if len(s.spare) < maxSpare {
		*e = pendingEntry{}
		s.spare = append(s.spare, e)
	}
}

// newEntry returns a zero entry, a spare when there is one.
func (s *pendingSet) newEntry() *pendingEntry {
	if n := len(s.spare); n > 0 {
		e := s.spare[n-1]
		s.spare[n-1] = nil
		s.spare = s.spare[:n-1]
		return e
	}
	return new(pendingEntry)
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
