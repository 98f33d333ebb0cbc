package pipeline

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkJailDecide times the per-failure path after matching (decide:
// ignore check, counters, the jail's window and tracking), for the three
// shapes of traffic that matter: every failure from a new address at the
// maxtracked bound (an attack from many addresses, evicting), failures
// cycling over a few thousand addresses that never ban (the ring, full),
// and the same with maxretry 3 (bans, already-banned, expiry).
func BenchmarkJailDecide(b *testing.B) {
	const line = "Failed password for invalid user admin from 203.0.113.7 port 52211 ssh2"
	cases := []struct {
		name     string
		maxRetry int
		findTime time.Duration
		banTime  time.Duration
		addrs    int
	}{
		{"distinct", 5, 10 * time.Minute, time.Hour, 1 << 24},
		// Each address fails every 4096µs, 5 of them never inside 1ms.
		{"repeat", 5, time.Millisecond, time.Hour, 4096},
		{"ban", 3, 10 * time.Minute, time.Millisecond, 4096},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p, err := New(Config{MaxTracked: 100_000, Jails: []JailSpec{{Name: "sshd", Filter: "sshd",
				MaxRetry: c.maxRetry, FindTime: c.findTime, BanTime: c.banTime}}}, nopBanner{}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			j := p.tab.Load().jails[0]
			start := p.epoch
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % c.addrs
				a := netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})
				p.decide(j, a, false, start.Add(time.Duration(i)*time.Microsecond), line)
				i++
			}
		})
	}
}
