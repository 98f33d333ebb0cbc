package pipeline

// Helpers the tests of this package share: a settable clock, a banner that
// records, a pipeline built for tests, the built-in filters' sample logs.

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/internal/sample"
)

// fakeClock is a settable clock; tests advance it instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeBanner records the batches it is given and fails the first failN calls.
type fakeBanner struct {
	mu      sync.Mutex
	batches [][]sysban.Ban
	calls   int
	failN   int
	ctxDone []bool // per call: was ctx already done?
}

func (b *fakeBanner) Apply(ctx context.Context, bans []sysban.Ban) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.ctxDone = append(b.ctxDone, ctx.Err() != nil)
	if b.calls <= b.failN {
		return errors.New("netlink: fake failure")
	}
	b.batches = append(b.batches, append([]sysban.Ban(nil), bans...))
	return nil
}

func (b *fakeBanner) bans() []sysban.Ban {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []sysban.Ban
	for _, batch := range b.batches {
		out = append(out, batch...)
	}
	return out
}

func (b *fakeBanner) numBatches() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.batches)
}

var sshJail = JailSpec{Name: "sshd", Filter: "sshd", MaxRetry: 3, FindTime: 10 * time.Minute, BanTime: time.Hour}

// newTestPipeline builds a pipeline with a fake banner; if cfg has no
// jails it gets the sshd jail.
func newTestPipeline(t testing.TB, cfg Config, opts Options) *Pipeline {
	t.Helper()
	if cfg.Jails == nil {
		cfg.Jails = []JailSpec{sshJail}
	}
	p, err := New(cfg, &fakeBanner{}, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.wait = func(context.Context, time.Duration) {}
	return p
}

// queued takes everything in the ban queue without a worker.
func queued(p *Pipeline) []sysban.Ban {
	var out []sysban.Ban
	for {
		select {
		case b := <-p.queue:
			out = append(out, *b)
		default:
			return out
		}
	}
}

// keptQueued takes everything in the ban queue and applies it as the
// worker does (apply), so that the bans are kept and announced.
func keptQueued(p *Pipeline) []sysban.Ban {
	out := queued(p)
	if len(out) > 0 {
		p.apply(context.Background(), slices.Clone(out))
	}
	return out
}

func sshMsg(addr string) *sysban.Message {
	return &sysban.Message{AppName: "sshd", Text: "Invalid user x from " + addr + " port 22"}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not waiting out a delay
	}
}

// samplesDir holds the built-in filters' annotated sample logs.
var samplesDir = filepath.Join("filters", "testdata")

// samplePaths returns the sample logs, failing tb when there are none.
func samplePaths(tb testing.TB) []string {
	tb.Helper()
	paths, err := sample.Paths(samplesDir)
	if err != nil {
		tb.Fatal(err)
	}
	return paths
}

// outcomeOf renders what the tester did with a line the way annotations
// write it.
func outcomeOf(ms []Match) string {
	if len(ms) == 0 {
		return sample.Annotation(false, false, false, false, 0, "")
	}
	return sample.Annotation(true, ms[0].Ignored, ms[0].Pending, ms[0].Repeat, ms[0].Count, ms[0].Host)
}

// singleAddrMask is the key mask of a jail that counts single addresses.
var singleAddrMask = newKeyMask(0, 0)

// single is a as a single-address prefix.
func single(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
