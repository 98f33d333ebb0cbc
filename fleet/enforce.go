package fleet

// The enforcing half of a Node: watching the bucket, resyncing against it,
// and deciding what of it this host applies.

import (
	"cmp"
	"context"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/sysban/sysban"
)

// watchLoop watches the bucket. Every (re)start of the watch is a full
// resync: the watch first delivers every current entry, which is diffed
// against what is in force here. It restarts on every reconnect (the
// client's watcher may stay silent for many seconds after a server
// restart), every Resync period and whenever the watch ends.
func (n *Node) watchLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg().Resync)
	defer tick.Stop()
	heldTick := time.NewTicker(5 * time.Second)
	defer heldTick.Stop()
	wait := time.Duration(0)
	var linger liveLinger
	for ctx.Err() == nil {
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			case <-n.resync:
			}
		}
		wait = min(max(2*wait, 250*time.Millisecond), 10*time.Second)
		// This watch is the resync any pending kick asked for.
		select {
		case <-n.resync:
		default:
		}
		w, err := n.startWatch(ctx)
		n.joinedOnce.Do(func() { close(n.joined) })
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("fleet: watch failed; retrying", "err", err, "in", wait)
			}
			continue
		}
		wait = 0
		tick.Reset(n.cfg().Resync) // a reload may have changed it
	live:
		for {
			select {
			case <-ctx.Done():
				break live
			case <-n.resync:
				break live
			case <-tick.C:
				break live
			case <-heldTick.C:
				n.releaseHeld(ctx)
			case <-w.Done():
				break live
			case e := <-w.Updates():
				batch := linger.collect(w.Updates(), drainUpdates(w.Updates(), e))
				n.live(ctx, batch)
				linger.applied(len(batch))
			}
		}
		w.Stop()
	}
}

// startWatch starts a watch and resyncs from its snapshot (resync.go):
// the unbans first, then every ban, applied in chunks as they arrive.
func (n *Node) startWatch(ctx context.Context) (*bucketWatch, error) {
	start := n.now()
	tombs, err := n.readTombs(ctx)
	if err != nil {
		return nil, err
	}
	tombsRead := n.now()
	r, err := n.newResync(ctx, tombs)
	if err != nil {
		return nil, err
	}
	w, err := n.watch(ctx, ">")
	if err != nil {
		r.abort()
		return nil, err
	}
	r.known.expect(w.pending)
	if err := n.readSnapshotDecoded(ctx, w, r.add); err != nil {
		w.Stop()
		r.abort()
		return nil, err
	}
	read := n.now()
	if err := r.finish(); err != nil {
		n.log.Warn("fleet: resync incomplete; retried at the next one", "err", err)
	}
	n.stats.resyncs.Inc()
	n.mu.Lock()
	n.lastResync, n.watchedAt = n.now(), w.server
	n.mu.Unlock()
	r.logPhases(start, tombsRead, read)
	if r.entries >= 10000 {
		// The snapshot's messages and the chunks are garbage now; an
		// enforce-only host should not sit on them.
		debug.FreeOSMemory()
	}
	return w, nil
}

// read decodes a bucket entry: a ban, or an unban tombstone (e.Key with
// the time tomb it lifts bans decided up to). An invalid entry is counted
// and logged, and ok is false.
func (n *Node) read(key string, data []byte) (e Entry, tomb time.Time, ok bool) {
	k, err := ParseKey(key)
	if err == nil && k.Jail == unbanJail {
		if v, err := decodeTombstone(k, data, n.now()); err == nil {
			if n.signatureRefused(key, data, v) {
				return Entry{}, time.Time{}, false
			}
			return Entry{Key: k}, v.Start, true
		}
	}
	if err == nil {
		e, err = decodeKeyed(k, key, data, n.now())
	}
	if err != nil {
		n.stats.refused.WithLabelValues(RefusedInvalid).Inc()
		n.log.Warn("fleet: invalid entry refused", "key", key, "err", err)
		return Entry{}, time.Time{}, false
	}
	if n.signatureRefused(key, data, e.Value) {
		return Entry{}, time.Time{}, false
	}
	return e, time.Time{}, true
}

// decodeTombstone reads an unban's value; its Start is when it was decided.
func decodeTombstone(k Key, data []byte, now time.Time) (Value, error) {
	e, err := decodeEntry(k.Node+".x."+EncodeAddr(k.Prefix), data, now)
	if err != nil {
		return Value{}, err
	}
	return e.Value, nil
}

