package fleet

// The enforcing half of a Node: watching the bucket, resyncing against it,
// and deciding what of it this host applies.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
			case e, ok := <-w.Updates():
				if !ok {
					break live
				}
				if e != nil {
					n.live(ctx, e)
				}
			}
		}
		_ = w.Stop()
	}
}

// startWatch starts a watch and resyncs from its snapshot.
func (n *Node) startWatch(ctx context.Context) (jetstream.KeyWatcher, error) {
	start := n.now()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := n.bucket(wctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	snap := map[Key]Entry{}
	tombs := map[netip.Prefix]time.Time{}
	// A large bucket takes a while; what must not happen is a snapshot
	// that stops making progress.
	stall := time.NewTimer(snapshotStall)
	defer stall.Stop()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case e, ok = <-w.Updates():
			stall.Reset(snapshotStall)
		case <-stall.C:
			_ = w.Stop()
			return nil, fmt.Errorf("fleet: bucket snapshot: no entry for %v after %d", snapshotStall, len(snap))
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		}
		if !ok {
			return nil, errors.New("fleet: watch closed during the snapshot")
		}
		if e == nil {
			break // the snapshot is complete; updates follow
		}
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		n.readEntry(e.Key(), e.Value(), snap, tombs)
	}
	n.log.Debug("fleet: snapshot read", "entries", len(snap), "took", n.now().Sub(start))
	if err := n.reconcile(ctx, snap, tombs); err != nil {
		n.log.Warn("fleet: resync incomplete; retried at the next one", "err", err)
	}
	n.stats.resyncs.Inc()
	n.mu.Lock()
	n.lastResync = n.now()
	n.mu.Unlock()
	n.log.Debug("fleet: resync", "entries", len(snap), "took", n.now().Sub(start))
	if len(snap) >= 10000 {
		// The snapshot's messages are garbage now; an enforce-only host
		// should not sit on them.
		debug.FreeOSMemory()
	}
	return w, nil
}

// snapshotStall is how long a resync waits for the next entry of the
// bucket's snapshot before it gives up and retries.
const snapshotStall = 10 * time.Second

// readEntry decodes a bucket entry into entries or tombs; invalid ones are
// counted and logged.
func (n *Node) readEntry(key string, data []byte, entries map[Key]Entry, tombs map[netip.Prefix]time.Time) {
	k, err := ParseKey(key)
	if err == nil && k.Jail == unbanJail {
		if v, err := decodeTombstone(k, data, n.now()); err == nil {
			if !n.signatureRefused(key, data, v) && v.Start.After(tombs[k.Prefix]) {
				tombs[k.Prefix] = v.Start
			}
			return
		}
	}
	e, err := decodeEntry(key, data, n.now())
	if err != nil {
		n.stats.refused.WithLabelValues(RefusedInvalid).Inc()
		n.log.Warn("fleet: invalid entry refused", "key", key, "err", err)
		return
	}
	if n.signatureRefused(key, data, e.Value) {
		return
	}
	entries[e.Key] = e
}

