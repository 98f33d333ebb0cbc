package store

import (
	"context"
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sysban/sysban"
)

func prefixRec(jail, prefix, seen string, start time.Time, d time.Duration) Record {
	r := Record{Ban: sysban.Ban{Jail: jail, Prefix: pfx(prefix), Start: start, Duration: d, Failures: 3}, Source: "pipeline"}
	if seen != "" {
		r.Addr = netip.MustParseAddr(seen)
	}
	return r
}

func prefixKeys(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Jail + " " + r.Network().String()
	}
	slices.Sort(out)
	return out
}

// TestPrefixBans: prefix bans are stored beside single-address bans of the
// same network address, found by every address they cover, lifted only
// when named exactly, and counted as offences per prefix.
func TestPrefixBans(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s,
		prefixRec("sshd", "2001:db8::/48", "", t0, time.Hour),
		prefixRec("sshd", "2001:db8::/64", "2001:db8::5", t0, 2*time.Hour),
		prefixRec("sshd", "2001:db8::", "2001:db8::", t0, time.Hour),
		prefixRec("sshd", "198.51.100.0/24", "198.51.100.7", t0, time.Hour),
		prefixRec("web", "::ffff:198.51.100.0/120", "::ffff:198.51.100.9", t0, time.Hour),
	)
	due, err := s.Due(t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sshd 198.51.100.0/24", "sshd 2001:db8::/128", "sshd 2001:db8::/48", "sshd 2001:db8::/64", "web 198.51.100.0/24"}
	if got := prefixKeys(due); !slices.Equal(got, want) {
		t.Fatalf("Due = %v, want %v", got, want)
	}
	for _, r := range due {
		if r.Network().String() == "2001:db8::/64" && r.Addr != netip.MustParseAddr("2001:db8::5") {
			t.Errorf("the address seen is lost: %+v", r.Ban)
		}
		if r.Jail == "web" && r.Addr != netip.MustParseAddr("198.51.100.9") {
			t.Errorf("a mapped address seen must be stored as IPv4: %v", r.Addr)
		}
	}
	for _, tc := range []struct {
		lookup string
		want   []string
	}{
		{"2001:db8::5", []string{"sshd 2001:db8::/48", "sshd 2001:db8::/64"}},
		{"2001:db8::", []string{"sshd 2001:db8::/128", "sshd 2001:db8::/48", "sshd 2001:db8::/64"}},
		{"2001:db8:0:1::1", []string{"sshd 2001:db8::/48"}},
		{"2001:db8::/56", []string{"sshd 2001:db8::/48"}},
		{"2001:db9::1", nil},
		{"198.51.100.200", []string{"sshd 198.51.100.0/24", "web 198.51.100.0/24"}},
	} {
		got, err := s.Lookup(pfx(tc.lookup))
		if err != nil {
			t.Fatal(err)
		}
		if k := prefixKeys(got); !slices.Equal(k, tc.want) && len(k)+len(tc.want) > 0 {
			t.Errorf("Lookup(%s) = %v, want %v", tc.lookup, k, tc.want)
		}
	}
	// Lifting the /48 leaves the /64 and the address inside it.
	removed, err := s.Remove("sshd", []netip.Prefix{pfx("2001:db8::/48")}, "manual")
	if err != nil || len(removed) != 1 {
		t.Fatalf("Remove /48 = %v, %v", prefixKeys(removed), err)
	}
	if got, _ := s.Lookup(pfx("2001:db8::5")); !slices.Equal(prefixKeys(got), []string{"sshd 2001:db8::/64"}) {
		t.Errorf("after lifting the /48: %v", prefixKeys(got))
	}
	// A prefix banned again is a repeat offender; its single network
	// address is a different offender.
	mustRecord(t, s, prefixRec("sshd", "2001:db8::/64", "2001:db8::77", t0.Add(time.Minute), time.Hour))
	for _, tc := range []struct {
		p    string
		want int
	}{{"2001:db8::/64", 2}, {"2001:db8::/48", 1}, {"2001:db8::", 1}, {"2001:db8::/56", 0}} {
		if n, err := s.Offences("sshd", pfx(tc.p)); err != nil || n != tc.want {
			t.Errorf("Offences(%s) = %d, %v; want %d", tc.p, n, err, tc.want)
		}
	}
	h, err := s.History(netip.MustParseAddr("2001:db8::"), 0)
	if err != nil || len(h) == 0 || h[0].Prefix() != pfx("2001:db8::/64") {
		t.Errorf("History: %+v, %v", h, err)
	}
}

