package fleet

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestKnown(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	entry := func(node, jail, addr string, expiry time.Time, scope Scope) *Entry {
		return &Entry{Key: Key{Node: node, Jail: jail, Prefix: AddrKey(netip.MustParseAddr(addr))},
			Value: Value{Start: now, Expiry: expiry, Node: node, Scope: scope, Origin: "web1"}}
	}
	kn := newKnown()
	kn.put(entry("hosta", "sshd", "203.0.113.7", now.Add(time.Hour), ScopeFleet), true, netip.Prefix{})
	kn.put(entry("hostb", "sshd", "203.0.113.7", now.Add(2*time.Hour+time.Millisecond), ScopeOrigin), false, netip.Prefix{})
	kn.put(entry("hosta", "postfix", "2001:db8::7", time.Time{}, ScopeFleet), true, netip.Prefix{})

	p4, p6 := AddrKey(netip.MustParseAddr("203.0.113.7")), AddrKey(netip.MustParseAddr("2001:db8::7"))
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"has", kn.has(Key{Node: "hosta", Jail: "sshd", Prefix: p4}), true},
		{"has, other jail", kn.has(Key{Node: "hosta", Jail: "postfix", Prefix: p4}), false},
		{"has, unknown node", kn.has(Key{Node: "hostz", Jail: "sshd", Prefix: p4}), false},
		{"held by another than hosta", kn.heldByOther("sshd", p4, "hosta"), true},
		{"held by another than hosta, v6", kn.heldByOther("postfix", p6, "hosta"), false},
		{"wanted expiry: hosta's, not hostb's refused one", wanted(kn, "sshd", p4), expirySeconds(now.Add(time.Hour))},
		{"wanted expiry: permanent", wanted(kn, "postfix", p6), uint32(0)},
		{"last expiry: rounded up", kn.lastExpiry(p4), now.Add(2*time.Hour + time.Second)},
		{"last expiry: permanent", kn.lastExpiry(p6).IsZero(), true},
		{"by node and scope", kn.byNode()["hostb"][ScopeOrigin], 1},
		{"prefixes", len(kn.prefixes()), 2},
		{"key's prefix", kn.key(0, 0, p4).prefix(), p4},
		{"key's prefix, v6", kn.key(0, 0, p6).prefix(), p6},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if !kn.remove(Key{Node: "hosta", Jail: "sshd", Prefix: p4}) || kn.remove(Key{Node: "hosta", Jail: "sshd", Prefix: p4}) {
		t.Error("remove: want true once, then false")
	}
	if kn.heldByOther("sshd", p4, "hostb") {
		t.Error("hosta's removed ban still holds the address")
	}
}

func wanted(kn *known, jail string, p netip.Prefix) uint32 {
	e, ok := kn.wantedExpiry(jail, p)
	if !ok {
		return 1 << 31
	}
	return e
}

func TestExpirySeconds(t *testing.T) {
	for _, tt := range []struct {
		in   time.Time
		want uint32
	}{
		{time.Time{}, 0},
		{time.Unix(100, 0), 100},
		{time.Unix(100, 1), 101},
		{time.Unix(-5, 0), 1},
		{time.Unix(1<<33, 0), 0},
	} {
		if got := expirySeconds(tt.in); got != tt.want {
			t.Errorf("expirySeconds(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// Prefix bans: the bans covering an address, the prefix a narrowed ban is
// in force under, and two origins' keys of one address.
func TestKnownPrefixes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	kn := newKnown()
	p64, p72 := netip.MustParsePrefix("2001:db8::/64"), netip.MustParsePrefix("2001:db8::/72")
	wide := &Entry{Key: Key{Node: "collector", Jail: "sshd", Prefix: p64}, Value: Value{Start: now, Expiry: now.Add(time.Hour)}}
	kn.put(wide, true, p72)
	one := &Entry{Key: Key{Node: "hosta", Jail: "sshd", Prefix: AddrKey(netip.MustParseAddr("2001:db8::5"))}, Value: Value{Start: now, Expiry: now.Add(2 * time.Hour)}}
	kn.put(one, true, one.Key.Prefix)
	for _, origin := range []string{"hosta", "hostb"} {
		kn.put(&Entry{Key: Key{Node: "collector", Jail: "postfix", Prefix: one.Key.Prefix, Origin: origin},
			Value: Value{Start: now, Scope: ScopeOrigin, Origin: origin}}, origin == "hosta", one.Key.Prefix)
	}

	var covering []string
	kn.eachCovering(one.Key.Prefix, func(k Key, _ knownKey, _ knownBan) bool {
		covering = append(covering, k.String())
		return true
	})
	slices.Sort(covering)
	want := []string{"collector.postfix.2001-db8--5_128.hosta", "collector.postfix.2001-db8--5_128.hostb",
		"collector.sshd.2001-db8--_64", "hosta.sshd.2001-db8--5_128"}
	if !slices.Equal(covering, want) {
		t.Errorf("bans covering 2001:db8::5: %v, want %v", covering, want)
	}
	if got := kn.lastExpiry(netip.MustParsePrefix("2001:db8::6/128")); !got.Equal(now.Add(time.Hour)) {
		t.Errorf("last expiry of 2001:db8::6: %v, want the /64's", got)
	}
	if got := kn.applied(wide.Key); got != p72 {
		t.Errorf("the /64 is in force as %v, want %v", got, p72)
	}
	if _, ok := kn.wantedExpiry("sshd", p64); ok {
		t.Error("the narrowed /64 is wanted under its own prefix")
	}
	if got := kn.narrowedCovering(netip.MustParsePrefix("2001:db8::ff:1/128")); !got[jailNet{"sshd", p72}] {
		t.Errorf("narrowed bans covering an address of the /64 outside the /72: %v", got)
	}
	if !kn.has(Key{Node: "collector", Jail: "postfix", Prefix: one.Key.Prefix, Origin: "hostb"}) {
		t.Error("hostb's origin key was replaced by hosta's")
	}
	if !kn.remove(wide.Key) || len(kn.narrowed) != 0 {
		t.Error("removing the /64 leaves its narrowed prefix")
	}
}
