package fleet

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestOutboxBoundedAndDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), OutboxFile)
	o, err := OpenOutbox(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	ps := []pending{{Op: opPut, Key: "a.sshd.1-2-3-4_32"}, {Op: opDelete, Key: "a.sshd.1-2-3-5_32"}}
	if d, err := o.Append(ps); err != nil || d != 0 {
		t.Fatalf("Append = %d, %v", d, err)
	}
	if d, err := o.Append(ps); err != nil || d != 1 {
		t.Fatalf("Append over the bound = %d dropped, %v; want 1", d, err)
	}
	o.Close()
	if o, err = OpenOutbox(path, 3); err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Len() != 3 {
		t.Fatalf("after reopening: %d, want 3", o.Len())
	}
	ids, got, err := o.Peek(2)
	if err != nil || len(got) != 2 || got[0].Key != ps[0].Key || got[1].Op != opDelete {
		t.Fatalf("Peek = %v, %v", got, err)
	}
	if err := o.Remove(ids); err != nil || o.Len() != 1 {
		t.Fatalf("Remove: %v, len %d", err, o.Len())
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Partition: the decider loses NATS (the server goes down), bans 1,000
// addresses, and when the server is back every enforcer has all of them:
// the decider's outbox flushes and the enforcer's watch restarts with a
// full resync.
func TestPartitionOutboxAndReconnectResync(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)
	nodes := map[string]string{"collector": testPassword, "hosta": testPassword, "hostb": testPassword}
	start := func() *Server {
		c := &Config{Name: "collector", Decide: true, Enforce: true, Embedded: &Embedded{Listen: listen, StoreDir: dir, Nodes: nodes}}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		srv, err := StartServer(c)
		if err != nil {
			t.Fatal(err)
		}
		// The bucket is made once, by the server's own node.
		n := bareNode(c, srv)
		if err := n.createBucket(context.Background()); err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	url := "nats://" + listen
	a := startNode(t, nodeConfig("hosta", url), nil)
	b := startNode(t, nodeConfig("hostb", url), nil)
	eventually(t, "both connected and resynced", func() bool {
		return counterValue(t, a.stats.resyncs) >= 1 && counterValue(t, b.stats.resyncs) >= 1
	})

	srv.Close()
	eventually(t, "hosta sees the loss", func() bool { return !a.connected.Load() })
	var bans []sysban.Ban
	for i := range 1000 {
		bans = append(bans, ban("sshd", netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).String(), time.Hour))
	}
	pub := a.Publisher(nopApplier{})
	for i := 0; i < len(bans); i += 100 {
		if err := pub.Apply(context.Background(), bans[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "1,000 publications in the outbox", func() bool { return a.outbox.Len() == 1000 })

	srv = start()
	t.Cleanup(srv.Close)
	eventually(t, "hostb has all 1,000", func() bool { return b.local.len() == 1000 })
	eventually(t, "outbox empty", func() bool { return a.outbox.Len() == 0 })
	if got := counterValue(t, a.stats.published); got != 1000 {
		t.Errorf("published = %v, want 1000", got)
	}
	for _, bn := range bans[:3] {
		if !b.local.has("sshd", bn.Addr.String()) {
			t.Errorf("hostb lacks %s", bn.Addr)
		}
	}
}
