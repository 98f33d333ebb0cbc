package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// A snapshot read ahead on the decoding workers hands fn exactly the
// entries Node.read accepts (signed and intact; not tampered, invalid or
// deleted), in the snapshot's order, also after a partial batch and when
// the watch ends mid-snapshot (with its error).
func TestReadSnapshotDecodedKeepsOrder(t *testing.T) {
	kp, pub := newNKey(t)
	s, _ := newSigner(kp)
	trust, _ := newTrustKeys(map[string]string{"hosta": pub})
	now := time.Now()
	n := &Node{trust: trust, checked: newCheckedSet(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), known: newKnown(),
		now: func() time.Time { return now }}
	var err error
	if n.stats, err = newStats(nil, n); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		entries int
		end     bool // the snapshot completes (else the watch ends)
	}{
		{"complete, last batch partial", 3*decodeBatch + 5, true},
		{"complete, whole batches", 2 * decodeBatch, true},
		{"empty", 0, true},
		{"watch ends mid-snapshot", decodeBatch + 7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			w := &bucketWatch{updates: make(chan *bucketEntry, tc.entries+1), stopped: make(chan struct{}), done: done}
			var want []string
			for i := range tc.entries {
				a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
				key := fmt.Sprintf("hosta.sshd.198-51-100-%d_32", i%256)
				v, _ := s.sign(key, Value{Start: now, Expiry: now.Add(time.Hour), Node: "hosta", Addr: a, Scope: ScopeFleet})
				if i%256 != i {
					v.Addr = netip.Addr{}
				}
				data, _ := json.Marshal(v)
				e := &bucketEntry{key: key, value: data}
				switch i % 7 {
				case 3:
					v.Expiry = v.Expiry.Add(time.Hour) // no longer what was signed
					e.value, _ = json.Marshal(v)
				case 4:
					e.value = []byte("{not json")
				case 5:
					e.del = true
				default:
					want = append(want, key)
				}
				w.updates <- e
			}
			if tc.end {
				w.updates <- nil
			} else {
				go func() {
					for len(w.updates) > 0 {
						time.Sleep(time.Millisecond) // every entry read before the watch ends
					}
					time.Sleep(10 * time.Millisecond)
					close(done)
				}()
			}
			var got []string
			err := n.readSnapshotDecoded(context.Background(), w, func(e Entry, tomb time.Time) {
				got = append(got, e.Key.String())
			})
			if tc.end != (err == nil) {
				t.Errorf("err %v, snapshot complete %v", err, tc.end)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("handed %d entries %v\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}
}

// Joined is closed once an enforcer's first resync has ended, with every
// standing ban of the bucket applied by then (the daemon starts its nft
// Guard on it, not to read the sets while a late joiner fills them); a
// node that does not enforce never closes it.
func TestJoinedAfterFirstResync(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	var bans []sysban.Ban
	for i := range 2*resyncChunk + 10 { // more than one chunk
		bans = append(bans, ban("sshd", netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).String(), time.Hour))
	}
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), bans); err != nil {
		t.Fatal(err)
	}
	s, err := adminJS(t, srv).Stream(context.Background(), "KV_"+DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 30*time.Second, "the bucket holds every ban", func() bool {
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs >= uint64(len(bans))
	})

	decider := nodeConfig("hosta", srv.ClientURL())
	decider.Enforce = false
	a := startNode(t, decider, nil)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	select {
	case <-b.Joined():
	case <-time.After(30 * time.Second):
		t.Fatal("an enforcer's Joined is not closed 30 s after its start")
	}
	if got := b.local.len(); got != len(bans) {
		t.Errorf("Joined closed with %d of %d bans applied", got, len(bans))
	}
	if !b.Enforces() || a.Enforces() {
		t.Errorf("Enforces: enforcer %v, decide-only node %v", b.Enforces(), a.Enforces())
	}
	select {
	case <-a.Joined():
		t.Error("a decide-only node's Joined is closed")
	default:
	}
}
