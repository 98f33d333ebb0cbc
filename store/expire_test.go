package store

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestExpire(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s,
		rec("sshd", "192.0.2.1", t0, time.Minute),
		rec("sshd", "192.0.2.2", t0, time.Hour),
		rec("sshd", "192.0.2.3", t0, sysban.Permanent),
		rec("dovecot", "192.0.2.4", t0, 2*time.Minute))
	c.Add(3 * time.Minute)

	got, err := s.Expire(c.Now(), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Expire(limit 1) = %v, %v; want one ban", got, err)
	}
	rest, err := s.Expire(c.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if k := keys(append(got, rest...)); !slices.Equal(sorted(k), []string{"dovecot 192.0.2.4", "sshd 192.0.2.1"}) {
		t.Errorf("expired = %v, want the two bans whose time ran out", k)
	}
	due, _ := s.Due(c.Now())
	if k := keys(due); !slices.Equal(sorted(k), []string{"sshd 192.0.2.2", "sshd 192.0.2.3"}) {
		t.Errorf("Due after Expire = %v", k)
	}
	h, err := s.History(netip.MustParseAddr("192.0.2.1"), 10)
	if err != nil || len(h) != 2 || h[0].Kind != EventUnban || h[0].Reason != "expired" {
		t.Errorf("history of 192.0.2.1 = %+v, %v; want unban(expired) newest first, then the ban", h, err)
	}
	if again, _ := s.Expire(c.Now(), 100); len(again) != 0 {
		t.Errorf("second Expire returned %v", again)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

// TestExpireScansOnlyWhenDue: Expire writes nothing (the generation stays)
// before the earliest expiry it knows of, finds a shorter ban recorded
// after its last scan, and every ban once its time has come.
func TestExpireScansOnlyWhenDue(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s, rec("sshd", "192.0.2.1", t0, time.Hour), rec("sshd", "192.0.2.2", t0, sysban.Permanent))
	if got, err := s.Expire(t0.Add(time.Second), 100); err != nil || len(got) != 0 {
		t.Fatalf("first Expire = %v, %v; want nothing", got, err)
	}
	gen := s.Generation()
	for _, at := range []time.Duration{5 * time.Second, 10 * time.Minute, 59 * time.Minute} {
		if got, err := s.Expire(t0.Add(at), 100); err != nil || len(got) != 0 {
			t.Fatalf("Expire at +%v = %v, %v; want nothing", at, got, err)
		}
	}
	if s.Generation() != gen {
		t.Errorf("Expire with nothing due wrote a transaction (generation %d -> %d)", gen, s.Generation())
	}
	// A shorter ban recorded after the scan lowers the next expiry.
	mustRecord(t, s, rec("sshd", "192.0.2.3", t0, 2*time.Minute))
	if got, _ := s.Expire(t0.Add(3*time.Minute), 100); !slices.Equal(keys(got), []string{"sshd 192.0.2.3"}) {
		t.Errorf("Expire after a shorter ban = %v, want it", keys(got))
	}
	if got, _ := s.Expire(t0.Add(time.Hour+time.Second), 100); !slices.Equal(keys(got), []string{"sshd 192.0.2.1"}) {
		t.Errorf("Expire at +1h = %v, want the hour's ban", keys(got))
	}
	due, _ := s.Due(t0.Add(2 * time.Hour))
	if !slices.Equal(keys(due), []string{"sshd 192.0.2.2"}) {
		t.Errorf("Due = %v, want the permanent ban alone", keys(due))
	}
}

// TestExpireLimitLeavesTheRestDue: a scan cut at its limit does not know
// the rest's expiries; the next call scans again.
func TestExpireLimitLeavesTheRestDue(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s, rec("sshd", "192.0.2.1", t0, time.Minute), rec("sshd", "192.0.2.2", t0, time.Minute), rec("sshd", "192.0.2.3", t0, time.Minute))
	n := 0
	for range 3 {
		got, err := s.Expire(t0.Add(2*time.Minute), 1)
		if err != nil {
			t.Fatal(err)
		}
		n += len(got)
	}
	if n != 3 {
		t.Errorf("three Expire calls of limit 1 expired %d bans, want 3", n)
	}
}
