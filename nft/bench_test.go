package nft

import (
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	sysban "github.com/sysban/sysban"
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
// other ticks), "unchanged" a check that finds the kernel's ruleset
// generation and the source's where a clean check left them (what the
// reconcile costs on an idle host). Besides time and allocations it reports the heap a check
// adds at its most (heap objects, live or not yet swept, sampled every
// 100 µs above the heap after a GC before it): what the daemon's RSS
// follows. Needs root.
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
			g := &guard{b: be, opts: GuardOptions{Interval: time.Hour, OnHeal: func(string, int) { healed++ }}, log: be.log}
			if err := g.openReader(); err != nil {
				b.Fatal(err)
			}
			defer g.closeReader()
			for _, mode := range []string{"full", "full-cold", "layout", "unchanged"} {
				b.Run(mode, func(b *testing.B) {
					trigger := "monitor"
					if mode == "layout" {
						trigger = "reconcile"
					}
					// A source without a generation is read at every
					// check; with one, a check after a clean one with
					// nothing changed reads nothing.
					g.src, g.clean = unversioned{src}, generations{}
					if mode == "unchanged" {
						g.src = src
						if err := g.check(ctx, trigger); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportAllocs()
					peak := uint64(0)
					for b.Loop() {
						g.nextElems = time.Now().Add(time.Hour)
						if mode == "full-cold" {
							g.keyHints = nil // as the first check after a start or a late join
						}
						var err error
						peak = max(peak, heapPeak(func() { err = g.check(ctx, trigger) }))
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				})
			}
			if healed != 0 {
				b.Fatalf("%d repairs of an intact table", healed)
			}
		})
	}
}

// heapPeak runs fn and returns how far the heap's objects (live or not yet
// swept) rose above their level after a GC before it, sampled every 100 µs.
func heapPeak(fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		peak := base
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				done <- max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	fn()
	close(stop)
	return <-done - base
}
