package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sysban/sysban"
)

// Publisher is the decider's link of the ban chain: it publishes every
// batch to the fleet and passes it on to next (this host's journal and
// kernel). Publishing never holds the chain up: the batch is queued, and
// while NATS is unreachable it waits in the outbox. Bans already
// published when they were decided (Decided) are not published again.
type Publisher struct {
	node *Node
	next sysban.Applier
}

// Decides reports whether this node publishes its bans.
func (n *Node) Decides() bool { return n.cfg().Decide }

// Publisher returns the chain link that publishes bans after next applied
// them.
func (n *Node) Publisher(next sysban.Applier) *Publisher { return &Publisher{node: n, next: next} }

// Apply implements sysban.Applier. The bans are queued for the fleet
// first, so that the other hosts do not wait for this host's fsync and
// kernel write, and whatever next returns: next's failure is this host's,
// the fleet still wants the ban.
func (p *Publisher) Apply(ctx context.Context, bans []sysban.Ban) error {
	if p.node.cfg().Decide {
		p.node.publish(p.node.notEarly(bans), false)
	}
	return p.next.Apply(ctx, bans)
}

// earlyKey names a ban published by Decided.
type earlyKey struct {
	jail  string
	net   netip.Prefix
	start int64
}

// maxEarly bounds the early marks; beyond it they are dropped (a ban is
// then published twice, which is harmless: the same key and value).
const maxEarly = 1 << 20

// Decided publishes b the moment the pipeline decides it, before it waits
// in the ban worker's queue behind the batch being applied (a store commit
// and a kernel write; during a storm, many of them): the other hosts need
// not wait for this host. The ban is marked, so that the Publisher does
// not publish it again when the worker's batch reaches it.
func (n *Node) Decided(b sysban.Ban) {
	if !n.cfg().Decide {
		return
	}
	n.earlyMu.Lock()
	if len(n.early) >= maxEarly {
		clear(n.early)
	}
	n.early[earlyKey{b.Jail, b.Network(), b.Start.UnixNano()}] = struct{}{}
	n.earlyMu.Unlock()
	n.publish([]sysban.Ban{b}, false)
}

// notEarly returns the bans of a batch that Decided did not publish, and
// forgets the marks of those it did.
func (n *Node) notEarly(bans []sysban.Ban) []sysban.Ban {
	n.earlyMu.Lock()
	defer n.earlyMu.Unlock()
	if len(n.early) == 0 {
		return bans
	}
	out := make([]sysban.Ban, 0, len(bans))
	for _, b := range bans {
		k := earlyKey{b.Jail, b.Network(), b.Start.UnixNano()}
		if _, ok := n.early[k]; ok {
			delete(n.early, k)
			continue
		}
		out = append(out, b)
	}
	return out
}

// PublishManual shares a ban made by hand (`sysban ban`) on a deciding
// node like a jail's ban, with the jail's scope. It is decided here, so
// its origin is this node: under scope origin it stays here, where it is
// already in force, and is not published.
func (n *Node) PublishManual(b sysban.Ban) {
	c := n.cfg()
	if c.Decide && c.ScopeOf(b.Jail) != ScopeOrigin {
		b.Origin = c.Name
		n.publish([]sysban.Ban{b}, true)
	}
}

// publish queues bans for the fleet: each under its network (the prefix a
// jail banned, an escalated network, or a single address).
func (n *Node) publish(bans []sysban.Ban, manual bool) {
	c := n.cfg()
	now := n.now()
	ps := make([]pending, 0, len(bans))
	for _, b := range bans {
		net := b.Network()
		if b.Observed || !net.IsValid() {
			continue // observe mode enforces nothing, here or elsewhere
		}
		origin := b.Origin
		scope := c.ScopeOf(b.Jail)
		if scope == ScopeOrigin && origin == "" {
			// Nobody to send it to; it is in force here.
			continue
		}
		k := Key{Node: c.Name, Jail: b.Jail, Prefix: net}
		v := newValue(b, c.Name, c.OriginNode(origin), scope, now)
		if scope == ScopeOrigin {
			k.Origin = EncodeOrigin(v.Origin)
		}
		v.Manual = manual
		ps = append(ps, pending{Op: opPut, Key: k.String(), Value: v})
		n.traced(stageQueued, ps[len(ps)-1].Key)
	}
	n.enqueue(ps)
}

