package fleet

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSendQueuedOrder: with two batches in flight, a batch behind one
// that failed goes whole into the outbox after the failed publications,
// even the ones the server took, so that nothing overtakes a failed
// publication (here a ban then its deletion); when nothing fails, nothing
// is left in the outbox. The failure is real: the server refuses a
// publication under another node's prefix.
func TestSendQueuedOrder(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	startNode(t, cc, srv) // creates the bucket
	ac := nodeConfig("hosta", srv.ClientURL())
	ac.Enforce = false
	if err := ac.Validate(); err != nil {
		t.Fatal(err)
	}
	// New connects; without Run, no publishLoop competes for the queue.
	a, err := New(context.Background(), Options{Config: ac, Local: newMemLocal(), Server: nil,
		OutboxPath: filepath.Join(t.TempDir(), OutboxFile), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	a.connected.Store(true)

	next := 0
	put := func(node string) pending {
		next++
		now := time.Now()
		k := Key{Node: node, Jail: "sshd", Prefix: AddrKey(netip.AddrFrom4([4]byte{10, 7, byte(next >> 8), byte(next)}))}
		return pending{Op: opPut, Key: k.String(), Value: Value{Start: now, Expiry: now.Add(time.Hour), Node: node, Scope: ScopeFleet}}
	}
	// batch returns maxSend publications of hosta's, the first one under
	// first's prefix.
	batch := func(first string) []pending {
		ps := []pending{put(first)}
		for len(ps) < maxSend {
			ps = append(ps, put("hosta"))
		}
		return ps
	}
	for _, tc := range []struct {
		name  string
		first string // node of the first batch's first publication
		fails bool
	}{
		{"all acknowledged", "hosta", false},
		{"first batch fails", "hostz", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := batch(tc.first)
			ban := put("hosta")
			del := pending{Op: opDelete, Key: ban.Key}
			a.enqueue(first)
			a.enqueue([]pending{ban, del})
			a.sendQueued(context.Background())
			_, got, err := a.outbox.Peek(maxSend)
			if err != nil {
				t.Fatal(err)
			}
			var want []pending
			if tc.fails {
				want = []pending{first[0], ban, del}
			}
			keys := func(ps []pending) []string {
				var ks []string
				for _, p := range ps {
					ks = append(ks, p.String())
				}
				return ks
			}
			if !slices.Equal(keys(got), keys(want)) {
				t.Fatalf("outbox %v, want %v", keys(got), keys(want))
			}
		})
	}
}
