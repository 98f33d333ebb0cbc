package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// watchBatch is how many of the bucket's messages the client holds at most
// while the node works through them. The bench's late joiner read its
// snapshot of 100,000 in 0.9-0.95 s with 1024, 1.1-1.5 s with 2048 and
// 1.3-1.85 s with 512 (runs interleaved, load 6-9), the heap's peak the
// same within 1 MiB.
const watchBatch = 1024

// bucketEntry is one message of the bucket: a put (ban, unban tombstone)
// or a delete marker.
type bucketEntry struct {
	key   string
	value []byte
	del   bool
	at    time.Time // when the client handed it to the watch
}

// bucketWatch watches the bucket's keys through an ordered pull consumer:
// first the entries it holds (the snapshot, then nil on Updates), then every
// change. It replaces the KV watcher, whose push consumer lets the server
// run up to 32 MiB of messages ahead of the client (flow control): a whole
// 100,000-ban snapshot piled up in the client's memory, a few hundred bytes
// each on the wire and about 1 KiB each decoded, while the resync worked
// through it. Here at most watchBatch messages are ahead.
//
// A server that does not let this node pull (an older sysban's embedded
// server, or an external one configured before the watch pulled) gets the
// KV watcher instead, with a warning: the same entries, with the memory
// peak of old.
type bucketWatch struct {
	updates chan *bucketEntry
	stopped chan struct{}
	done    <-chan struct{} // closed when the watch ends on its own
	stop    func()
	once    sync.Once
	pending uint64 // entries the snapshot holds, as the server said at the start (0: unknown)
	server  string // the server that holds its consumer, as the server said at the start
}

// watch starts a watch of the keys matching filter (">" for all). Every
// key comes once (the bucket keeps one message per key), in the order the
// messages were stored.
func (n *Node) watch(ctx context.Context, filter string) (*bucketWatch, error) {
	if n.pullDenied.Load() {
		return n.watchKV(ctx, filter)
	}
	stream, err := n.js.Stream(ctx, "KV_"+n.cfg().Bucket)
	if err != nil {
		return nil, err
	}
	prefix := "$KV." + n.cfg().Bucket + "."
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, err
	}
	w := &bucketWatch{updates: make(chan *bucketEntry, 256), stopped: make(chan struct{})}
	if info := cons.CachedInfo(); info != nil {
		w.pending = info.NumPending
		if info.Cluster != nil {
			w.server = info.Cluster.Leader
		}
	}
	// The handler waits until the empty-snapshot check below is done, so
	// that nil (snapshot complete) is never sent twice or after an update.
	var mu sync.Mutex
	inSnapshot := true
	mu.Lock()
	handler := func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		e := &bucketEntry{key: strings.TrimPrefix(m.Subject(), prefix), value: m.Data(), del: m.Headers().Get(headerOp) != "", at: n.now()}
		if !w.send(e) || !inSnapshot {
			return
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			inSnapshot = false
			w.send(nil)
		}
	}
	cc, err := cons.Consume(handler, jetstream.PullMaxMessages(watchBatch))
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	w.stop = cc.Stop
	// Closed is asked once: each call starts a goroutine. A refused pull
	// ends the watch too (noticed by the connection's error handler).
	done, closed := make(chan struct{}), cc.Closed()
	w.done = done
	go func() {
		defer close(done)
		select {
		case <-closed:
		case <-n.pullRefused:
		case <-w.stopped:
		}
	}()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		inSnapshot = false
		w.send(nil) // nothing to read: no message will say the snapshot is over
	}
	mu.Unlock()
	return w, nil
}

// send hands e to the reader; false once the watch is stopped.
func (w *bucketWatch) send(e *bucketEntry) bool {
	select {
	case w.updates <- e:
		return true
	case <-w.stopped:
		return false
	}
}

// Updates are the entries, nil once the snapshot is complete.
func (w *bucketWatch) Updates() <-chan *bucketEntry { return w.updates }

// Done is closed when the watch ended on its own (the connection closed).
func (w *bucketWatch) Done() <-chan struct{} { return w.done }

// Stop ends the watch (its consumer is deleted by the client).
func (w *bucketWatch) Stop() {
	w.once.Do(func() {
		close(w.stopped)
		w.stop()
	})
}

// watchKV is the watch through the KV watcher: what a node uses when the
// server refuses its pulls.
func (n *Node) watchKV(ctx context.Context, filter string) (*bucketWatch, error) {
	kv, err := n.js.KeyValue(ctx, n.cfg().Bucket)
	if err != nil {
		return nil, err
	}
	kw, err := kv.Watch(ctx, filter)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	w := &bucketWatch{updates: make(chan *bucketEntry, 256), stopped: make(chan struct{}), done: done, stop: func() { _ = kw.Stop() }}
	go func() {
		defer close(done)
		for e := range kw.Updates() {
			var be *bucketEntry
			if e != nil {
				be = &bucketEntry{key: e.Key(), value: e.Value(), del: e.Operation() != jetstream.KeyValuePut, at: n.now()}
			}
			if !w.send(be) {
				return
			}
		}
	}()
	return w, nil
}

// asyncError handles the errors the server reports outside any request.
// A refused pull of the watch switches this node to the KV watcher.
func (n *Node) asyncError(err error) {
	if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), "CONSUMER.MSG.NEXT") {
		if !n.pullDenied.Swap(true) {
			n.log.Warn("fleet: the server refuses this node's pulls ($JS.API.CONSUMER.MSG.NEXT); watching with the KV watcher, whose snapshot the client buffers whole: grant the permissions fleet.NodePermissions lists", "err", err)
			close(n.pullRefused)
		}
		return
	}
	n.log.Warn("fleet: NATS", "err", err)
}
