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
			// Everything queued goes out, in sends of up to maxSend: what
			// queued while the previous send waited for its acks goes
			// out together rather than each batch waiting in turn.
			for {
				ps := n.queue.take(maxSend)
				if len(ps) == 0 {
					break
				}
				// Behind a failed send (a link that died without the
				// client noticing yet), publications go straight to the
				// outbox: each send would otherwise wait out the ack
				// timeout in turn.
				if !n.connected.Load() || n.outbox.Len() > 0 {
					n.toOutbox(ps)
					continue
				}
				if failed := n.send(ctx, ps); len(failed) > 0 {
					n.toOutbox(failed)
				}
			}
		case <-n.flush:
			n.flushOutbox(ctx)
		case <-tick.C:
			n.flushOutbox(ctx)
		}
	}
}

// maxSend bounds the publications of one send, below the client's limit
// of unacknowledged asynchronous publications.
const maxSend = 4096

// flushOutbox publishes the outbox oldest first, while the server acks.
func (n *Node) flushOutbox(ctx context.Context) {
	for n.connected.Load() && n.outbox.Len() > 0 && ctx.Err() == nil {
		ids, ps, err := n.outbox.Peek(1000)
		if err != nil || len(ids) == 0 {
			return
		}
		failed := n.send(ctx, ps)
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

// sendState is the batch send is waiting for: the client's ack callbacks
// find a publication's index by its message. Only publishLoop sends, one
// batch at a time.
type sendState struct {
	mu      sync.Mutex
	waiting map[*nats.Msg]int
	results chan ackResult // room for every publication of the batch
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
	i, ok := s.waiting[m]
	delete(s.waiting, m)
	results := s.results
	s.mu.Unlock()
	if ok {
		results <- ackResult{i, err} // never blocks: one per publication at most
	}
}

// send publishes ps asynchronously and waits for the acks; it returns, in
// order, the ones not acknowledged. A malformed one is dropped, not
// returned. Once a publication cannot even be handed to the client (the
// connection is down or reconnecting: nats.go's reconnect buffer is off,
// so it refuses with "outbound buffer limit exceeded"), the rest of the
// batch is not tried: all of it goes back to the outbox.
func (n *Node) send(ctx context.Context, ps []pending) []pending {
	now := n.now()
	results := make(chan ackResult, len(ps))
	// acked: the server has it, or it was dropped as unsendable.
	acked, dropped := make([]bool, len(ps)), 0
	n.sending.mu.Lock()
	n.sending.waiting = make(map[*nats.Msg]int, len(ps))
	n.sending.results = results
	n.sending.mu.Unlock()
	defer func() {
		n.sending.mu.Lock()
		n.sending.waiting = nil
		n.sending.mu.Unlock()
	}()
	out, unsent := 0, len(ps)
	var sendErr error
	for i, p := range ps {
		k, err := ParseKey(p.Key)
		if err != nil {
			acked[i], dropped = true, dropped+1 // unsendable
			continue
		}
		var m *nats.Msg
		if p.Op == opDelete {
			m = deleteMsg(n.cfg().Bucket, k)
		} else if m, err = publishMsg(n.cfg().Bucket, k, n.sign(k, p.Value), now); err != nil || m == nil {
			acked[i], dropped = true, dropped+1 // over already, or unencodable
			continue
		}
		n.sending.mu.Lock()
		n.sending.waiting[m] = i
		n.sending.mu.Unlock()
		if _, err := n.js.PublishMsgAsync(m); err != nil {
			sendErr = err
			unsent = i
			break
		}
		n.traced(stageSent, p.Key)
		out++
	}
	timeout := time.NewTimer(ackWait)
	defer timeout.Stop()
	var refused error
	got := 0
wait:
	for got < out {
		select {
		case r := <-results:
			got++
			if r.err == nil {
				acked[r.i] = true
				n.traced(stageAcked, ps[r.i].Key)
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
	for i, p := range ps {
		if i >= unsent || !acked[i] {
			failed = append(failed, p)
		}
	}
	if err := errors.Join(sendErr, refused); err != nil {
		n.log.Warn("fleet: publications not acknowledged; queued in the outbox", "publications", len(failed), "err", err)
	}
	n.stats.published.Add(float64(len(ps) - len(failed) - dropped))
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