// verdict says whether this node applies e: ok, or the refusal reason
// ("" with !ok: not for this node, not counted). e is changed to what this
// node applies: its Key.Prefix narrowed around protected addresses, its
// expiry cut to fleet.maxbantime. Caller holds mu (tombs).
func (n *Node) verdict(e *Entry, now time.Time, tombs *tombs) (ok bool, reason string) {
	set := n.set.Load()
	v := &e.Value
	switch {
	case e.Key.Node == set.cfg.Name:
		return false, "" // our own decision: in force through the local chain
	case v.Scope == ScopeOrigin && set.cfg.OriginNode(v.Origin) != set.cfg.Name:
		return false, ""
	case !v.Expiry.IsZero() && !v.Expiry.After(now):
		return false, ""
	case liftedBy(tombs, e.Key.Prefix, v.Start):
		return false, "" // lifted by an unban
	case !set.jails[e.Key.Jail]:
		return false, RefusedJail
	case e.Key.Prefix.Bits() < set.cfg.maxPrefix(e.Key.Prefix):
		return false, RefusedPrefix
	}
	// Logged at debug level: a resync judges every entry again. A
	// narrowed ban is logged at info level when it is applied live.
	fit, why := n.fit(set, e)
	if !fit.IsValid() {
		n.log.Debug("fleet: ban refused: it covers protected addresses", "key", e.Key.String(), "protected", why)
		return false, RefusedProtected
	}
	if fit != e.Key.Prefix {
		n.log.Debug("fleet: ban narrowed: the prefix covers protected addresses", "key", e.Key.String(), "ban", fit, "protected", why)
		n.stats.narrowed.Inc()
		e.Key.Prefix = fit
	}
	if m := set.cfg.MaxBanTime; m > 0 && (v.Expiry.IsZero() || v.Expiry.Sub(v.Start) > m) {
		v.Expiry = v.Start.Add(m)
		n.stats.capped.Inc()
		if !v.Expiry.After(now) {
			return false, ""
		}
	}
	return true, ""
}

// liftedBy reports whether a ban of p decided at start is lifted by an
// unban of an address or prefix inside p.
func liftedBy(tombs *tombs, p netip.Prefix, start time.Time) bool {
	t := tombs.liftedAt(p)
	return !t.IsZero() && !start.After(t)
}

// fit is the prefix of e this host may apply: the widest prefix of the
// offending address inside e's prefix that covers none of the addresses it
// never bans (its never-ban list, and what Options.Spared names: the same
// addresses its own prefix bans are narrowed around), as a jail narrows
// its own prefix bans; invalid when even the address is protected, or
// when a prefix must be narrowed and the entry names no address to narrow
// around (a manual prefix ban). why names the first protected network.
func (n *Node) fit(set *settings, e *Entry) (fit netip.Prefix, why string) {
	jail := e.Key.Jail
	spared := func(cand netip.Prefix) string {
		for _, p := range set.never {
			if p.Overlaps(cand) {
				return "the fleet never-ban list's " + p.String()
			}
		}
		if n.spared != nil {
			return n.spared(jail, cand)
		}
		return ""
	}
	p := e.Key.Prefix
	addr := e.Value.Addr
	if p.IsSingleIP() {
		addr = p.Addr()
	}
	if !addr.IsValid() {
		if why = spared(p); why != "" {
			return netip.Prefix{}, why
		}
		return p, ""
	}
	fit, why = sysban.Narrow(p, addr, spared)
	if fit.IsSingleIP() {
		if w := spared(fit); w != "" {
			return netip.Prefix{}, cmp.Or(why, w)
		}
	}
	return fit, why
}

// liveBatch bounds how many watch updates one kernel write takes.
const liveBatch = 1024

// drainUpdates returns first and the updates already waiting behind it,
// up to liveBatch, without waiting for more. During a storm the updates
// are applied in batches (one kernel write each) instead of one at a time,
// which would let the backlog, and the propagation delay, grow without
// bound; an update that finds the enforcer idle is applied alone, at once.
func drainUpdates(updates <-chan *bucketEntry, first *bucketEntry) []*bucketEntry {
	var batch []*bucketEntry
	if first != nil {
		batch = append(batch, first)
	}
	for len(batch) < liveBatch {
		select {
		case e := <-updates:
			if e != nil {
				batch = append(batch, e)
			}
		default:
			return batch
		}
	}
	return batch
}

