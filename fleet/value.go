package fleet

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/sysban/sysban"
)

// Scope says which enforcers apply a ban.
type Scope string

const (
	// ScopeFleet: every enforcer applies it (the default).
	ScopeFleet Scope = "fleet"
	// ScopeOrigin: only the enforcer named by the value's Origin.
	ScopeOrigin Scope = "origin"
)

// maxValueBytes bounds what a node reads from one bucket entry.
const maxValueBytes = 4096

// maxLines is how many failure lines a published ban carries at most: the
// bucket is a ban list, not a log store.
const maxLines = 3

// Value is what a bucket entry holds. Expiry is absolute (zero: permanent)
// so that an enforcer joining late applies the time that is left, not the
// whole duration again.
type Value struct {
	Start  time.Time `json:"start"`            // decision time
	Expiry time.Time `json:"expiry,omitzero"`  // zero: permanent
	Node   string    `json:"node"`             // deciding node; equals the key's node
	Origin string    `json:"origin,omitempty"` // host whose log showed the failures
	// Addr is the address that offended last, inside the key's prefix;
	// unset for a manual prefix ban. An enforcer that must narrow the
	// prefix around its protected addresses narrows it around Addr.
	Addr     netip.Addr `json:"addr,omitzero"`
	Manual   bool       `json:"manual,omitempty"` // banned by hand (sysban ban)
	Scope    Scope      `json:"scope"`
	Filter   string     `json:"filter,omitempty"`
	Failures int        `json:"failures,omitempty"`
	Lines    []string   `json:"lines,omitempty"`
	// Sig is the deciding node's signature (sign.go) when it has an nkey:
	// ed25519, base64url, over the key and the rest of the value.
	Sig string `json:"sig,omitempty"`
}

// Tombstone is the value of an unban key: every ban of the address decided
// before At is lifted, whoever decided it.
type Tombstone struct {
	At   time.Time `json:"at"`
	Node string    `json:"node"`
}

// Entry is one ban read from the bucket, decoded and validated.
type Entry struct {
	Key   Key
	Value Value
}

// Ban is the entry as the ban chain takes it.
func (e Entry) Ban() sysban.Ban {
	d := sysban.Permanent
	if !e.Value.Expiry.IsZero() {
		d = e.Value.Expiry.Sub(e.Value.Start)
	}
	addr := e.Value.Addr
	if e.Key.Prefix.IsSingleIP() {
		addr = e.Key.Prefix.Addr()
	} else if !e.Key.Prefix.Contains(addr) {
		addr = netip.Addr{} // the enforcer narrowed the prefix away from it
	}
	return sysban.Ban{
		Jail:     e.Key.Jail,
		Prefix:   e.Key.Prefix,
		Addr:     addr,
		Start:    e.Value.Start,
		Duration: d,
		Failures: e.Value.Failures,
		Lines:    e.Value.Lines,
	}
}

// decodeEntry reads and validates a bucket entry. It refuses what could
// mislead an enforcer: a key that is not canonical, a value whose node is not
// the key's (the server checked who published under that key), a start in the
// future or an expiry before the start.
func decodeEntry(key string, data []byte, now time.Time) (Entry, error) {
	k, err := ParseKey(key)
	if err != nil {
		return Entry{}, err
	}
	return decodeKeyed(k, key, data, now)
}

