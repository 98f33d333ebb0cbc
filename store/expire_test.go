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
