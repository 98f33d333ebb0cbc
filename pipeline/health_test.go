package pipeline

import (
	"context"
	"testing"

	"github.com/sysban/sysban"
)

// stuckBanner blocks every Apply until release is closed: a firewall call
// that never returns.
type stuckBanner struct {
	entered chan struct{}
	release chan struct{}
}

func (b *stuckBanner) Apply(ctx context.Context, _ []sysban.Ban) error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

// A worker stuck in Apply shows as bans queued behind a batch count that
// does not move; once it returns, the count moves and the queue drains.
func TestWorkerProgress(t *testing.T) {
	sb := &stuckBanner{entered: make(chan struct{}, 4), release: make(chan struct{})}
	p, err := New(Config{Jails: []JailSpec{banOnce}}, sb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q, n := p.WorkerProgress(); q != 0 || n != 0 {
		t.Fatalf("fresh pipeline: queued %d batches %d, want 0 0", q, n)
	}
	stop := startRun(t, p)
	defer stop()
	p.Handle(sshMsg("192.0.2.1"))
	<-sb.entered // the worker is inside Apply with the first ban
	p.Handle(sshMsg("192.0.2.2"))
	if q, n := p.WorkerProgress(); q != 1 || n != 0 {
		t.Fatalf("worker stuck: queued %d batches %d, want 1 0", q, n)
	}
	close(sb.release)
	waitFor(t, "both batches finished", func() bool {
		q, n := p.WorkerProgress()
		return q == 0 && n == 2
	})
}
