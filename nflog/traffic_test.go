package nflog

import (
	"net/netip"
	"testing"
	"time"
)

func TestTraffic(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("192.0.2.8")
	tr := NewTraffic(2)
	tr.Add("sshd", a, t0)
	tr.Add("sshd", netip.MustParseAddr("::ffff:192.0.2.7"), t0.Add(time.Second)) // the same host
	tr.Add("recidive", a, t0.Add(2*time.Second))
	tr.Add("sshd", a, t0.Add(-time.Second)) // late and out of order: Last stays
	got := tr.Lookup(a)
	want := []Seen{
		{Jail: "recidive", Addr: a, Packets: 1, First: t0.Add(2 * time.Second), Last: t0.Add(2 * time.Second)},
		{Jail: "sshd", Addr: a, Packets: 3, First: t0, Last: t0.Add(time.Second)},
	}
	if len(got) != len(want) {
		t.Fatalf("Lookup = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Lookup[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Size 2: b then c pushes out a, the least recently seen.
	tr.Add("sshd", b, t0)
	tr.Add("sshd", a, t0) // a is fresh again
	tr.Add("sshd", c, t0) // so b goes
	if tr.Len() != 2 {
		t.Errorf("Len = %d, want 2", tr.Len())
	}
	if tr.Lookup(b) != nil {
		t.Error("the least recently seen address was kept beyond the size")
	}
	if tr.Lookup(a) == nil || tr.Lookup(c) == nil {
		t.Error("recent addresses were forgotten")
	}
	if NewTraffic(0).max != DefaultTrafficSize {
		t.Error("size 0 does not give the default")
	}
}
