package fleet

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// BenchmarkLateJoiner: an enforcer starting against n fleet bans, from
// connect to every ban handed to Local (the in-memory one: the kernel and
// store part is measured by scripts/bench's fleet section).
func BenchmarkLateJoiner100k(b *testing.B) {
	dir := b.TempDir()
	cc, srv := testServer(b, dir)
	pubNode := startNode(b, cc, srv)
	const n = 100000
	bans := make([]sysban.Ban, 0, 1000)
	pub := pubNode.Publisher(nopApplier{})
	for i := range n {
		bans = append(bans, sysban.Ban{Jail: "sshd", Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Start: time.Now(), Duration: time.Hour})
		if len(bans) == cap(bans) {
			pub.Apply(context.Background(), bans)
			bans = bans[:0]
		}
	}
	deadline := time.Now().Add(120 * time.Second)
	for counterValue(b, pubNode.stats.published) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		late := startNode(b, nodeConfig("hostb", srv.ClientURL()), nil)
		for late.local.len() < n {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s/join")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap-before-GC")
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap-live")
	}
}