// maxQueued bounds the publications waiting for publishLoop; beyond it
// they go to the outbox.
const maxQueued = 1 << 16

// pubQueue holds publications for publishLoop, in order. A slice rather
// than a channel of batches: during a storm bans are queued one by one
// (Node.Decided) while a send waits for its acks, and publishLoop takes
// all of them at once.
type pubQueue struct {
	mu    sync.Mutex
	ps    []pending
	ready chan struct{} // kicked when ps grows
}

// take returns up to max queued publications, oldest first.
func (q *pubQueue) take(max int) []pending {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ps) <= max {
		ps := q.ps
		q.ps = nil
		return ps
	}
	ps := slices.Clone(q.ps[:max])
	q.ps = slices.Delete(q.ps, 0, max)
	return ps
}

func (n *Node) enqueue(ps []pending) {
	if len(ps) == 0 {
		return
	}
	q := &n.queue
	q.mu.Lock()
	full := len(q.ps)+len(ps) > maxQueued
	if !full {
		q.ps = append(q.ps, ps...)
	}
	q.mu.Unlock()
	if full {
		n.toOutbox(ps)
		return
	}
	n.kick(q.ready)
}

func (n *Node) toOutbox(ps []pending) {
	dropped, err := n.outbox.Append(ps)
	if err != nil {
		n.log.Error("fleet: outbox write failed; publications lost (bans stay in force here)", "err", err, "publications", len(ps))
		n.stats.dropped.Add(float64(len(ps)))
		return
	}
	if dropped > 0 {
		n.stats.dropped.Add(float64(dropped))
		n.log.Warn("fleet: outbox full; publications dropped (bans stay in force here)", "dropped", dropped, "max", n.cfg().OutboxMax)
	}
}

// publishLoop sends queued publications: straight away while connected and
// the outbox is empty (order is kept), through the outbox otherwise.
func (n *Node) publishLoop(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// What is still queued goes to the outbox for the next start.
			if ps := n.queue.take(maxQueued); len(ps) > 0 {
				n.toOutbox(ps)
			}
			return
		case <-n.queue.ready:
			n.sendQueued(ctx)
		case <-n.flush:
			n.flushOutbox(ctx)
		case <-tick.C:
			n.flushOutbox(ctx)
		}
	}
}

// sendQueued sends everything queued, in batches of up to maxSend, with
// up to two batches in flight: the next batch goes out while the server
// acknowledges the previous one, instead of waiting a replication round
// trip (an R3 cluster's quorum) for it. Order is kept: one connection
// carries the batches in order, and a batch that fails sends the next one,
// acknowledged or not, into the outbox behind its failed publications, so
// that nothing overtakes a failed publication (a ban then the unban of the
// same key are published again in that order). Publications are queued to
// the outbox whenever it is not empty, for the same reason.
func (n *Node) sendQueued(ctx context.Context) {
	var prev *inFlight
	for {
		ps := n.queue.take(maxSend)
		if len(ps) == 0 {
			if prev == nil {
				return
			}
			// What queued while prev waited for its acks goes next.
			n.settle(ctx, prev, false)
			prev = nil
			continue
		}
		// Behind a failed send (a link that died without the client
		// noticing yet), publications go straight to the outbox: each
		// send would otherwise wait out the ack timeout in turn.
		if !n.connected.Load() || n.outbox.Len() > 0 {
			if prev != nil {
				n.settle(ctx, prev, false)
				prev = nil
			}
			n.toOutbox(ps)
			continue
		}
		cur := n.startSend(ps)
		if prev != nil && !n.settle(ctx, prev, false) {
			// cur was sent behind a batch that failed: all of it
			// follows the failed publications into the outbox.
			n.settle(ctx, cur, true)
			cur = nil
		}
		prev = cur
	}
}

