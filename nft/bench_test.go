package nft

import (
	"fmt"
	"log/slog"

	sysban "github.com/sysban/sysban"
	"testing"
	"time"
)

// BenchmarkApply measures applying n new bans (half IPv6) in one call to
// freshly set-up sets. Needs root; runs in its own namespace.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ns := newNetNS(b, "a")
			be := openIn(b, ns, Options{Logger: slog.New(slog.DiscardHandler)})
			ctx := testCtx(b)
			bans := manyBans("ssh", n, time.Now())
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				if err := be.Teardown(ctx); err != nil {
					b.Fatal(err)
				}
				if err := be.Setup(ctx, []sysban.JailRule{sshRule}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := be.Apply(ctx, bans); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "bans/op")
		})
	}
}