// liveLinger makes the watch gather a storm's updates into fewer kernel
// writes. An update that finds the enforcer idle is applied at once; one
// that arrives within streamGap of the end of the last batch is part of a
// stream, and the batch then waits up to lingerFor for more. In a storm
// the watch delivers bans one at a time, each as soon as the server
// stores it, and the enforcer applied them one kernel transaction each
// (11,000 transactions for 59,000 bans in the bench's cluster storm, at
// 0.1-0.3 ms of CPU apiece, with a notification to every nftables
// listener); a millisecond of waiting turns that into batches of tens.
//
// A lone update that follows a lone update is not a stream, however close
// behind it comes: nothing queued behind either while the last one was
// applied. It is applied at once. Lingering there cost the bench's idle
// probes (one ban at a time, each sent when the last was in the kernel,
// about 1 ms apart at the enforcer) a millisecond each, half of their
// p50; a storm still lingers from its second batch on, which finds the
// updates that queued while the first was applied.
type liveLinger struct {
	lastEnd  time.Time
	lastSize int // updates in the last batch
	timer    *time.Timer
}

const (
	streamGap = time.Millisecond
	lingerFor = time.Millisecond
)

// collect returns batch, grown with the updates that arrive within
// lingerFor when the watch is streaming, up to liveBatch. The caller calls
// applied once it applied the batch.
func (l *liveLinger) collect(updates <-chan *bucketEntry, batch []*bucketEntry) []*bucketEntry {
	if len(batch) >= liveBatch || l.lastEnd.IsZero() || time.Since(l.lastEnd) > streamGap || len(batch) <= 1 && l.lastSize <= 1 {
		return batch
	}
	if l.timer == nil {
		l.timer = time.NewTimer(lingerFor)
	} else {
		l.timer.Reset(lingerFor)
	}
	defer l.timer.Stop()
	for len(batch) < liveBatch {
		// What is queued already is taken whatever the timer says: the
		// linger bounds the wait for updates still to come, not the
		// reading of those that came (a slow or loaded machine read a
		// full queue past the timer and applied it in odd pieces).
		var (
			e  *bucketEntry
			ok bool
		)
		select {
		case e, ok = <-updates:
		default:
			select {
			case e, ok = <-updates:
			case <-l.timer.C:
				return batch
			}
		}
		if !ok {
			return batch // the watch ended
		}
		if e != nil {
			batch = append(batch, e)
		}
	}
	return batch
}

// applied records the end of a batch of n updates.
func (l *liveLinger) applied(n int) { l.lastEnd, l.lastSize = time.Now(), n }

// live handles updates of the watch, in order: bans are collected and
// applied together, before any delete or unban that follows them.
func (n *Node) live(ctx context.Context, updates []*bucketEntry) {
	now := n.now()
	var apply []Entry
	at := map[jailNet]int{} // index in apply: one element per set and network
	flush := func() {
		if len(apply) > 0 {
			n.applyLive(ctx, apply)
			apply = nil
			clear(at)
		}
	}
	defer flush()
	for _, e := range updates {
		n.traced(stageDelivered, e.key)
		if e.del {
			flush()
			n.deleted(ctx, e.key)
			continue
		}
		en, t, ok := n.read(e.key, e.value)
		switch {
		case !ok:
			continue
		case !t.IsZero():
			flush()
			n.unbanned(ctx, en.Key.Prefix, t)
			continue
		}
		if !e.at.IsZero() {
			n.stats.delivered.Observe(e.at.Sub(en.Value.Start).Seconds())
		}
		k := en.Key
		n.mu.Lock()
		bucket := en // the verdict may cut the expiry and narrow the prefix; known keeps the bucket's
		ok, reason := n.verdict(&en, now, n.tombs)
		n.known.put(&bucket, ok, en.Key.Prefix)
		if ok && !n.allow(k.Node, now) {
			n.held[k] = en
			ok, reason = false, RefusedRate
		}
		n.mu.Unlock()
		if reason != "" {
			n.stats.refused.WithLabelValues(reason).Inc()
			n.log.Info("fleet: ban refused", "key", k.String(), "reason", reason)
		}
		if !ok {
			continue
		}
		if en.Key.Prefix != k.Prefix {
			n.log.Info("fleet: ban narrowed: the prefix covers protected addresses", "key", k.String(), "ban", en.Key.Prefix)
		}
		ja := jailNet{k.Jail, en.Key.Prefix} // as applied here
		if i, dup := at[ja]; dup {
			if en.Key == apply[i].Key || outlasts(expirySeconds(en.Value.Expiry), expirySeconds(apply[i].Value.Expiry)) {
				apply[i] = en
			}
			continue
		}
		at[ja] = len(apply)
		apply = append(apply, en)
	}
}

