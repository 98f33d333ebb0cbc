package fleet

// The full resync, streamed: the watch's snapshot arrives entry by entry,
// each ban is decided as it comes and, if this host takes it, handed to the
// applier in chunks, so that the kernel fills while the rest still arrives
// and no copy of the whole bucket (nor of the store's bans) is ever held.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// resyncChunk is how many bans the resync hands to Local.ApplyFleet at a
// time: large enough that the store's transactions and the kernel's
// batches stay few, small enough that the chunks in flight (one filling,
// one queued, one being applied) stay a few MiB.
const resyncChunk = 4096

// snapshotStall is how long a resync waits for the next entry of the
// bucket's snapshot before it gives up and retries.
const snapshotStall = 10 * time.Second

// haveKey is a ban in force here: jail and prefix.
type haveKey struct {
	addr [16]byte
	bits uint8
	v4   bool
	jail nameID
}

// prefix is the prefix of a haveKey.
func (k haveKey) prefix() netip.Prefix {
	a := netip.AddrFrom16(k.addr)
	if k.v4 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, int(k.bits))
}

// haveBan is what the diff needs of a ban in force here.
type haveBan struct {
	start int64  // UnixNano
	node  nameID // deciding node + 1; 0: this host's own ban
}

// resync is one full resync in progress.
type resync struct {
	n     *Node
	ctx   context.Context
	now   time.Time
	first bool // the node's first resync: the fleet's standing list, not rate capped
	// tombs are the unbans, read before the bans (readTombs) so that a
	// ban one of them lifts is never applied, not even for a moment; late
	// are those that appeared in the bucket since.
	tombs, late *tombs
	have        map[haveKey]haveBan // in force here when the resync started
	known       *known              // the bucket as this resync reads it
	held        map[Key]Entry       // over the rate cap
	wasHeld     map[Key]Entry       // held before this resync (counted already)

	chunk []Entry
	work  chan []Entry
	done  chan error
	// spare is a chunk the applier is done with, cleared, for the next
	// one: a chunk is 4096 Entries (1.6 MiB), a seventh of what a join
	// allocated when each was new.
	spare chan []Entry

	entries, applied int
	// Phases of the join, for the debug line that ends it: when the first
	// ban was taken, and when the applier's last chunk was in force
	// (set by the applier, read after done).
	firstAt, appliedAt time.Time
	// waited is how long the snapshot's reading waited for the applier.
	waited time.Duration
}

// readTombs reads the bucket's unban tombstones: a watch of their keys
// only, stopped when its snapshot is complete.
func (n *Node) readTombs(ctx context.Context) (*tombs, error) {
	tombs := newTombs()
	w, err := n.watch(ctx, "*."+unbanJail+".*")
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	err = n.readSnapshotDecoded(ctx, w, func(e Entry, t time.Time) {
		tombs.add(e.Key.Prefix, t) // only unban keys match: t is set
	})
	return tombs, err
}

// readSnapshot hands every entry the watch holds at its start to fn (puts
// only: deleted keys are simply absent from a snapshot) and returns when
// the snapshot is complete.
func readSnapshot(ctx context.Context, w *bucketWatch, fn func(key string, data []byte)) error {
	// A large bucket takes a while; what must not happen is a snapshot
	// that stops making progress.
	stall := time.NewTimer(snapshotStall)
	defer stall.Stop()
	read := 0
	for {
		var e *bucketEntry
		select {
		case e = <-w.Updates():
			stall.Reset(snapshotStall)
		case <-stall.C:
			return fmt.Errorf("fleet: bucket snapshot: no entry for %v after %d", snapshotStall, read)
		case <-w.Done():
			return errors.New("fleet: watch closed during the snapshot")
		case <-ctx.Done():
			return ctx.Err()
		}
		if e == nil {
			return nil // the snapshot is complete; updates follow
		}
		read++
		if !e.del {
			fn(e.key, e.value)
		}
	}
}

// decodeBatch is how many entries of a snapshot a decoding worker takes
// at a time: enough that handing batches around costs little next to
// decoding them (4-5 µs an entry, 60-70 with a signature to verify).
const decodeBatch = 64

// readEntry is one entry of a snapshot and what Node.read made of it.
type readEntry struct {
	key  string
	data []byte
	e    Entry
	tomb time.Time
	ok   bool
}

// decodeJob is a batch of entries, done once a worker has read them all.
type decodeJob struct {
	entries []readEntry
	done    chan struct{}
}

