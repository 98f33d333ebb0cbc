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

// BenchmarkGuardCheck measures one check of Guard on an intact table
// holding n bans: "full" compares layout and elements (what a notification
// starts, and the reconcile at most every elementBudget times its cost),
// "layout" only the table, chain, rules and sets (the reconcile at the
// other ticks). Needs root.
func BenchmarkGuardCheck(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ns := newNetNS(b, "a")
			be := openIn(b, ns, Options{Logger: slog.New(slog.DiscardHandler)})
			ctx := testCtx(b)
			if err := be.Setup(ctx, []sysban.JailRule{sshRule}); err != nil {
				b.Fatal(err)
			}
			src := &memSource{}
			src.add(manyBans("ssh", n, time.Now())...)
			if err := be.Apply(ctx, src.bans); err != nil {
				b.Fatal(err)
			}
			healed := 0
			g := &guard{b: be, src: src, opts: GuardOptions{Interval: time.Hour, OnHeal: func(string, int) { healed++ }}, log: be.log}
			if err := g.openReader(); err != nil {
				b.Fatal(err)
			}
			defer g.closeReader()
			for _, mode := range []string{"full", "layout"} {
				b.Run(mode, func(b *testing.B) {
					trigger := "monitor"
					if mode == "layout" {
						trigger = "reconcile"
					}
					for b.Loop() {
						g.nextElems = time.Now().Add(time.Hour)
						if err := g.check(ctx, trigger); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			if healed != 0 {
				b.Fatalf("%d repairs of an intact table", healed)
			}
		})
	}
}