func (n *Node) applyLive(ctx context.Context, es []Entry) {
	if err := n.local.ApplyFleet(ctx, es); err != nil {
		n.log.Warn("fleet: applying bans", "err", err)
	}
	now := n.now()
	for _, e := range es {
		n.stats.propagation.Observe(now.Sub(e.Value.Start).Seconds())
		if n.trace != nil { // the key's text is built for the bench's tracer only
			n.trace(stageApplied, e.Key.String())
		}
	}
	if len(es) > 0 {
		n.mu.Lock()
		n.lag = now.Sub(es[len(es)-1].Value.Start)
		n.mu.Unlock()
	}
	n.stats.applied.Add(float64(len(es)))
}

// deleted lifts a deleted key's ban, unless another node's ban of the same
// jail and prefix still holds it.
func (n *Node) deleted(ctx context.Context, key string) {
	k, err := ParseKey(key)
	if err != nil || k.Jail == unbanJail {
		return
	}
	n.mu.Lock()
	applied := n.known.applied(k) // what this node made of it: narrowed or not
	had := n.known.remove(k)
	delete(n.held, k)
	still := n.known.heldByOther(k.Jail, k.Prefix, n.cfg().Name)
	n.mu.Unlock()
	if !had || still || k.Node == n.cfg().Name {
		return
	}
	n.liftWhere(ctx, func(a Applied) bool { return a.Node != "" && a.Jail == k.Jail && a.Prefix == applied })
}

// unbanned lifts every ban covering p decided up to at, here and from the
// fleet: the bans in force here that cover p, and the fleet bans whose
// published prefix covers p but which this node narrowed away from it.
func (n *Node) unbanned(ctx context.Context, p netip.Prefix, at time.Time) {
	n.mu.Lock()
	n.tombs.add(p, at)
	narrowed := n.known.narrowedCovering(p)
	n.mu.Unlock()
	n.liftWhere(ctx, func(a Applied) bool {
		if a.Start.After(at) {
			return false
		}
		return covers(a.Prefix, p) || a.Node != "" && narrowed[jailNet{a.Jail, a.Prefix}]
	})
}

func (n *Node) liftWhere(ctx context.Context, match func(Applied) bool) {
	var lift []Applied
	err := n.local.InForce(n.now(), func(a Applied) {
		if match(a) {
			lift = append(lift, a)
		}
	})
	if err != nil {
		n.log.Warn("fleet: reading bans in force", "err", err)
		return
	}
	if len(lift) == 0 {
		return
	}
	if err := n.local.Lift(ctx, lift); err != nil {
		n.log.Warn("fleet: lifting bans", "err", err)
		return
	}
	n.stats.lifted.Add(float64(len(lift)))
}

// releaseHeld applies held bans as the rate cap allows.
func (n *Node) releaseHeld(ctx context.Context) {
	now := n.now()
	var out []Entry
	n.mu.Lock()
	for k, e := range n.held {
		if ok, _ := n.verdict(&e, now, n.tombs); !ok {
			delete(n.held, k)
			continue
		}
		if n.allow(e.Key.Node, now) {
			out = append(out, e)
			delete(n.held, k)
		}
	}
	n.mu.Unlock()
	if len(out) > 0 {
		n.applyLive(ctx, out)
	}
}

// rateWindow counts a node's new bans in the current minute.
type rateWindow struct {
	minute int64
	count  int
}

// allow takes one of node's new bans against the rate cap. Caller holds mu.
func (n *Node) allow(node string, now time.Time) bool {
	if n.cfg().RateCap == 0 {
		return true
	}
	w := n.rate[node]
	if w == nil {
		w = &rateWindow{}
		n.rate[node] = w
	}
	if m := now.Unix() / 60; m != w.minute {
		w.minute, w.count = m, 0
	}
	if w.count >= n.cfg().RateCap {
		return false
	}
	w.count++
	return true
}