// readSnapshotDecoded is readSnapshot with each entry read (decoded,
// validated, its signature verified) by Node.read on one of a worker per
// core, a few batches ahead of fn, which takes the entries n.read accepts
// in the snapshot's order. A late join of 100,000 signed bans is then
// verified on every core instead of one (decode and verification are
// nearly all of a join's CPU). What was read before an error is handed to
// fn all the same, as readSnapshot would have.
func (n *Node) readSnapshotDecoded(ctx context.Context, w *bucketWatch, fn func(e Entry, tomb time.Time)) error {
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *decodeJob, workers)
	// order holds the batches in the snapshot's order, sent before each
	// is handed to a worker: fn's side waits for the oldest to be done.
	order := make(chan *decodeJob, 2*workers)
	// Batches are used again once fn has taken them: every one that can
	// be in flight (queued, being read, waiting in order, being handed
	// to fn, filling) fits in free.
	free := make(chan *decodeJob, 4*workers+2)
	newJob := func() *decodeJob {
		select {
		case j := <-free:
			j.entries, j.done = j.entries[:0], make(chan struct{})
			return j
		default:
			return &decodeJob{entries: make([]readEntry, 0, decodeBatch), done: make(chan struct{})}
		}
	}
	var decoders sync.WaitGroup
	for range workers {
		decoders.Add(1)
		go func() {
			defer decoders.Done()
			for j := range jobs {
				for i := range j.entries {
					re := &j.entries[i]
					re.e, re.tomb, re.ok = n.read(re.key, re.data)
				}
				close(j.done)
			}
		}()
	}
	handed := make(chan struct{})
	go func() {
		defer close(handed)
		for j := range order {
			<-j.done
			for i := range j.entries {
				if re := &j.entries[i]; re.ok {
					fn(re.e, re.tomb)
				}
			}
			clear(j.entries) // drops the messages' bytes and the values' strings
			select {
			case free <- j:
			default:
			}
		}
	}()
	batch := newJob()
	send := func() {
		if len(batch.entries) == 0 {
			return
		}
		order <- batch
		jobs <- batch
		batch = newJob()
	}
	err := readSnapshot(ctx, w, func(key string, data []byte) {
		batch.entries = append(batch.entries, readEntry{key: key, data: data})
		if len(batch.entries) == decodeBatch {
			send()
		}
	})
	send()
	close(jobs)
	close(order)
	<-handed
	decoders.Wait()
	return err
}

// newResync starts a resync against the unbans tombs: it reads what is in
// force here and starts the applier.
func (n *Node) newResync(ctx context.Context, tombs *tombs) (*resync, error) {
	n.mu.Lock()
	r := &resync{
		n: n, ctx: ctx, now: n.now(), first: !n.synced,
		tombs: tombs, late: newTombs(),
		have: map[haveKey]haveBan{}, known: newKnown(),
		held: map[Key]Entry{}, wasHeld: n.held,
		work: make(chan []Entry, 1), done: make(chan error, 1), spare: make(chan []Entry, 1),
	}
	n.mu.Unlock()
	err := n.local.InForce(r.now, func(a Applied) {
		h := haveBan{start: a.Start.UnixNano()}
		if a.Node != "" {
			h.node = r.known.nodes.id(a.Node) + 1
		}
		r.have[r.haveKey(a.Jail, a.Prefix)] = h
	})
	if err != nil {
		return nil, err
	}
	go r.applier()
	return r, nil
}

func (r *resync) haveKey(jail string, p netip.Prefix) haveKey {
	a := p.Addr().Unmap()
	return haveKey{addr: a.As16(), bits: uint8(p.Bits()), v4: a.Is4(), jail: r.known.jails.id(jail)}
}

// applier puts the chunks in force, in address order within each: the
// store's B+trees take sorted inserts many times faster than random ones.
func (r *resync) applier() {
	var errs []error
	for chunk := range r.work {
		slices.SortFunc(chunk, func(a, b Entry) int {
			if c := a.Key.Prefix.Addr().Compare(b.Key.Prefix.Addr()); c != 0 {
				return c
			}
			return strings.Compare(a.Key.Jail, b.Key.Jail)
		})
		if err := r.n.local.ApplyFleet(r.ctx, chunk); err != nil {
			errs = append(errs, err)
		}
		r.appliedAt = r.n.now()
		r.n.stats.applied.Add(float64(len(chunk)))
		clear(chunk) // drops the values' strings
		select {
		case r.spare <- chunk[:0]:
		default:
		}
	}
	r.done <- errors.Join(errs...)
}

// add takes one entry of the snapshot, as Node.read accepted it (t: an
// unban's time).
func (r *resync) add(e Entry, t time.Time) {
	n := r.n
	if !t.IsZero() {
		if p := e.Key.Prefix; t.After(r.tombs.at[p]) {
			r.tombs.add(p, t)
			r.late.add(p, t)
		}
		return
	}
	r.entries++
	if r.entries == 1 {
		r.firstAt = n.now()
	}
	applied := e // the verdict may cut its expiry and narrow its prefix; known keeps the bucket's
	ok, reason := n.verdict(&applied, r.now, r.tombs)
	if reason != "" {
		n.stats.refused.WithLabelValues(reason).Inc()
	}
	// Another node's ban of the same jail and prefix that lasts at least
	// as long is in force already (each key comes once in a snapshot).
	// A narrowed ban is compared with none: rare, and applied as it is.
	longest, taken := r.known.wantedExpiry(e.Key.Jail, e.Key.Prefix)
	r.known.put(&e, ok, applied.Key.Prefix)
	narrowed := applied.Key.Prefix != e.Key.Prefix
	if !ok || !narrowed && taken && outlasts(longest, expirySeconds(e.Value.Expiry)) {
		return
	}
	if _, in := r.have[r.haveKey(e.Key.Jail, applied.Key.Prefix)]; in {
		return
	}
	if !r.first {
		// Only the first snapshot (the fleet's standing list when this
		// node starts) is exempt from the rate cap; later resyncs must
		// not release what the cap held.
		n.mu.Lock()
		allowed := n.allow(e.Key.Node, r.now)
		n.mu.Unlock()
		if !allowed {
			r.held[e.Key] = applied
			if _, counted := r.wasHeld[e.Key]; !counted {
				n.stats.refused.WithLabelValues(RefusedRate).Inc()
			}
			return
		}
	}
	r.chunk = append(r.chunk, applied)
	if len(r.chunk) == resyncChunk {
		r.flush()
	}
}