// settle waits for b's acks and queues its failed publications to the
// outbox, or all of them if whole (the batch before b failed); false if
// any failed.
func (n *Node) settle(ctx context.Context, b *inFlight, whole bool) bool {
	failed := n.finishSend(ctx, b, !whole)
	if whole {
		// Those the server took are published again (counted then),
		// after the failed ones before them: the same keys and values.
		n.toOutbox(b.ps)
		return false
	}
	if len(failed) > 0 {
		n.toOutbox(failed)
		return false
	}
	return true
}

// maxSend bounds the publications of one send; two sends in flight stay
// within the client's limit of unacknowledged asynchronous publications
// (2*maxSend).
const maxSend = 4096

// flushOutbox publishes the outbox oldest first, while the server acks.
func (n *Node) flushOutbox(ctx context.Context) {
	for n.connected.Load() && n.outbox.Len() > 0 && ctx.Err() == nil {
		ids, ps, err := n.outbox.Peek(1000)
		if err != nil || len(ids) == 0 {
			return
		}
		failed := n.finishSend(ctx, n.startSend(ps), true)
		if len(failed) > 0 {
			return // the server is not taking them; retried later
		}
		if err := n.outbox.Remove(ids); err != nil {
			n.log.Warn("fleet: outbox", "err", err)
			return
		}
		n.log.Info("fleet: outbox flushed", "publications", len(ids), "left", n.outbox.Len())
	}
}

// ackWait bounds how long send waits for the server's acks of one batch;
// what is not acknowledged by then goes to the outbox.
const ackWait = 5 * time.Second

// ackResult is the server's answer to the i-th publication of the batch
// being sent.
type ackResult struct {
	i   int
	err error
}

// sendState holds the batches in flight: the client's ack callbacks find
// a publication's batch and index by its message. Only publishLoop sends,
// with up to two batches in flight (sendQueued).
type sendState struct {
	mu      sync.Mutex
	waiting map[*nats.Msg]ackSlot
}

// ackSlot is where the ack of one publication goes: its batch's results
// and its index there.
type ackSlot struct {
	results chan ackResult // room for every publication of the batch
	i       int
}

// inFlight is a batch handed to the client whose acks startSend's caller
// has yet to wait for (finishSend).
type inFlight struct {
	ps      []pending
	msgs    []*nats.Msg // the messages handed to the client
	results chan ackResult
	acked   []bool // the server has it, or it was dropped as unsendable
	dropped int
	out     int   // handed to the client
	unsent  int   // index of the first publication not handed to the client
	sendErr error // why it was not
}

// onAck is the client's callback for an ack (err nil) or a failure of an
// asynchronous publication. The acks are taken through callbacks rather
// than each future's channels: a future can be failed twice (a retry
// after "no responders" that fails, then the reset at reconnect), and
// the client blocks, holding its publisher's lock for good, on a second
// error nobody reads. Here an answer for a message no batch waits for
// (late, or the second) is dropped.
func (s *sendState) onAck(m *nats.Msg, err error) {
	s.mu.Lock()
	slot, ok := s.waiting[m]
	delete(s.waiting, m)
	s.mu.Unlock()
	if ok {
		slot.results <- ackResult{slot.i, err} // never blocks: one per publication at most
	}
}

// startSend publishes ps asynchronously; finishSend waits for the acks.
// A malformed publication is dropped, not sent. Once a publication cannot
// even be handed to the client (the connection is down or reconnecting:
// nats.go's reconnect buffer is off, so it refuses with "outbound buffer
// limit exceeded"), the rest of the batch is not tried.
func (n *Node) startSend(ps []pending) *inFlight {
	now := n.now()
	b := &inFlight{ps: ps, results: make(chan ackResult, len(ps)), acked: make([]bool, len(ps)), unsent: len(ps)}
	n.sending.mu.Lock()
	if n.sending.waiting == nil {
		n.sending.waiting = make(map[*nats.Msg]ackSlot, len(ps))
	}
	n.sending.mu.Unlock()
	for i, p := range ps {
		k, err := ParseKey(p.Key)
		if err != nil {
			b.acked[i], b.dropped = true, b.dropped+1 // unsendable
			continue
		}
		var m *nats.Msg
		if p.Op == opDelete {
			m = deleteMsg(n.cfg().Bucket, k)
		} else if m, err = publishMsg(n.cfg().Bucket, k, n.sign(k, p.Value), now); err != nil || m == nil {
			b.acked[i], b.dropped = true, b.dropped+1 // over already, or unencodable
			continue
		}
		n.sending.mu.Lock()
		n.sending.waiting[m] = ackSlot{b.results, i}
		n.sending.mu.Unlock()
		b.msgs = append(b.msgs, m)
		if _, err := n.js.PublishMsgAsync(m); err != nil {
			b.sendErr, b.unsent = err, i
			break
		}
		n.traced(stageSent, p.Key)
		b.out++
	}
	return b
}

