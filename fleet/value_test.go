package fleet

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestTTLFor(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		left time.Duration
		want time.Duration
		ok   bool
	}{
		{10 * time.Second, 10 * time.Second, true},
		{1500 * time.Millisecond, 2 * time.Second, true},
		{time.Millisecond, time.Second, true}, // the server's minimum
		{0, 0, false},
		{-time.Second, 0, false},
	} {
		got, ok := ttlFor(now.Add(tc.left), now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ttlFor(+%v) = %v, %v; want %v, %v", tc.left, got, ok, tc.want, tc.ok)
		}
	}
	if got, ok := ttlFor(time.Time{}, now); got != 0 || !ok {
		t.Errorf("permanent: ttlFor = %v, %v; want no TTL", got, ok)
	}
}

func TestDecodeEntry(t *testing.T) {
	now := time.Unix(100000, 0).UTC()
	ban := sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("203.0.113.7"), Start: now.Add(-time.Minute), Duration: time.Hour, Failures: 5}
	good := newValue(ban, "collector", "hosta", ScopeFleet, now)
	key := Key{Node: "collector", Jail: "sshd", Prefix: AddrKey(ban.Addr)}.String()
	enc := func(v Value) []byte { b, _ := json.Marshal(v); return b }

	e, err := decodeEntry(key, enc(good), now)
	if err != nil {
		t.Fatal(err)
	}
	if b := e.Ban(); b.Addr != ban.Addr || b.Jail != "sshd" || b.Duration != time.Hour || !b.Start.Equal(ban.Start) {
		t.Errorf("Ban() = %+v", b)
	}
	mut := func(f func(*Value)) []byte { v := good; f(&v); return enc(v) }
	for name, data := range map[string][]byte{
		"not json":          []byte("{"),
		"other node":        mut(func(v *Value) { v.Node = "hostb" }),
		"future start":      mut(func(v *Value) { v.Start = now.Add(time.Hour) }),
		"no start":          mut(func(v *Value) { v.Start = time.Time{} }),
		"expiry <= start":   mut(func(v *Value) { v.Expiry = v.Start }),
		"bad scope":         mut(func(v *Value) { v.Scope = "all" }),
		"origin w/o origin": mut(func(v *Value) { v.Scope = ScopeOrigin; v.Origin = "" }),
		"too large":         make([]byte, maxValueBytes+1),
	} {
		if _, err := decodeEntry(key, data, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := decodeEntry("collector._unban.203-0-113-7_32", enc(good), now); err == nil {
		t.Error("a tombstone key decoded as a ban")
	}
}

// FuzzDecodeEntry: a bucket entry is outside bytes; whatever it holds,
// decoding never panics and what it accepts is sane for the kernel.
func FuzzDecodeEntry(f *testing.F) {
	f.Add("collector.sshd.203-0-113-7_32", []byte(`{"start":"2026-01-01T00:00:00Z","expiry":"2026-01-01T01:00:00Z","node":"collector","scope":"fleet"}`))
	f.Add("a.sshd.--_0", []byte(`{"start":"2026-01-01T00:00:00Z","node":"a","scope":"origin","origin":"h"}`))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, key string, data []byte) {
		e, err := decodeEntry(key, data, now)
		if err != nil {
			return
		}
		b := e.Ban()
		if n := b.Network(); !n.IsValid() || b.Addr.IsValid() && !n.Contains(b.Addr) || b.Start.After(now.Add(maxClockSkew)) || (!b.Permanent() && b.Duration <= 0) {
			t.Fatalf("accepted %q %q as %+v", key, data, b)
		}
	})
}

// Log lines are attacker text: lines that JSON escapes six bytes a
// character never push a ban over an enforcer's size limit, signed.
func TestValueFitsWithEscapedLines(t *testing.T) {
	now := time.Unix(100000, 0).UTC()
	lines := []string{strings.Repeat("<", 600), strings.Repeat("\xff", 600), strings.Repeat("&", 600), "Failed password for root"}
	b := sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("203.0.113.7"), Start: now, Duration: time.Hour, Lines: lines}
	v := newValue(b, "hosta", "web1", ScopeFleet, now)
	if len(v.Lines) == 0 || v.Lines[len(v.Lines)-1] != "Failed password for root" {
		t.Errorf("lines kept: %d, want the newest at least", len(v.Lines))
	}
	kp, _ := newNKey(t)
	s, _ := newSigner(kp)
	key := Key{Node: "hosta", Jail: "sshd", Prefix: AddrKey(b.Addr)}.String()
	sv, err := s.sign(key, v)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(sv)
	if _, err := decodeEntry(key, data, now); err != nil {
		t.Errorf("%d bytes signed: %v", len(data), err)
	}
}