// outlasts reports whether a ban ending at a outlasts or equals one ending
// at b (Unix seconds, 0: permanent).
func outlasts(a, b uint32) bool { return a == 0 || b != 0 && a >= b }

func (r *resync) flush() {
	if len(r.chunk) == 0 {
		return
	}
	r.applied += len(r.chunk)
	t := r.n.now()
	r.work <- r.chunk
	r.waited += r.n.now().Sub(t)
	select {
	case r.chunk = <-r.spare:
	default:
		r.chunk = make([]Entry, 0, resyncChunk)
	}
}

// abort stops a resync whose snapshot failed: what was applied stays (they
// are the fleet's bans), the node keeps its view until the next one.
func (r *resync) abort() {
	r.chunk = nil
	close(r.work)
	<-r.done
}

// finish applies the last chunk, lifts what is in force here but no longer
// in the bucket (or lifted by an unban), and makes the new view the node's.
func (r *resync) finish() error {
	n := r.n
	r.flush()
	close(r.work)
	errs := []error{<-r.done}
	lift := map[haveKey]Applied{}
	// The narrowed bans are in force under a prefix of their own, which
	// known does not key them by.
	narrowed := map[jailNet]bool{}
	for kk, p := range r.known.narrowed {
		narrowed[jailNet{r.known.jails.list[kk.jail], p}] = true
	}
	for hk, h := range r.have {
		p := hk.prefix()
		jail := r.known.jails.list[hk.jail]
		unbanned := liftedBy(r.tombs, p, time.Unix(0, h.start))
		if !unbanned && h.node == 0 {
			continue // this host's own ban
		}
		if !unbanned {
			if _, wanted := r.known.wantedExpiry(jail, p); wanted || narrowed[jailNet{jail, p}] {
				continue
			}
		}
		a := Applied{Jail: jail, Prefix: p, Start: time.Unix(0, h.start)}
		if h.node != 0 {
			a.Node = r.known.nodes.list[h.node-1]
		}
		lift[hk] = a
	}
	if len(r.late.at) > 0 {
		// Unbans that came after the tombstones were read may lift bans
		// this resync applied before it saw them: those covering them,
		// and those narrowed here from a prefix that covers them.
		lateNarrowed := map[jailNet]time.Time{}
		for kk, p := range r.known.narrowed {
			if t := r.late.liftedAt(kk.prefix()); !t.IsZero() {
				lateNarrowed[jailNet{r.known.jails.list[kk.jail], p}] = t
			}
		}
		err := n.local.InForce(n.now(), func(a Applied) {
			t, ok := lateNarrowed[jailNet{a.Jail, a.Prefix}]
			if liftedBy(r.late, a.Prefix, a.Start) || a.Node != "" && ok && !a.Start.After(t) {
				lift[r.haveKey(a.Jail, a.Prefix)] = a
			}
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	n.mu.Lock()
	n.known, n.tombs, n.held = r.known, r.tombs, r.held
	n.synced = true
	n.mu.Unlock()
	if len(lift) > 0 {
		bans := make([]Applied, 0, len(lift))
		for _, a := range lift {
			bans = append(bans, a)
		}
		if err := n.local.Lift(r.ctx, bans); err != nil {
			errs = append(errs, err)
		} else {
			n.stats.lifted.Add(float64(len(bans)))
		}
	}
	if r.applied > 0 || len(lift) > 0 {
		n.log.Info("fleet: resync applied bans", "bans", r.applied, "lifted", len(lift), "held", len(r.held))
	}
	return errors.Join(errs...)
}

// logPhases tells where a resync's time went, each phase from its start
// (the tombstones read, the first ban taken, the snapshot read, the last
// chunk in force here), and how long the reading waited for the applier:
// what a slow late join is looked into with.
func (r *resync) logPhases(start, tombsRead, read time.Time) {
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return t.Sub(start)
	}
	r.n.log.Debug("fleet: resync", "entries", r.entries, "applied", r.applied,
		"started", start.UTC().Format(time.RFC3339Nano), "tombs", since(tombsRead), "first", since(r.firstAt),
		"read", since(read), "inforce", since(r.appliedAt), "took", r.n.now().Sub(start), "waited", r.waited)
}
