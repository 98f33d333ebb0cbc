package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// gateApplier holds every Apply until release is closed, and says on
// entered when one began.
type gateApplier struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gateApplier) Apply(ctx context.Context, bans []sysban.Ban) error {
	g.entered <- struct{}{}
	<-g.release
	return nil
}

// banLog is a logger and a count of its "ban" lines.
func banLog() (*slog.Logger, func() int) {
	var mu sync.Mutex
	var buf bytes.Buffer
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(buf.String(), "msg=ban ")
	}
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil)), count
}

// TestBanAnnouncedOnlyOnceKept: a decided ban is neither logged nor counted
// as banned while the Applier (the store's Journal in the daemon) has not
// taken it; it is queued (Stats.Queued) and already stops a second decision.
// Once Apply returns, it is logged and counted.
func TestBanAnnouncedOnlyOnceKept(t *testing.T) {
	g := &gateApplier{entered: make(chan struct{}, 1), release: make(chan struct{})}
	log, banLines := banLog()
	p, err := New(Config{Jails: []JailSpec{sshJail}}, g, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, p)
	defer stop()
	for range 3 {
		p.Handle(sshMsg("192.0.2.7"))
	}
	<-g.entered // the worker is inside Apply: decided, not kept
	st := p.Stats()
	if js := st.Jails["sshd"]; js.TotalBanned != 0 || js.CurrentlyBanned != 0 || st.Queued != 1 || banLines() != 0 {
		t.Fatalf("while Apply runs: stats %+v, %d ban lines; want nothing announced, 1 queued", st, banLines())
	}
	p.Handle(sshMsg("192.0.2.7"))
	if js := p.Stats().Jails["sshd"]; js.AlreadyBanned != 1 {
		t.Fatalf("a failure while the ban is on its way: %+v, want already banned", js)
	}
	close(g.release)
	waitFor(t, "the ban line", func() bool { return banLines() == 1 })
	st = p.Stats()
	if js := st.Jails["sshd"]; js.TotalBanned != 1 || js.CurrentlyBanned != 1 || st.Queued != 0 {
		t.Fatalf("after Apply: stats %+v; want 1 banned, none queued", st)
	}
}

// TestBanNotAnnouncedWhenLost: a ban the Applier never took (it kept
// failing) is counted as lost and never announced.
func TestBanNotAnnouncedWhenLost(t *testing.T) {
	log, banLines := banLog()
	fb := &fakeBanner{failN: applyAttempts}
	p, err := New(Config{Jails: []JailSpec{sshJail}}, fb, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	p.wait = func(context.Context, time.Duration) {}
	for range 3 {
		p.Handle(sshMsg("192.0.2.7"))
	}
	keptQueued(p)
	st := p.Stats()
	if js := st.Jails["sshd"]; js.TotalBanned != 0 || js.CurrentlyBanned != 0 || st.BansLost != 1 || banLines() != 0 {
		t.Fatalf("stats %+v, %d ban lines; want 1 lost, nothing announced", st, banLines())
	}
}
