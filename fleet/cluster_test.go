package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// Three sysbans cluster their embedded servers (R3 bucket). The server
// that leads the bucket's stream is killed in the middle of a storm of
// bans; no ban is lost and the surviving enforcer converges.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a 3-node JetStream cluster (several seconds)")
	}
	names := []string{"n1", "n2", "n3"}
	clients := make([]string, 3)
	routes := make([]string, 3)
	for i := range names {
		clients[i], routes[i] = freePort(t), freePort(t)
	}
	nodes := map[string]string{}
	for _, n := range names {
		nodes[n] = testPassword
	}
	cfgs := make([]*Config, 3)
	srvs := make([]*Server, 3)
	started := make(chan error, 3)
	for i, n := range names {
		var rs []string
		for j := range names {
			if j != i {
				rs = append(rs, "nats://"+routes[j])
			}
		}
		cfgs[i] = &Config{Name: n, Decide: true, Enforce: true, Password: testPassword, Replicas: 3,
			Servers: []string{"nats://" + clients[0], "nats://" + clients[1], "nats://" + clients[2]},
			Embedded: &Embedded{Listen: clients[i], StoreDir: t.TempDir(), Nodes: nodes,
				ClusterName: "sysban", ClusterListen: routes[i], Routes: rs}}
		if err := cfgs[i].Validate(); err != nil {
			t.Fatal(err)
		}
		go func(i int) {
			var err error
			srvs[i], err = StartServer(cfgs[i])
			started <- err
		}(i)
	}
	for range names {
		if err := <-started; err != nil {
			t.Fatal(err)
		}
	}
	killed := -1
	t.Cleanup(func() {
		for i, s := range srvs {
			if i != killed {
				s.Close()
			}
		}
	})
	// The bucket needs a JetStream meta leader; n1 creates it once there is one.
	var n1 testNode
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := (&Node{cfg: cfgs[0], server: srvs[0]}).createBucket(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bucket on the cluster: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	n1 = startNode(t, cfgs[0], nil) // through its URLs, as an external client would
	n3 := startNode(t, cfgs[2], nil)

	const total = 2000
	var bans []sysban.Ban
	for i := range total {
		bans = append(bans, ban("sshd", netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}).String(), time.Hour))
	}
	pub := n1.Publisher(nopApplier{})
	ctx := context.Background()
	for i := 0; i < total; i += 100 {
		if i == total/2 {
			killed = leaderOf(t, srvs)
			srvs[killed].srv.Shutdown() // the stream's leader, mid-storm
			t.Logf("killed %s, the stream leader", names[killed])
		}
		if err := pub.Apply(ctx, bans[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(60 * time.Second)
	for n3.local.len() < total {
		if time.Now().After(deadline) {
			t.Fatalf("n3 has %d of %d bans (n1 outbox %d)", n3.local.len(), total, n1.outbox.Len())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// leaderOf is the index of the server leading the bucket's stream.
func leaderOf(t *testing.T, srvs []*Server) int {
	t.Helper()
	for i, s := range srvs {
		if s.srv.JetStreamIsStreamLeader("$G", "KV_"+DefaultBucket) {
			return i
		}
	}
	t.Fatal(fmt.Errorf("no server leads the bucket's stream"))
	return -1
}
