package fleet

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutboxFile is the outbox's file name in the state directory.
const OutboxFile = "fleet-outbox.db"

var outboxBucket = []byte("outbox")

// opKind is what a pending publication does.
type opKind uint8

const (
	opPut    opKind = iota + 1 // a ban
	opDelete                   // delete one of our keys
	opUnban                    // a tombstone: lift the prefix everywhere
)

// pending is one publication not yet acknowledged by the server. The value
// keeps the absolute expiry; the TTL header is computed when it is sent, so
// a ban queued for an hour is published with the time it has left.
type pending struct {
	Op    opKind `json:"op"`
	Key   string `json:"key"`
	Value Value  `json:"value,omitzero"`
}

// Outbox keeps publications while NATS is unreachable, in a bbolt file
// beside the ban store, so that a restart does not lose them. It is
// bounded: beyond max, new publications are dropped and counted (the bans
// stay in force locally).
type Outbox struct {
	db  *bolt.DB
	max int

	mu  sync.Mutex
	len int
}

// OpenOutbox opens (or creates) the outbox at path.
func OpenOutbox(path string, max int) (*Outbox, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("fleet: outbox: %w", err)
	}
	o := &Outbox{db: db, max: max}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(outboxBucket)
		if err != nil {
			return err
		}
		o.len = b.Stats().KeyN
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("fleet: outbox: %w", err)
	}
	return o, nil
}

// Close closes the file.
func (o *Outbox) Close() error { return o.db.Close() }

// Len is how many publications wait.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.len
}

// Append queues ps (one fsync) and returns how many it dropped because the
// outbox is full.
func (o *Outbox) Append(ps []pending) (dropped int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	room := max(o.max-o.len, 0)
	if len(ps) > room {
		dropped = len(ps) - room
		ps = ps[:room]
	}
	if len(ps) == 0 {
		return dropped, nil
	}
	err = o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(outboxBucket)
		for _, p := range ps {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			data, err := json.Marshal(p)
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return dropped, fmt.Errorf("fleet: outbox: %w", err)
	}
	o.len += len(ps)
	return dropped, nil
}

// Peek returns up to n of the oldest publications and their ids.
func (o *Outbox) Peek(n int) (ids [][]byte, ps []pending, err error) {
	err = o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(outboxBucket).Cursor()
		for k, v := c.First(); k != nil && len(ps) < n; k, v = c.Next() {
			var p pending
			if json.Unmarshal(v, &p) != nil {
				// A damaged record cannot be sent; drop it with the batch.
				p = pending{}
			}
			ids = append(ids, append([]byte(nil), k...))
			ps = append(ps, p)
		}
		return nil
	})
	return ids, ps, err
}

// Remove drops the publications with ids (sent, or unsendable).
func (o *Outbox) Remove(ids [][]byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	removed := 0
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(outboxBucket)
		for _, id := range ids {
			if b.Get(id) != nil {
				removed++
			}
			if err := b.Delete(id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fleet: outbox: %w", err)
	}
	o.len -= removed
	return nil
}
