package pipeline

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/sysban/sysban"
)

// Retry policy for Applier.Apply: attempts in all, and the first backoff,
// doubled after each failure (0.25s, 0.5s, 1s). Short enough that a
// transient netlink error costs seconds, long enough not to spin.
const (
	applyAttempts = 4
	applyBackoff  = 250 * time.Millisecond
	// flushTimeout bounds each Apply made after ctx is done, so shutdown
	// cannot hang on a stuck firewall.
	flushTimeout = 10 * time.Second
	// During a ban storm (the previous batch held more than one ban, as
	// bans queued while it was applied, and finished less than stormWindow
	// ago) the worker lingers up to stormLinger for more bans
	// before applying: each Apply costs a store commit with an fsync and
	// a netlink round trip whatever its size, so batches of tens instead
	// of thousands made those commits the CPU hog that slowed ingestion.
	// A ban that finds the worker idle (the idle latency target) never
	// waits, nor do bans that come one at a time.
	stormWindow = 20 * time.Millisecond
	stormLinger = 5 * time.Millisecond
)

// enqueue hands b to the ban worker. A full queue blocks the caller
// (backpressure on the receivers) rather than dropping a ban. That cannot
// deadlock on shutdown: Run keeps draining until every enqueuer that got
// past the stopping check has sent (inflight is zero), and enqueuers that
// arrive later log the ban as lost instead of blocking on a queue nobody
// drains. (Before Run starts, a full queue blocks until it does.)
//
// After the send it yields the processor. The send makes a parked worker
// runnable on this goroutine's processor only, and a receiver under load
// never blocks, so without the yield the ban would wait for the scheduler's
// preemption tick (10 ms) whenever the other processors are busy too; with
// it the worker starts the batch at once. Bans are rare next to messages,
// and while the worker is inside Apply the yield finds it not runnable and
// costs a Gosched: batches still form from what queues during an Apply.
func (p *Pipeline) enqueue(b sysban.Ban) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if !p.stopping.Load() {
		if p.decided != nil {
			p.decided(b)
		}
		p.queue <- &b
		runtime.Gosched()
		return
	}
	p.bansLost.Add(1)
	p.log.Error("ban lost: pipeline stopped", "jail", b.Jail, "prefix", b.Network())
	p.forget([]sysban.Ban{b})
}

// Run is the ban worker (and runs the hostname resolver): it drains the ban queue in batches of up to 4096
// and calls Applier.Apply once per batch. Failed batches are retried with
// backoff and, if still failing, logged as lost. When ctx is done it
// flushes what is queued and returns nil. Run may be called once.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: Run called twice")
	}
	// The resolver's workers count failures, which may enqueue bans. They
	// stop on ctx too; shutdown waits for any enqueue already under way,
	// and a later one is logged as lost like any enqueue after Run.
	dnsDone := make(chan struct{})
	go func() {
		defer close(dnsDone)
		p.runResolver(ctx)
	}()
	var (
		lastApply time.Time // when the previous batch finished
		lastSize  int       // and how many bans it held
	)
	for {
		select {
		case <-ctx.Done():
			p.shutdown(ctx)
			<-dnsDone
			return nil
		case b := <-p.queue:
			batch := p.drain(*b)
			if len(batch) < maxBatch && lastSize > 1 && time.Since(lastApply) < p.stormWindow {
				batch = p.linger(ctx, batch)
			}
			p.apply(ctx, batch)
			p.batches.Add(1)
			lastApply, lastSize = time.Now(), len(batch)
		}
	}
}

