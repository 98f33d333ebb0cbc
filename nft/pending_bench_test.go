package nft

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkPendingSet100k times collecting 100k single-address elements
// for one set: the userspace half of applying 100k single bans.
func BenchmarkPendingSet100k(b *testing.B) {
	addrs := make([]netip.Addr, 100_000)
	for i := range addrs {
		var a [16]byte
		a[0], a[1], a[12], a[13], a[14], a[15] = 0x20, 0x01, byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		addrs[i] = netip.AddrFrom16(a)
	}
	for b.Loop() {
		var p pendingSet
		for _, a := range addrs {
			p.put(a, time.Hour)
		}
	}
}
