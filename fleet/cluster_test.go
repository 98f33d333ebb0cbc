package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
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
	cfgs, srvs := startCluster(t, names)
	n1 := startNode(t, cfgs[0], nil) // through its URLs, as an external client would
	n3 := startNode(t, cfgs[2], nil)

	const total = 2000
	var bans []sysban.Ban
	for i := range total {
		bans = append(bans, ban("sshd", netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}).String(), time.Hour))
	}
	// Status names the servers a ban goes through: the stream's leader and
	// the one holding n3's watch.
	eventually(t, "n1 names the stream's leader", func() bool {
		return n1.Status().StreamLeader == names[leaderOf(t, srvs)]
	})
	eventually(t, "n3 names the server of its watch", func() bool { return slices.Contains(names, n3.Status().WatchServer) })

	pub := n1.Publisher(nopApplier{})
	ctx := context.Background()
	for i := 0; i < total; i += 100 {
		if i == total/2 {
			killed := leaderOf(t, srvs)
			srvs[killed].srv.Shutdown() // the stream's leader, mid-storm
			t.Logf("killed %s, the stream leader", names[killed])
		}
		if err := pub.Apply(ctx, bans[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
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

// startCluster starts three embedded servers clustered as the named nodes
// (R3 bucket, each node's Servers listing all three) and creates the
// bucket once the cluster has a JetStream meta leader. The servers are
// closed at cleanup (closing one already shut down is harmless).
func startCluster(t testing.TB, names []string) ([]*Config, []*Server) {
	t.Helper()
	clients := make([]string, len(names))
	routes := make([]string, len(names))
	for i := range names {
		clients[i], routes[i] = freePort(t), freePort(t)
	}
	nodes := map[string]string{}
	for _, n := range names {
		nodes[n] = testPassword
	}
	var urls []string
	for _, c := range clients {
		urls = append(urls, "nats://"+c)
	}
	cfgs := make([]*Config, len(names))
	srvs := make([]*Server, len(names))
	started := make(chan error, len(names))
	for i, n := range names {
		rs := routesExcept(routes, i, "nats://")
		cfgs[i] = &Config{Name: n, Decide: true, Enforce: true, Password: testPassword, Replicas: 3, Servers: urls,
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
	t.Cleanup(func() {
		for _, s := range srvs {
			if s != nil {
				s.Close()
			}
		}
	})
	// The bucket needs a JetStream meta leader; n1 creates it once there
	// is one.
	if err := bareNode(cfgs[0], srvs[0]).createBucket(context.Background()); err != nil {
		t.Fatalf("bucket on the cluster: %v", err)
	}
	return cfgs, srvs
}

// routesExcept lists, as scheme URLs, the cluster routes of every node but
// node i.
func routesExcept(routes []string, i int, scheme string) []string {
	var rs []string
	for j, r := range routes {
		if j != i {
			rs = append(rs, scheme+r)
		}
	}
	return rs
}
