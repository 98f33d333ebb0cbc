package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names the server and the KV clients read.
const (
	headerTTL = "Nats-TTL"     // per-message TTL, whole seconds (AllowMsgTTL)
	headerOp  = "KV-Operation" // "DEL" marks a delete for watchers
)

// tombstoneTTL bounds how long a delete marker stays in the bucket. A
// marker only tells live watchers; a node that missed it drops the ban at
// its next full resync, when the key is simply gone.
const tombstoneTTL = 24 * time.Hour

// streamConfig is the bans bucket as sysban creates it, instead of through
// CreateKeyValue: per-message TTL on, but no subject delete markers
// (LimitMarkerTTL would force rollups on for good, and one "Nats-Rollup:
// all" from any node would wipe the bucket), rollups off, purge denied.
// One message per key: the current ban.
func streamConfig(bucket string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       "sysban fleet bans",
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		MaxMsgSize:        maxValueBytes + 1024,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
		AllowMsgTTL:       true,
		AllowRollup:       false,
		DenyPurge:         true,
		DenyDelete:        true,
	}
}

// checkStream refuses a bucket whose config springs one of the traps:
// anyone could wipe it (rollups, purge) or deletes would leave markers.
func checkStream(c jetstream.StreamConfig) error {
	switch {
	case c.AllowRollup:
		return errors.New("rollups are allowed: one Nats-Rollup header from any node would wipe every ban")
	case !c.DenyPurge:
		return errors.New("purge is allowed")
	case !c.AllowMsgTTL:
		return errors.New("per-message TTL is off: bans would never expire from the bucket")
	case c.SubjectDeleteMarkerTTL != 0:
		return errors.New("subject delete markers are on (they force rollups on)")
	case c.MaxMsgsPerSubject != 1:
		return fmt.Errorf("history %d, want 1", c.MaxMsgsPerSubject)
	}
	return nil
}

// errBucketRefused: the bucket exists with a config that springs a trap.
var errBucketRefused = errors.New("refused")

// ensureBucket creates the bucket's stream if it is missing and checks it
// either way. A node without the right to create it (every node but the
// embedded server's) gets a clear error until an admin created it.
func ensureBucket(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) error {
	name := "KV_" + bucket
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, streamConfig(bucket, replicas))
	}
	if err != nil {
		return fmt.Errorf("fleet: bucket %s: %w", bucket, err)
	}
	if err := checkStream(s.CachedInfo().Config); err != nil {
		return fmt.Errorf("fleet: bucket %s: %w: %w", bucket, errBucketRefused, err)
	}
	return nil
}

// publishMsg is the message that puts entry e in bucket, with the TTL left
// until its expiry; nil when the ban is already over.
func publishMsg(bucket string, k Key, v Value, now time.Time) (*nats.Msg, error) {
	ttl, ok := ttlFor(v.Expiry, now)
	if !ok {
		return nil, nil
	}
	data, err := appendValue(make([]byte, 0, 256), &v)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg("$KV." + bucket + "." + k.String())
	m.Data = data
	if ttl > 0 {
		m.Header.Set(headerTTL, strconv.FormatInt(int64(ttl/time.Second), 10)+"s")
	}
	return m, nil
}

// deleteMsg removes key k: a delete marker with a TTL, since the bucket
// keeps no automatic markers and must not grow with every unban.
func deleteMsg(bucket string, k Key) *nats.Msg {
	m := nats.NewMsg("$KV." + bucket + "." + k.String())
	m.Header.Set(headerOp, "DEL")
	m.Header.Set(headerTTL, strconv.FormatInt(int64(tombstoneTTL/time.Second), 10)+"s")
	return m
}
