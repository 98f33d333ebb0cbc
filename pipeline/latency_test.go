package pipeline

import (
	"fmt"
	"runtime"
	"testing"
)

// TestBanNotHeldByBusyReceiver checks that a ban goes to the Applier before
// the goroutine that decided it (a receiver that never blocks under load)
// runs on. With one processor that goroutine is the only thing keeping the
// worker off the CPU, so Handle returning before the ban was applied means
// the ban would wait for a preemption tick (10 ms) on a busy machine.
func TestBanNotHeldByBusyReceiver(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	fb := &fakeBanner{}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, p)
	defer stop()
	p.Handle(sshMsg(addrN(0)))
	waitFor(t, "first ban applied", func() bool { return len(fb.bans()) == 1 })
	// The scheduler takes from its global queue on every 61st tick, which
	// can put the yielding goroutine first now and then; all but a few
	// bans must be applied before Handle returns (without the yield,
	// none is).
	const n = 200
	atOnce := 0
	for i := 1; i <= n; i++ {
		p.Handle(sshMsg(addrN(i)))
		// No blocking call between Handle and this check.
		if len(fb.bans()) == i+1 {
			atOnce++
		}
		waitFor(t, "ban applied", func() bool { return len(fb.bans()) == i+1 })
	}
	if atOnce < n*9/10 {
		t.Errorf("%d of %d bans applied before Handle returned, want at least %d", atOnce, n, n*9/10)
	}
	if got := fmt.Sprint(fb.bans()[n].Addr); got != addrN(n) {
		t.Errorf("last ban for %s, want %s", got, addrN(n))
	}
}