// decodeKeyed is decodeEntry with key already parsed into k: a resync
// parses each key once.
func decodeKeyed(k Key, key string, data []byte, now time.Time) (Entry, error) {
	if k.Jail == unbanJail {
		return Entry{}, fmt.Errorf("fleet: key %q: an unban, not a ban", key)
	}
	if len(data) > maxValueBytes {
		return Entry{}, fmt.Errorf("fleet: key %q: value of %d bytes (max %d)", key, len(data), maxValueBytes)
	}
	var v Value
	if err := decodeValue(data, &v); err != nil {
		return Entry{}, fmt.Errorf("fleet: key %q: value: %w", key, err)
	}
	if v.Node != k.Node {
		return Entry{}, fmt.Errorf("fleet: key %q: value names node %q", key, v.Node)
	}
	if v.Scope != ScopeFleet && v.Scope != ScopeOrigin {
		return Entry{}, fmt.Errorf("fleet: key %q: scope %q", key, v.Scope)
	}
	if v.Scope == ScopeOrigin && v.Origin == "" {
		return Entry{}, fmt.Errorf("fleet: key %q: scope origin without an origin", key)
	}
	if k.Origin != "" && (v.Scope != ScopeOrigin || k.Origin != EncodeOrigin(v.Origin)) {
		return Entry{}, fmt.Errorf("fleet: key %q: origin token does not match the value's scope %s and origin %q", key, v.Scope, v.Origin)
	}
	if v.Start.IsZero() || v.Start.After(now.Add(maxClockSkew)) {
		return Entry{}, fmt.Errorf("fleet: key %q: decision time %v is unset or in the future", key, v.Start)
	}
	if !v.Expiry.IsZero() && !v.Expiry.After(v.Start) {
		return Entry{}, fmt.Errorf("fleet: key %q: expiry %v not after decision time %v", key, v.Expiry, v.Start)
	}
	if v.Addr.IsValid() && (v.Addr != sysban.CanonicalAddr(v.Addr) || !k.Prefix.Contains(v.Addr)) {
		return Entry{}, fmt.Errorf("fleet: key %q: address %s is not inside the prefix", key, v.Addr)
	}
	if v.Failures < 0 || len(v.Lines) > maxLines {
		return Entry{}, fmt.Errorf("fleet: key %q: bad failures or lines", key)
	}
	return Entry{Key: k, Value: v}, nil
}

// maxClockSkew is how far in the future a decision time may lie: nodes'
// clocks differ a little.
const maxClockSkew = time.Minute

// newValue builds the value a decider publishes for b.
func newValue(b sysban.Ban, node, origin string, scope Scope, now time.Time) Value {
	start := b.Start
	if start.IsZero() {
		start = now
	}
	v := Value{Start: start, Node: node, Origin: origin, Scope: scope, Filter: b.Jail, Failures: b.Failures}
	if b.Addr.IsValid() && !b.Network().IsSingleIP() {
		v.Addr = sysban.CanonicalAddr(b.Addr)
	}
	if !b.Permanent() {
		v.Expiry = start.Add(b.Duration)
	}
	lines := b.Lines
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	for _, l := range lines {
		if len(l) > 512 {
			l = l[:512]
		}
		v.Lines = append(v.Lines, l)
	}
	// Encoded, the value must fit an enforcer's maxValueBytes with room
	// for a signature, whatever the lines hold: JSON writes '<' or an
	// invalid byte as six. An attacker who filled its log lines with them
	// would otherwise get its ban refused by every enforcer. Lines go,
	// oldest first, until it fits. Most values are far from the limit
	// even if every byte were escaped, and are not encoded here.
	if encodedBound(&v) <= maxValueBytes-sigRoom {
		return v
	}
	var buf []byte
	for len(v.Lines) > 0 {
		var err error
		if buf, err = appendValue(buf[:0], &v); err == nil && len(buf) <= maxValueBytes-sigRoom {
			break
		}
		v.Lines = v.Lines[1:]
	}
	return v
}

// encodedBound is at least the length of v encoded: every byte of its
// strings written as six (\u00XX), the rest at its longest.
func encodedBound(v *Value) int {
	const fixed = 320 // field names, punctuation, two times, an address, a count: 260 at most
	n := len(v.Node) + len(v.Origin) + len(v.Filter) + len(v.Scope) + len(v.Sig)
	for _, l := range v.Lines {
		n += len(l) + 3 // its quotes and comma
	}
	return fixed + 6*n
}

// sigRoom is what a signature adds to an encoded value, with margin.
const sigRoom = 128

// ttlFor is the Nats-TTL of a ban expiring at expiry: whole seconds,
// rounded up, at least one; zero (no header) for a permanent ban. ok is
// false when the ban is already over and must not be published.
func ttlFor(expiry, now time.Time) (ttl time.Duration, ok bool) {
	if expiry.IsZero() {
		return 0, true
	}
	left := expiry.Sub(now)
	if left <= 0 {
		return 0, false
	}
	secs := (left + time.Second - 1) / time.Second
	return max(secs, 1) * time.Second, true
}
