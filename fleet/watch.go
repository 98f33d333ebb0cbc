package fleet

import (
	"context"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// watchBatch is how many of the bucket's messages the client holds at most
// while the node works through them.
const watchBatch = 512

// bucketEntry is one message of the bucket: a put (ban, unban tombstone)
// or a delete marker.
type bucketEntry struct {
	key   string
	value []byte
	del   bool
}

// bucketWatch watches the bucket's keys through an ordered pull consumer:
// first the entries it holds (the snapshot, then nil on Updates), then every
// change. It replaces the KV watcher, whose push consumer lets the server
// run up to 32 MiB of messages ahead of the client (flow control): a whole
// 100,000-ban snapshot piled up in the client's memory, a few hundred bytes
// each on the wire and about 1 KiB each decoded, while the resync worked
// through it. Here at most watchBatch messages are ahead.
type bucketWatch struct {
	cc      jetstream.ConsumeContext
	closed  <-chan struct{} // cc.Closed(), asked once: each call starts a goroutine
	updates chan *bucketEntry
	stopped chan struct{}
	once    sync.Once
}

// watch starts a watch of the keys matching filter ("*.*.*" for all). Every
// key comes once (the bucket keeps one message per key), in the order the
// messages were stored.
func (n *Node) watch(ctx context.Context, filter string) (*bucketWatch, error) {
	stream, err := n.js.Stream(ctx, "KV_"+n.cfg.Bucket)
	if err != nil {
		return nil, err
	}
	prefix := "$KV." + n.cfg.Bucket + "."
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, err
	}
	w := &bucketWatch{updates: make(chan *bucketEntry, 256), stopped: make(chan struct{})}
	// The handler waits until the empty-snapshot check below is done, so
	// that nil (snapshot complete) is never sent twice or after an update.
	var mu sync.Mutex
	inSnapshot := true
	mu.Lock()
	handler := func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		e := &bucketEntry{key: strings.TrimPrefix(m.Subject(), prefix), value: m.Data(), del: m.Headers().Get(headerOp) != ""}
		if !w.send(e) || !inSnapshot {
			return
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			inSnapshot = false
			w.send(nil)
		}
	}
	w.cc, err = cons.Consume(handler, jetstream.PullMaxMessages(watchBatch))
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	w.closed = w.cc.Closed()
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
func (w *bucketWatch) Done() <-chan struct{} { return w.closed }

// Stop ends the watch (its consumer is deleted by the client).
func (w *bucketWatch) Stop() {
	w.once.Do(func() {
		close(w.stopped)
		w.cc.Stop()
	})
}
