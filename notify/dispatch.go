package notify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Dispatcher defaults.
const (
	DefaultQueueSize    = 1024
	DefaultDrainTimeout = 10 * time.Second
)

// dropLogInterval limits drop warnings to one per action per interval: under
// a ban storm with a dead relay, one line per dropped event would flood the
// log the admin needs to read.
const dropLogInterval = 10 * time.Second

// Options tune a Dispatcher. Zero values take the defaults.
type Options struct {
	QueueSize    int           // events queued per action; DefaultQueueSize
	DrainTimeout time.Duration // how long Close waits for queued events; DefaultDrainTimeout
	Logger       *slog.Logger  // nil discards
}

// Stats counts one action's events since the Dispatcher was made.
type Stats struct {
	Queued  int    // waiting now
	Sent    uint64 // delivered
	Failed  uint64 // Do returned an error (after the action's own retries)
	Dropped uint64 // never tried: queue full, or still queued at the drain deadline
}

type worker struct {
	name  string
	act   Action
	q     chan Event
	sent  atomic.Uint64
	fail  atomic.Uint64
	drop  atomic.Uint64
	lastW atomic.Int64 // unix nanos of the last drop warning
}

// Dispatcher fans events out to the actions of their jail. Each action has one
// worker goroutine and one bounded queue, so actions never wait for each other
// and Notify never waits for any of them.
type Dispatcher struct {
	log     *slog.Logger
	drain   time.Duration
	workers []*worker            // sorted by name
	byJail  map[string][]*worker // jail -> its actions

	mu     sync.RWMutex // guards closed against sends on closed queues
	closed bool

	// Workers run under actx, which is cancelled only at the drain
	// deadline: cancelling Run's ctx must not abort a mail half sent.
	actx     context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stop     chan struct{}
	stopOnce sync.Once
}

// New makes a Dispatcher for the named actions, run for the jails listed in
// jailActions (jail -> action names), and starts one worker per action. A jail
// naming an action that does not exist is an error; actions no jail uses are
// allowed and stay idle. Call Close (or Run and cancel its ctx) to stop it.
func New(actions map[string]Action, jailActions map[string][]string, opts Options) (*Dispatcher, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		log:    opts.Logger,
		drain:  opts.DrainTimeout,
		byJail: make(map[string][]*worker, len(jailActions)),
		stop:   make(chan struct{}),
	}
	byName := make(map[string]*worker, len(actions))
	for name, a := range actions {
		if a == nil {
			return nil, fmt.Errorf("notify: action %q is nil", name)
		}
		w := &worker{name: name, act: a, q: make(chan Event, opts.QueueSize)}
		byName[name] = w
		d.workers = append(d.workers, w)
	}
	sort.Slice(d.workers, func(i, j int) bool { return d.workers[i].name < d.workers[j].name })
	for jail, names := range jailActions {
		for _, n := range names {
			w, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("notify: jail %q: unknown action %q", jail, n)
			}
			if !slices.Contains(d.byJail[jail], w) {
				d.byJail[jail] = append(d.byJail[jail], w)
			}
		}
	}
	d.actx, d.cancel = context.WithCancel(context.Background())
	for _, w := range d.workers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.work(d.actx, w)
		}()
	}
	return d, nil
}

// Notify queues ev for every action of its jail and returns at once. When an
// action's queue is full the event is dropped for that action and counted;
// after Close every event is dropped. The event's Lines are copied, so the
// caller may reuse its slice.
func (d *Dispatcher) Notify(ev Event) {
	ws := d.byJail[ev.Ban.Jail]
	if len(ws) == 0 {
		return
	}
	ev.Lines = slices.Clone(ev.Lines)
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, w := range ws {
		if f, ok := w.act.(kindFilter); ok && !f.Wants(ev.Kind) {
			continue
		}
		if d.closed {
			w.drop.Add(1)
			continue
		}
		select {
		case w.q <- ev:
		default:
			n := w.drop.Add(1)
			d.warnDrop(w, n, ev)
		}
	}
}

func (d *Dispatcher) warnDrop(w *worker, total uint64, ev Event) {
	now := time.Now().UnixNano()
	last := w.lastW.Load()
	if now-last < int64(dropLogInterval) || !w.lastW.CompareAndSwap(last, now) {
		return
	}
	d.log.Warn("notify: action queue full, event dropped",
		"action", w.name, "jail", ev.Ban.Jail, "addr", ev.Ban.Target(), "event", ev.Kind,
		"dropped_total", total)
}

// Run ties the Dispatcher's life to ctx: it returns when ctx is cancelled or
// Close is called, once the queues are drained (see Close).
func (d *Dispatcher) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-d.stop:
	}
	d.shutdown()
	return nil
}

// Close stops accepting events and drains: queued events are still delivered
// until the drain deadline, then actions in flight are cancelled and what is
// left is counted as dropped. A shutdown should still send the mail it can,
// but not hang on a dead relay. Close is idempotent; every caller returns once
// the drain is over.
func (d *Dispatcher) Close() error {
	d.shutdown()
	return nil
}

func (d *Dispatcher) shutdown() {
	d.stopOnce.Do(func() {
		close(d.stop)
		d.closeQueues()
		finished := make(chan struct{})
		go func() {
			d.wg.Wait()
			close(finished)
		}()
		t := time.NewTimer(d.drain)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			d.log.Warn("notify: drain deadline passed, cancelling actions", "timeout", d.drain)
			d.cancel()
			<-finished
		}
		d.cancel()
	})
}

func (d *Dispatcher) closeQueues() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	for _, w := range d.workers {
		close(w.q)
	}
}

func (d *Dispatcher) work(ctx context.Context, w *worker) {
	log := d.log.With("action", w.name)
	for ev := range w.q {
		if ctx.Err() != nil {
			w.drop.Add(1)
			continue
		}
		start := time.Now()
		if err := do(ctx, w.act, ev); err != nil {
			w.fail.Add(1)
			log.Warn("notify: action failed", "jail", ev.Ban.Jail, "addr", ev.Ban.Target(),
				"event", ev.Kind, "err", err)
			continue
		}
		w.sent.Add(1)
		log.Debug("notify: action done", "jail", ev.Ban.Jail, "addr", ev.Ban.Target(),
			"event", ev.Kind, "took", time.Since(start))
	}
}

// do runs one action, turning a panic into an error so that one bad event
// cannot stop the worker and silence the action for good.
func do(ctx context.Context, a Action, ev Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("notify: action panicked: %v", r)
		}
	}()
	return a.Do(ctx, ev)
}

// Stats returns the counters of every action, by name.
func (d *Dispatcher) Stats() map[string]Stats {
	out := make(map[string]Stats, len(d.workers))
	for _, w := range d.workers {
		out[w.name] = Stats{
			Queued:  len(w.q),
			Sent:    w.sent.Load(),
			Failed:  w.fail.Load(),
			Dropped: w.drop.Load(),
		}
	}
	return out
}