// kept is e as the node remembers it: the lines went to the store with the
// ban and are not needed again, the signature was checked.
func kept(e Entry) Entry {
	e.Value.Lines = nil
	e.Value.Sig = ""
	return e
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

// reconcile makes what is in force here match the bucket: the fleet's
// bans that apply here are put in force, fleet bans no longer in the bucket
// are lifted, and the unbans lift local bans too.
func (n *Node) reconcile(ctx context.Context, snap map[Key]Entry, tombs map[netip.Prefix]time.Time) error {
	now := n.now()
	want := map[jailAddr]Entry{}
	for k, e := range snap {
		ok, reason := n.verdict(&e, now, tombs)
		if reason != "" {
			n.stats.refused.WithLabelValues(reason).Inc()
		}
		if !ok {
			continue
		}
		ja := jailAddr{k.Jail, k.Prefix.Addr()}
		if cur, dup := want[ja]; !dup || longer(e, cur) {
			want[ja] = e
		}
	}
	inForce, err := n.local.InForce(now)
	if err != nil {
		return err
	}
	have := map[jailAddr]bool{}
	var lift []Applied
	for _, a := range inForce {
		ja := jailAddr{a.Jail, a.Addr}
		t := tombs[AddrKey(a.Addr)]
		_, wanted := want[ja]
		switch {
		case !t.IsZero() && !a.Start.After(t):
			lift = append(lift, a) // unbanned from some node, local or not
		case a.Node != "" && !wanted:
			lift = append(lift, a) // gone from the bucket
		default:
			have[ja] = true
		}
	}
	var apply []Entry
	for ja, e := range want {
		if !have[ja] {
			apply = append(apply, e)
		}
	}
	// In address order: the store's B+trees take sorted inserts many
	// times faster than the map's random order.
	slices.SortFunc(apply, func(a, b Entry) int {
		if c := a.Key.Prefix.Addr().Compare(b.Key.Prefix.Addr()); c != 0 {
			return c
		}
		return strings.Compare(a.Key.Jail, b.Key.Jail)
	})
	for k, e := range snap {
		snap[k] = kept(e)
	}
	n.mu.Lock()
	n.entries, n.tombs = snap, tombs
	wasHeld := n.held
	n.held = map[Key]Entry{}
	if n.synced {
		// Only the first snapshot (the fleet's standing list when this
		// node starts) is exempt from the rate cap; later resyncs must
		// not release what the cap held.
		now := n.now()
		kept := apply[:0]
		for _, e := range apply {
			if n.allow(e.Key.Node, now) {
				kept = append(kept, e)
			} else {
				n.held[e.Key] = e
				if _, counted := wasHeld[e.Key]; !counted {
					n.stats.refused.WithLabelValues(RefusedRate).Inc()
				}
			}
		}
		apply = kept
	}
	n.synced = true
	n.mu.Unlock()
	var errs []error
	if len(lift) > 0 {
		if err := n.local.Lift(ctx, lift); err != nil {
			errs = append(errs, err)
		} else {
			n.stats.lifted.Add(float64(len(lift)))
		}
	}
	if len(apply) > 0 {
		t0 := n.now()
		if err := n.local.ApplyFleet(ctx, apply); err != nil {
			errs = append(errs, err)
		}
		n.stats.applied.Add(float64(len(apply)))
		n.log.Info("fleet: resync applied bans", "bans", len(apply), "lifted", len(lift), "took", n.now().Sub(t0))
	}
	return errors.Join(errs...)
}

// longer reports whether a outlasts b.
func longer(a, b Entry) bool {
	if a.Value.Expiry.IsZero() {
		return !b.Value.Expiry.IsZero()
	}
	return !b.Value.Expiry.IsZero() && a.Value.Expiry.After(b.Value.Expiry)
}

// live handles one update of the watch.
func (n *Node) live(ctx context.Context, e jetstream.KeyValueEntry) {
	now := n.now()
	if e.Operation() != jetstream.KeyValuePut {
		n.deleted(ctx, e.Key())
		return
	}
	entries := map[Key]Entry{}
	tombs := map[netip.Prefix]time.Time{}
	n.readEntry(e.Key(), e.Value(), entries, tombs)
	for p, t := range tombs {
		n.unbanned(ctx, p, t)
	}
	for k, en := range entries {
		n.mu.Lock()
		n.entries[k] = kept(en)
		ok, reason := n.verdict(&en, now, n.tombs)
		if ok && !n.allow(en.Key.Node, now) {
			n.held[k] = en
			ok, reason = false, RefusedRate
		}
		n.mu.Unlock()
		if reason != "" {
			n.stats.refused.WithLabelValues(reason).Inc()
			n.log.Info("fleet: ban refused", "key", k.String(), "reason", reason)
		}
		if ok {
			n.applyLive(ctx, []Entry{en})
		}
	}
}

func (n *Node) applyLive(ctx context.Context, es []Entry) {
	if err := n.local.ApplyFleet(ctx, es); err != nil {
		n.log.Warn("fleet: applying bans", "err", err)
	}
	now := n.now()
	for _, e := range es {
		n.stats.propagation.Observe(now.Sub(e.Value.Start).Seconds())
		n.mu.Lock()
		n.lag = now.Sub(e.Value.Start)
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
	_, had := n.entries[k]
	delete(n.entries, k)
	delete(n.held, k)
	still := false
	for o := range n.entries {
		if o.Jail == k.Jail && o.Prefix == k.Prefix && o.Node != n.cfg.Name {
			still = true
		}
	}
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
	inForce, err := n.local.InForce(n.now())
	if err != nil {
		n.log.Warn("fleet: reading bans in force", "err", err)
		return
	}
	var lift []Applied
	for _, a := range inForce {
		if match(a) {
			lift = append(lift, a)
		}
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
