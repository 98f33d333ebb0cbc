package fleet

// What an enforcer remembers of the bucket between resyncs, in as little
// memory as a ban can take: no strings, no pointers (the garbage collector
// does not scan the map), no lines. 100,000 bans are about 4-7 MiB here (the map doubles as it grows).

import (
	"math"
	"net/netip"
	"strings"
	"time"
)

// nameID numbers a node or jail name in a names table.
type nameID uint32

// names interns the node and jail names of the known bans: a fleet has a
// handful of each, and its bans refer to them by number.
type names struct {
	ids  map[string]nameID
	list []string
}

func newNames() *names { return &names{ids: map[string]nameID{}} }

// id is s's number, given one if it has none yet.
func (t *names) id(s string) nameID {
	if id, ok := t.ids[s]; ok {
		return id
	}
	// s is often a slice of the message's subject; a copy lets that go.
	s = strings.Clone(s)
	id := nameID(len(t.list))
	t.list = append(t.list, s)
	t.ids[s] = id
	return id
}

// knownKey is a Key with its names numbered; origin is the origin
// token's number + 1 (0: a ban of scope fleet, whose key has none).
type knownKey struct {
	addr               [16]byte
	bits               uint8
	v4                 bool
	node, jail, origin nameID
}

// knownBan is what is kept of a value: when it ends and its scope.
type knownBan struct {
	expiry uint32 // Unix seconds, rounded up (until 2106); 0: permanent
	flags  uint8
}

const (
	knownOrigin = 1 << iota // scope origin
	knownWanted             // the verdict took it: in force here through the fleet
)

// known is the bucket's bans as last seen: a full resync builds a new one
// entry by entry, live updates change it.
type known struct {
	nodes, jails, origins *names
	bans                  map[knownKey]knownBan
	// narrowed are the wanted bans this host applies narrowed around its
	// protected addresses: the prefix in force here. Few, if any.
	narrowed map[knownKey]netip.Prefix
	// lens has bit b set when a ban of a /b prefix is known (index 0:
	// IPv4, 1: IPv6), so that the bans covering an address are found
	// with one lookup per length in use, not per length there is.
	lens [2][3]uint64
}

func newKnown() *known {
	return &known{nodes: newNames(), jails: newNames(), origins: newNames(),
		bans: map[knownKey]knownBan{}, narrowed: map[knownKey]netip.Prefix{}}
}

// maxKnownHint bounds the size a resync gives the known map up front.
const maxKnownHint = 1 << 20

// expect makes room for n bans in an empty known: a resync that knows
// the snapshot's size builds the map once instead of doubling it from
// empty (a late joiner of 100,000 bans allocated twice the map's size in
// copies, and rehashed them).
func (kn *known) expect(n uint64) {
	if len(kn.bans) == 0 && n > 0 {
		kn.bans = make(map[knownKey]knownBan, min(n, maxKnownHint))
	}
}

func (kn *known) key(node, jail nameID, p netip.Prefix) knownKey {
	a := p.Addr()
	return knownKey{addr: a.As16(), bits: uint8(p.Bits()), v4: a.Is4(), node: node, jail: jail}
}

// originID is the knownKey origin of a key's origin token.
func (kn *known) originID(token string) nameID {
	if token == "" {
		return 0
	}
	return kn.origins.id(token) + 1
}

// lookupKey is k's knownKey, false when a name of it is not known (nor,
// then, the ban).
func (kn *known) lookupKey(k Key) (knownKey, bool) {
	node, ok := kn.nodes.ids[k.Node]
	if !ok {
		return knownKey{}, false
	}
	jail, ok := kn.jails.ids[k.Jail]
	if !ok {
		return knownKey{}, false
	}
	kk := kn.key(node, jail, k.Prefix)
	if k.Origin != "" {
		origin, ok := kn.origins.ids[k.Origin]
		if !ok {
			return knownKey{}, false
		}
		kk.origin = origin + 1
	}
	return kk, true
}

// put remembers e; wanted says the verdict took it, applied is the prefix
// it put in force here (e's own, or narrowed).
func (kn *known) put(e *Entry, wanted bool, applied netip.Prefix) {
	b := knownBan{expiry: expirySeconds(e.Value.Expiry)}
	if e.Value.Scope == ScopeOrigin {
		b.flags |= knownOrigin
	}
	if wanted {
		b.flags |= knownWanted
	}
	kk := kn.key(kn.nodes.id(e.Key.Node), kn.jails.id(e.Key.Jail), e.Key.Prefix)
	kk.origin = kn.originID(e.Key.Origin)
	kn.bans[kk] = b
	if wanted && applied.IsValid() && applied != e.Key.Prefix {
		kn.narrowed[kk] = applied
	} else if len(kn.narrowed) > 0 {
		delete(kn.narrowed, kk)
	}
	fam := 1
	if kk.v4 {
		fam = 0
	}
	kn.lens[fam][kk.bits/64] |= 1 << (kk.bits % 64)
}

// applied is the prefix k's ban is in force under here: its own, or the
// narrowed one.
func (kn *known) applied(k Key) netip.Prefix {
	if kk, ok := kn.lookupKey(k); ok {
		if p, ok := kn.narrowed[kk]; ok {
			return p
		}
	}
	return k.Prefix
}

// has reports whether k is known.
func (kn *known) has(k Key) bool {
	kk, ok := kn.lookupKey(k)
	if !ok {
		return false
	}
	_, ok = kn.bans[kk]
	return ok
}

