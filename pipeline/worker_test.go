package pipeline

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// banOnce is a jail that bans on the first failure, so each distinct
// address in a message is one ban.
var banOnce = JailSpec{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Hour}

func addrN(i int) string {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
}

func startRun(t *testing.T, p *Pipeline) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestRunBatches(t *testing.T) {
	const n = 10000
	fb := &fakeBanner{}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p.Handle(sshMsg(addrN(i)))
	}
	stop := startRun(t, p)
	waitFor(t, "all bans applied", func() bool { return len(fb.bans()) == n })
	stop()
	// Everything was queued before Run started: ceil(n/maxBatch) calls.
	if got, want := fb.numBatches(), (n+maxBatch-1)/maxBatch; got != want {
		t.Errorf("%d Apply calls for %d bans, want %d", got, n, want)
	}
	seen := make(map[netip.Addr]bool)
	for _, b := range fb.bans() {
		seen[b.Addr] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct addresses banned, want %d", len(seen), n)
	}
}

func TestRunTwice(t *testing.T) {
	p := newTestPipeline(t, Config{}, Options{})
	stop := startRun(t, p)
	defer stop()
	waitFor(t, "first Run started", p.running.Load)
	if err := p.Run(context.Background()); err == nil {
		t.Fatal("second Run did not fail")
	}
}

func TestApplyRetry(t *testing.T) {
	tests := []struct {
		name      string
		failN     int
		wantCalls int
		wantLost  uint64
	}{
		{"succeeds first time", 0, 1, 0},
		{"recovers after two failures", 2, 3, 0},
		{"gives up", 100, applyAttempts, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			fb := &fakeBanner{failN: tt.failN}
			p, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			var waits []time.Duration
			p.wait = func(_ context.Context, d time.Duration) { waits = append(waits, d) }
			p.Handle(sshMsg("192.0.2.7"))
			p.apply(context.Background(), queued(p))

			if fb.calls != tt.wantCalls {
				t.Errorf("%d Apply calls, want %d", fb.calls, tt.wantCalls)
			}
			st := p.Stats()
			if st.BanErrors != uint64(min(tt.failN, applyAttempts)) || st.BansLost != tt.wantLost {
				t.Errorf("BanErrors %d BansLost %d", st.BanErrors, st.BansLost)
			}
			for i, d := range waits {
				if want := applyBackoff << i; d != want {
					t.Errorf("backoff %d: %v, want %v", i, d, want)
				}
			}
			// A lost ban is forgotten so the address can be banned again;
			// an applied one is still in force.
			p.Handle(sshMsg("192.0.2.7"))
			if got := len(queued(p)); got != int(tt.wantLost) {
				t.Errorf("%d new bans after the retry outcome, want %d", got, tt.wantLost)
			}
		})
	}
}

func TestShutdownFlushes(t *testing.T) {
	fb := &fakeBanner{}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		p.Handle(sshMsg(addrN(i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already done: Run must still flush what is queued
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(fb.bans()); got != 100 {
		t.Fatalf("%d bans flushed, want 100", got)
	}
	for i, done := range fb.ctxDone {
		if done {
			t.Errorf("Apply %d got a done context during flush", i)
		}
	}
	// After Run has returned, Handle must not block on a full queue.
	p2, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		p2.Handle(sshMsg(addrN(i))) // would hang here if enqueue blocked
	}
	if st := p2.Stats(); st.BansLost != 5 {
		t.Fatalf("BansLost %d, want 5 (logged, not silently dropped)", st.BansLost)
	}
}

func TestBackpressure(t *testing.T) {
	fb := &fakeBanner{}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		p.Handle(sshMsg(addrN(i)))
	}
	// The queue is full: the next bans block their Handle calls...
	var wg sync.WaitGroup
	var returned sync.Map
	for i := 2; i < 6; i++ {
		wg.Go(func() {
			p.Handle(sshMsg(addrN(i)))
			returned.Store(i, true)
		})
	}
	waitFor(t, "blocked enqueuers", func() bool { return p.inflight.Load() == 4 })
	n := 0
	returned.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d Handle calls returned with a full queue", n)
	}
	// ...until the worker drains it; shutting down right away must still
	// deliver every ban and release every blocked caller.
	stop := startRun(t, p)
	stop()
	wg.Wait()
	if got := len(fb.bans()); got != 6 {
		t.Fatalf("%d bans delivered, want 6 (lost %d)", got, p.Stats().BansLost)
	}
}