// finishSend waits for the acks of b and returns, in order, the
// publications not acknowledged (all from the first one not handed to the
// client). count: the acknowledged ones count as published.
func (n *Node) finishSend(ctx context.Context, b *inFlight, count bool) []pending {
	defer func() {
		// Answers that come later are dropped (onAck).
		n.sending.mu.Lock()
		for _, m := range b.msgs {
			delete(n.sending.waiting, m)
		}
		n.sending.mu.Unlock()
	}()
	timeout := time.NewTimer(ackWait)
	defer timeout.Stop()
	var refused error
	got := 0
wait:
	for got < b.out {
		select {
		case r := <-b.results:
			got++
			if r.err == nil {
				b.acked[r.i] = true
				if p := &b.ps[r.i]; p.Op == opPut && !p.Value.Start.IsZero() {
					n.stats.stored.Observe(n.now().Sub(p.Value.Start).Seconds())
				}
				n.traced(stageAcked, b.ps[r.i].Key)
			} else if refused == nil {
				refused = r.err
			}
		case <-timeout.C:
			refused = fmt.Errorf("no ack within %v", ackWait)
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	var failed []pending
	for i, p := range b.ps {
		if i >= b.unsent || !b.acked[i] {
			failed = append(failed, p)
		}
	}
	if err := errors.Join(b.sendErr, refused); err != nil {
		n.log.Warn("fleet: publications not acknowledged; queued in the outbox", "publications", len(failed), "err", err)
	}
	if count {
		n.stats.published.Add(float64(len(b.ps) - len(failed) - b.dropped))
	}
	return failed
}

// Unban lifts p (an address or a prefix) from the whole fleet: a
// tombstone under this node's name that every enforcer honours for every
// ban covering p decided up to now (an unban of 2001:db8::5 lifts the
// 2001:db8::/64 ban that covers it, whoever published it), and the
// deletion of this node's own keys covering p. Queued like bans. It
// returns the fleet's bans covering p that this node knows of, whether or
// not it applied them.
func (n *Node) Unban(p netip.Prefix) []Entry {
	p = sysban.CanonicalPrefix(p)
	now := n.now()
	until := time.Time{} // permanent unless every ban covering p we know of expires
	n.mu.Lock()
	var ps []pending
	var lifted []Entry
	n.known.eachCovering(p, func(k Key, _ knownKey, b knownBan) bool {
		lifted = append(lifted, b.entry(k))
		if k.Node == n.cfg().Name {
			ps = append(ps, pending{Op: opDelete, Key: k.String()})
		}
		return true
	})
	if last := n.known.lastExpiry(p); !last.IsZero() {
		until = last
	}
	n.tombs.add(p, now)
	n.mu.Unlock()
	t := Key{Node: n.cfg().Name, Jail: unbanJail, Prefix: p}
	v := Value{Start: now, Expiry: until, Node: n.cfg().Name, Scope: ScopeFleet}
	if !until.IsZero() && !until.After(now) {
		v.Expiry = now.Add(time.Second)
	}
	ps = append(ps, pending{Op: opUnban, Key: t.String(), Value: v})
	n.enqueue(ps)
	return lifted
}

// UnbanAll lifts every ban the fleet holds, as Unban does for each.
func (n *Node) UnbanAll() int {
	n.mu.Lock()
	prefixes := n.known.prefixes()
	n.mu.Unlock()
	for _, p := range prefixes {
		n.Unban(p)
	}
	return len(prefixes)
}

// String for logs.
func (p pending) String() string { return fmt.Sprintf("%d %s", p.Op, p.Key) }