// remove forgets k; false when it was not known.
func (kn *known) remove(k Key) bool {
	kk, ok := kn.lookupKey(k)
	if !ok {
		return false
	}
	if _, ok := kn.bans[kk]; !ok {
		return false
	}
	delete(kn.bans, kk)
	delete(kn.narrowed, kk)
	return true
}

// each calls fn for every known ban of p in jail ("" for every jail), by
// every node but skip ("" to skip none), until fn returns false. It asks
// the map once per node, jail and origin name, not once per ban.
func (kn *known) each(p netip.Prefix, jail, skip string, fn func(k Key, kk knownKey, b knownBan) bool) {
	for ni, node := range kn.nodes.list {
		if node == skip {
			continue
		}
		for ji, j := range kn.jails.list {
			if jail != "" && j != jail {
				continue
			}
			kk := kn.key(nameID(ni), nameID(ji), p)
			for o := 0; o <= len(kn.origins.list); o++ {
				kk.origin = nameID(o)
				b, ok := kn.bans[kk]
				if !ok {
					continue
				}
				k := Key{Node: node, Jail: j, Prefix: p}
				if o > 0 {
					k.Origin = kn.origins.list[o-1]
				}
				if !fn(k, kk, b) {
					return
				}
			}
		}
	}
}

// eachCovering calls fn for every known ban whose prefix covers p (p's
// own included), until fn returns false.
func (kn *known) eachCovering(p netip.Prefix, fn func(k Key, kk knownKey, b knownBan) bool) {
	fam := 1
	if p.Addr().Is4() {
		fam = 0
	}
	stop := false
	for bits := p.Bits(); bits >= 0 && !stop; bits-- {
		if kn.lens[fam][bits/64]&(1<<(bits%64)) == 0 {
			continue
		}
		q := netip.PrefixFrom(p.Addr(), bits).Masked()
		kn.each(q, "", "", func(k Key, kk knownKey, b knownBan) bool {
			stop = !fn(k, kk, b)
			return !stop
		})
	}
}

// heldByOther reports whether a node other than skip has a ban of p in jail.
func (kn *known) heldByOther(jail string, p netip.Prefix, skip string) bool {
	found := false
	kn.each(p, jail, skip, func(Key, knownKey, knownBan) bool { found = true; return false })
	return found
}

// wantedExpiry is the longest expiry (Unix seconds, 0 permanent) of the
// bans of p in jail the verdict took, by any node, and applied here
// under p itself (not narrowed); ok is false if none.
func (kn *known) wantedExpiry(jail string, p netip.Prefix) (expiry uint32, ok bool) {
	kn.each(p, jail, "", func(_ Key, kk knownKey, b knownBan) bool {
		if b.flags&knownWanted == 0 {
			return true
		}
		if _, narrowed := kn.narrowed[kk]; narrowed {
			return true
		}
		if !ok || b.expiry == 0 || (expiry != 0 && b.expiry > expiry) {
			expiry = b.expiry
		}
		ok = true
		return true
	})
	return expiry, ok
}

// prefix is the prefix of a knownKey.
func (k knownKey) prefix() netip.Prefix {
	a := netip.AddrFrom16(k.addr)
	if k.v4 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, int(k.bits))
}

// expirySeconds is an expiry in whole Unix seconds, rounded up (a ban is
// never remembered shorter than it is); 0 for the zero time (permanent).
// Past 2106 it is permanent too.
func expirySeconds(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	switch {
	case s <= 0:
		return 1 // before 1970: long over, but not permanent
	case s > math.MaxUint32:
		return 0
	}
	return uint32(s)
}

// lastExpiry is when the last known ban covering p ends; zero when one is
// permanent or none is known.
func (kn *known) lastExpiry(p netip.Prefix) time.Time {
	var last uint32
	kn.eachCovering(p, func(_ Key, _ knownKey, b knownBan) bool {
		if b.expiry == 0 {
			last = 0
			return false
		}
		last = max(last, b.expiry)
		return true
	})
	if last == 0 {
		return time.Time{}
	}
	return time.Unix(int64(last), 0)
}

// prefixes are the prefixes of every known ban, once each.
func (kn *known) prefixes() []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	for k := range kn.bans {
		seen[k.prefix()] = true
	}
	out := make([]netip.Prefix, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	return out
}

// byNode counts the known bans by deciding node and scope.
func (kn *known) byNode() map[string]map[Scope]int {
	out := map[string]map[Scope]int{}
	for k, b := range kn.bans {
		node := kn.nodes.list[k.node]
		m := out[node]
		if m == nil {
			m = map[Scope]int{}
			out[node] = m
		}
		scope := ScopeFleet
		if b.flags&knownOrigin != 0 {
			scope = ScopeOrigin
		}
		m[scope]++
	}
	return out
}

// narrowedCovering are the prefixes in force here, by jail, of the
// narrowed bans whose own prefix covers p: an unban inside the published
// prefix lifts them, wherever this host narrowed them to.
func (kn *known) narrowedCovering(p netip.Prefix) map[jailNet]bool {
	out := map[jailNet]bool{}
	for kk, applied := range kn.narrowed {
		if covers(kk.prefix(), p) {
			out[jailNet{kn.jails.list[kk.jail], applied}] = true
		}
	}
	return out
}

// entry is what is known of k's ban as an Entry: its key, expiry and
// scope (no decision time, address or lines).
func (b knownBan) entry(k Key) Entry {
	e := Entry{Key: k, Value: Value{Node: k.Node, Scope: ScopeFleet}}
	if b.expiry != 0 {
		e.Value.Expiry = time.Unix(int64(b.expiry), 0)
	}
	if b.flags&knownOrigin != 0 {
		e.Value.Scope, e.Value.Origin = ScopeOrigin, k.Origin
	}
	return e
}