// TestRunConcurrentShutdown races Handle against shutdown: every ban must
// end up either applied or counted as lost.
func TestRunConcurrentShutdown(t *testing.T) {
	fb := &fakeBanner{}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{QueueSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, p)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				p.Handle(sshMsg(fmt.Sprintf("2001:db8:%x::%x", g, i)))
			}
		})
	}
	waitFor(t, "some bans applied", func() bool { return len(fb.bans()) > 0 })
	stop()
	wg.Wait()
	st := p.Stats()
	applied := uint64(len(fb.bans()))
	if applied+st.BansLost != 2000 || st.Jails["j"].TotalBanned != applied {
		t.Fatalf("applied %d + lost %d != 2000 decided, or %d announced", applied, st.BansLost, st.Jails["j"].TotalBanned)
	}
	if st.Queued != 0 {
		t.Fatalf("%d bans stranded in the queue", st.Queued)
	}
}

// gatedBanner records batch sizes; while gate is set, Apply signals
// waiting and then waits on gate.
type gatedBanner struct {
	mu      sync.Mutex
	sizes   []int
	gate    chan struct{}
	waiting chan struct{}
}

func (g *gatedBanner) Apply(ctx context.Context, bans []sysban.Ban) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.waiting <- struct{}{}
		<-gate
	}
	g.mu.Lock()
	g.sizes = append(g.sizes, len(bans))
	g.mu.Unlock()
	return nil
}

func (g *gatedBanner) batchSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sizes)
}

// TestStormLinger: after a batch of several bans (a storm), the worker
// waits for more before the next Apply; after a batch of one it does not.
func TestStormLinger(t *testing.T) {
	gate := make(chan struct{})
	gb := &gatedBanner{gate: gate, waiting: make(chan struct{}, 1)}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, gb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Far beyond any scheduling delay, so only the rule decides. The
	// linger is waited out in full once (the storm's second batch).
	p.stormWindow, p.stormLinger = time.Minute, 2*time.Second
	stop := startRun(t, p)
	defer stop()

	// A ban that finds the worker idle goes at once; two more queue
	// behind it while its Apply is held: the storm.
	p.Handle(sshMsg(addrN(1)))
	<-gb.waiting // the worker is inside the first Apply
	p.Handle(sshMsg(addrN(2)))
	p.Handle(sshMsg(addrN(3)))
	gb.mu.Lock()
	gb.gate = nil
	gb.mu.Unlock()
	close(gate)
	waitFor(t, "two batches", func() bool { return len(gb.batchSizes()) == 2 })

	// Within the storm window: the next ban waits for the one after it,
	// which comes once the worker has taken the first off the queue.
	p.Handle(sshMsg(addrN(4)))
	waitFor(t, "the worker to take ban 4", func() bool { return len(p.queue) == 0 })
	p.Handle(sshMsg(addrN(5)))
	waitFor(t, "three batches", func() bool { return len(gb.batchSizes()) == 3 })
	if got := gb.batchSizes(); !slices.Equal(got, []int{1, 2, 2}) {
		t.Fatalf("batch sizes %v, want [1 2 2]: the storm's next batch should have lingered", got)
	}
	// Once the storm window has passed, a ban goes at once although the
	// previous batch held two: were it to linger, it would wait an hour.
	p.stormWindow, p.stormLinger = 0, time.Hour
	p.Handle(sshMsg(addrN(6)))
	waitFor(t, "four batches (a ban after the storm, not lingering)", func() bool { return len(gb.batchSizes()) == 4 })
}

// Options.Decided sees each ban as it is queued, before the worker applies
// it, with the ban the worker then hands to the Applier.
func TestDecidedBeforeApply(t *testing.T) {
	var mu sync.Mutex
	var decided []sysban.Ban
	fb := &fakeBanner{}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, fb, Options{Decided: func(b sysban.Ban) {
		mu.Lock()
		defer mu.Unlock()
		decided = append(decided, b)
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.Handle(sshMsg(addrN(1)))
	p.Handle(sshMsg(addrN(2)))
	mu.Lock()
	got := slices.Clone(decided)
	mu.Unlock()
	if len(got) != 2 || len(fb.bans()) != 0 {
		t.Fatalf("before Run: %d decided, %d applied; want 2, 0", len(got), len(fb.bans()))
	}
	stop := startRun(t, p)
	waitFor(t, "both applied", func() bool { return len(fb.bans()) == 2 })
	stop()
	for i, b := range fb.bans() {
		if d := got[i]; d.Jail != b.Jail || d.Network() != b.Network() || !d.Start.Equal(b.Start) || d.Origin != b.Origin {
			t.Errorf("decided %+v, applied %+v", d, b)
		}
	}
}
