package fleet

// The enforcing half of a Node: watching the bucket, resyncing against it,
// and deciding what of it this host applies.

import (
	"context"
	"net/netip"
	"runtime/debug"
	"time"
)

// watchLoop watches the bucket. Every (re)start of the watch is a full
// resync: the watch first delivers every current entry, which is diffed
// against what is in force here. It restarts on every reconnect (the
// client's watcher may stay silent for many seconds after a server
// restart), every Resync period and whenever the watch ends.
func (n *Node) watchLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.Resync)
	defer tick.Stop()
	heldTick := time.NewTicker(5 * time.Second)
	defer heldTick.Stop()
	wait := time.Duration(0)
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
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("fleet: watch failed; retrying", "err", err, "in", wait)
			}
			continue
		}
		wait = 0
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
				n.live(ctx, drainUpdates(w.Updates(), e))
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
	r, err := n.newResync(ctx, tombs)
	if err != nil {
		return nil, err
	}
	w, err := n.watch(ctx, ">")
	if err != nil {
		r.abort()
		return nil, err
	}
	if err := readSnapshot(ctx, w, r.add); err != nil {
		w.Stop()
		r.abort()
		return nil, err
	}
	n.log.Debug("fleet: snapshot read", "entries", r.entries, "took", n.now().Sub(start))
	if err := r.finish(); err != nil {
		n.log.Warn("fleet: resync incomplete; retried at the next one", "err", err)
	}
	n.stats.resyncs.Inc()
	n.mu.Lock()
	n.lastResync = n.now()
	n.mu.Unlock()
	n.log.Debug("fleet: resync", "entries", r.entries, "took", n.now().Sub(start))
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
	e, err = decodeEntry(key, data, n.now())
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
// ("" with !ok: not for this node, not counted).
func (n *Node) verdict(e *Entry, now time.Time, tombs map[netip.Prefix]time.Time) (ok bool, reason string) {
	v := &e.Value
	switch {
	case e.Key.Node == n.cfg.Name:
		return false, "" // our own decision: in force through the local chain
	case v.Scope == ScopeOrigin && n.cfg.OriginNode(v.Origin) != n.cfg.Name:
		return false, ""
	case !v.Expiry.IsZero() && !v.Expiry.After(now):
		return false, ""
	case !tombs[e.Key.Prefix].IsZero() && !v.Start.After(tombs[e.Key.Prefix]):
		return false, "" // lifted by an unban
	case !n.jails[e.Key.Jail]:
		return false, RefusedJail
	case e.Key.Prefix.Bits() != e.Key.Prefix.Addr().BitLen():
		return false, RefusedPrefix
	}
	for _, p := range n.never {
		if p.Overlaps(e.Key.Prefix) {
			return false, RefusedProtected
		}
	}
	if m := n.cfg.MaxBanTime; m > 0 && (v.Expiry.IsZero() || v.Expiry.Sub(v.Start) > m) {
		v.Expiry = v.Start.Add(m)
		n.stats.capped.Inc()
		if !v.Expiry.After(now) {
			return false, ""
		}
	}
	return true, ""
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

// live handles updates of the watch, in order: bans are collected and
// applied together, before any delete or unban that follows them.
func (n *Node) live(ctx context.Context, updates []*bucketEntry) {
	now := n.now()
	var apply []Entry
	at := map[jailAddr]int{} // index in apply: one element per set and address
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
		k := en.Key
		n.mu.Lock()
		bucket := en // the verdict may cut the expiry; known keeps the bucket's
		ok, reason := n.verdict(&en, now, n.tombs)
		n.known.put(&bucket, ok)
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
		ja := jailAddr{k.Jail, k.Prefix.Addr()}
		if i, dup := at[ja]; dup {
			if k == apply[i].Key || outlasts(expirySeconds(en.Value.Expiry), expirySeconds(apply[i].Value.Expiry)) {
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
		n.traced(stageApplied, e.Key.String())
	}
	if len(es) > 0 {
		n.mu.Lock()
		n.lag = now.Sub(es[len(es)-1].Value.Start)
		n.mu.Unlock()
	}
	n.stats.applied.Add(float64(len(es)))
}

// deleted lifts a deleted key's ban, unless another node's ban of the same
// jail and address still holds it.
func (n *Node) deleted(ctx context.Context, key string) {
	k, err := ParseKey(key)
	if err != nil || k.Jail == unbanJail {
		return
	}
	n.mu.Lock()
	had := n.known.remove(k)
	delete(n.held, k)
	still := n.known.heldByOther(k.Jail, k.Prefix, n.cfg.Name)
	n.mu.Unlock()
	if !had || still || k.Node == n.cfg.Name {
		return
	}
	n.liftWhere(ctx, func(a Applied) bool { return a.Node != "" && a.Jail == k.Jail && AddrKey(a.Addr) == k.Prefix })
}

// unbanned lifts every ban of p decided up to at, here and from the fleet.
func (n *Node) unbanned(ctx context.Context, p netip.Prefix, at time.Time) {
	n.mu.Lock()
	if at.After(n.tombs[p]) {
		n.tombs[p] = at
	}
	n.mu.Unlock()
	n.liftWhere(ctx, func(a Applied) bool { return AddrKey(a.Addr) == p && !a.Start.After(at) })
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
	if n.cfg.RateCap == 0 {
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
	if w.count >= n.cfg.RateCap {
		return false
	}
	w.count++
	return true
}