// linger adds to batch what arrives within p.stormLinger, up to maxBatch.
func (p *Pipeline) linger(ctx context.Context, batch []sysban.Ban) []sysban.Ban {
	t := time.NewTimer(p.stormLinger)
	defer t.Stop()
	for len(batch) < maxBatch {
		select {
		case b := <-p.queue:
			batch = append(batch, *b)
		case <-t.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// drain returns first plus everything queued behind it, up to maxBatch.
// It allocates a fresh slice per batch so an Applier cannot see it reused.
func (p *Pipeline) drain(first sysban.Ban) []sysban.Ban {
	batch := make([]sysban.Ban, 1, min(maxBatch, 1+len(p.queue)))
	batch[0] = first
	for len(batch) < maxBatch {
		select {
		case b := <-p.queue:
			batch = append(batch, *b)
		default:
			return batch
		}
	}
	return batch
}

// shutdown stops new enqueues and flushes what is queued. Enqueuers that
// passed the stopping check before it was set are waited for (inflight), so
// a ban is either flushed here or logged as lost by enqueue, never stranded
// in the channel.
func (p *Pipeline) shutdown(ctx context.Context) {
	p.stopping.Store(true)
	for {
		select {
		case b := <-p.queue:
			p.apply(ctx, p.drain(*b))
			continue
		default:
		}
		if p.inflight.Load() == 0 && len(p.queue) == 0 {
			return
		}
		runtime.Gosched()
	}
}

// apply delivers one batch, retrying with backoff. After ctx is done each
// attempt still gets a bounded context of its own: queued bans are decided
// bans, and shutdown is exactly when they must not vanish.
//
// Once a batch is applied its bans count in the recidive jails; the bans
// those decide are applied at once, here, rather than queued, because the
// worker must never block on its own queue. They do not count again, so
// this recurses once at most.
func (p *Pipeline) apply(ctx context.Context, batch []sysban.Ban) {
	p.applying.Add(int64(len(batch)))
	defer p.applying.Add(-int64(len(batch)))
	backoff := applyBackoff
	var err error
	for attempt := 1; attempt <= applyAttempts; attempt++ {
		err = p.applyOnce(ctx, batch)
		if err == nil {
			p.announce(batch)
			if more := append(p.recidiveBans(batch), p.escalatedBans(batch)...); len(more) > 0 {
				p.apply(ctx, more)
			}
			return
		}
		p.banErrors.Add(1)
		p.log.Warn("apply bans failed", "bans", len(batch), "attempt", attempt, "err", err)
		if attempt < applyAttempts {
			p.wait(ctx, backoff)
			backoff *= 2
		}
	}
	p.bansLost.Add(uint64(len(batch)))
	p.log.Error("bans lost: apply kept failing", "bans", len(batch), "attempts", applyAttempts, "err", err)
	// Forget them so further failures from these addresses can ban again.
	p.forget(batch)
}

func (p *Pipeline) applyOnce(ctx context.Context, batch []sysban.Ban) error {
	if ctx.Err() == nil {
		return p.banner.Apply(ctx, batch)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	return p.banner.Apply(fctx, batch)
}

// announce says what a batch the Applier took banned: the "ban" log line,
// the jail's TotalBanned and CurrentlyBanned. It runs only after Apply
// returned nil, which in the daemon means the store's Journal recorded the
// batch (fsync) and the kernel has it, so that nothing is announced that a
// kill -9 could lose: a ban in the queue or in an Apply under way is not
// kept yet and is not announced. (The notifier is told by the daemon's
// Applier itself, after the Journal, for the same reason.)
func (p *Pipeline) announce(batch []sysban.Ban) {
	tab := p.tab.Load()
	for _, b := range batch {
		if j := tab.byName[b.Jail]; j != nil {
			j.keep(b.Network())
			j.countBan(b.Network())
			j.totalBanned.Add(1)
			if b.Observed {
				j.observed.Add(1)
			}
		}
		msg := "ban"
		if b.Observed {
			msg = "observed ban (observe mode: not enforced)"
		}
		p.log.Info(msg, "jail", b.Jail, "prefix", b.Network(), "addr", b.Addr, "failures", b.Failures, "bantime", banTimeString(b.Duration))
	}
}

func (p *Pipeline) forget(bans []sysban.Ban) {
	for _, b := range bans {
		if j := p.tab.Load().byName[b.Jail]; j != nil {
			j.forget(b.Network())
		}
	}
}

// sleepCtx waits d or until ctx is done, whichever is first; after ctx is
// done retries go ahead without waiting so shutdown stays bounded.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