// TestVersion1StoreRestores: a state file written before prefix bans
// (version 1 values, keys of jail and address) still restores, counts
// offences and lifts.
func TestVersion1StoreRestores(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	start := time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		bans, _ := tx.CreateBucket(bucketBans)
		hist, _ := tx.CreateBucket(bucketHistory)
		if err := meta.Put(keyVersion, []byte{1}); err != nil {
			return err
		}
		for _, a := range []string{"192.0.2.7", "2001:db8::7"} {
			addr := netip.MustParseAddr(a)
			a16 := addr.As16()
			// Version 1 ban value: version, start, duration, failures,
			// offences, source, lines.
			v := []byte{1}
			v = binary.AppendVarint(v, start.UnixNano())
			v = binary.AppendVarint(v, int64(2*time.Hour))
			v = binary.AppendUvarint(v, 5)
			v = binary.AppendUvarint(v, 1)
			v = appendString(v, "pipeline")
			v = binary.AppendUvarint(v, 1)
			v = appendString(v, "Failed password from "+a)
			if err := bans.Put(append([]byte("sshd\x00"), a16[:]...), v); err != nil {
				return err
			}
			// Version 1 event: version, kind, jail, duration, failures,
			// offences, source, reason.
			e := []byte{1, byte(EventBan)}
			e = appendString(e, "sshd")
			e = binary.AppendVarint(e, int64(2*time.Hour))
			e = binary.AppendUvarint(e, 5)
			e = binary.AppendUvarint(e, 1)
			e = appendString(e, "pipeline")
			e = appendString(e, "")
			if err := hist.Put(historyKey(addr, start, 1), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	c := newClock()
	s, err := Open(path, Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []sysban.Ban
	n, err := s.Restore(t.Context(), applierFunc(func(bans []sysban.Ban) { got = append(got, bans...) }), c.Now(), 0)
	if err != nil || n != 2 {
		t.Fatalf("Restore = %d, %v", n, err)
	}
	for _, b := range got {
		if !b.Network().IsSingleIP() || b.Addr != b.Network().Addr() || b.Duration != 2*time.Hour || len(b.Lines) != 1 {
			t.Errorf("restored %+v", b)
		}
	}
	if n, err := s.Offences("sshd", pfx("2001:db8::7")); err != nil || n != 1 {
		t.Errorf("Offences of a version 1 ban = %d, %v", n, err)
	}
	// A new ban of the same address counts the old one and replaces it.
	mustRecord(t, s, rec("sshd", "192.0.2.7", c.Now(), time.Hour))
	if got, _ := s.Lookup(pfx("192.0.2.7")); len(got) != 1 || got[0].Offences != 2 {
		t.Errorf("after a new ban: %+v", got)
	}
	if removed, err := s.Remove("sshd", []netip.Prefix{pfx("2001:db8::7")}, "manual"); err != nil || len(removed) != 1 {
		t.Errorf("Remove of a version 1 ban = %v, %v", removed, err)
	}
}

type applierFunc func([]sysban.Ban)

func (f applierFunc) Apply(_ context.Context, bans []sysban.Ban) error {
	f(bans)
	return nil
}

// TestObservedBans: the observed flag survives the store, and Enforce
// turns the due observed bans of one jail into enforced ones, leaving the
// expired, the enforced and other jails' alone, without new history.
func TestObservedBans(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	obs := func(jail, p string, d time.Duration) Record {
		r := prefixRec(jail, p, "", t0, d)
		r.Observed = true
		return r
	}
	mustRecord(t, s, obs("sshd", "2001:db8:1::/64", time.Hour), obs("sshd", "192.0.2.1", time.Minute),
		prefixRec("sshd", "192.0.2.2", "", t0, time.Hour), obs("web", "192.0.2.3", time.Hour))
	due, _ := s.Due(t0)
	observed := 0
	for _, r := range due {
		if r.Observed {
			observed++
		}
	}
	if observed != 3 {
		t.Fatalf("observed after a round trip: %d of %v, want 3", observed, prefixKeys(due))
	}
	c.Add(2 * time.Minute)
	got, err := s.Enforce("sshd", c.Now())
	if err != nil || len(got) != 1 || got[0].Network() != pfx("2001:db8:1::/64") || got[0].Observed {
		t.Fatalf("Enforce = %+v, %v", got, err)
	}
	if rs, _ := s.Lookup(pfx("2001:db8:1::5")); len(rs) != 1 || rs[0].Observed || rs[0].Offences != 1 {
		t.Errorf("after Enforce: %+v", rs)
	}
	if rs, _ := s.Lookup(pfx("192.0.2.3")); len(rs) != 1 || !rs[0].Observed {
		t.Errorf("another jail's observed ban changed: %+v", rs)
	}
}
