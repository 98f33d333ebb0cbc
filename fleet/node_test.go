package fleet

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysban/sysban"
)

type nopApplier struct{}

func (nopApplier) Apply(context.Context, []sysban.Ban) error { return nil }

func ban(jail, addr string, d time.Duration) sysban.Ban {
	return sysban.Ban{Jail: jail, Addr: netip.MustParseAddr(addr), Start: time.Now(), Duration: d, Failures: 5}
}

func TestPropagationAndTTL(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)

	pub := collector.Publisher(nopApplier{})
	if err := pub.Apply(context.Background(), []sysban.Ban{ban("sshd", "203.0.113.7", time.Hour), ban("sshd", "2001:db8::7", sysban.Permanent)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb applies both bans", func() bool {
		return b.local.has("sshd", "203.0.113.7") && b.local.has("sshd", "2001:db8::7")
	})
	if collector.local.len() != 0 {
		t.Errorf("the collector applied its own decisions through the fleet: %d", collector.local.len())
	}

	// The TTL rides in the Nats-TTL header, whole seconds; a permanent ban has none.
	js := adminJS(t, srv)
	s, err := js.Stream(context.Background(), "KV_"+DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "$KV."+DefaultBucket+".collector.sshd.203-0-113-7_32")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(headerTTL); got != "3600s" && got != "3599s" {
		t.Errorf("Nats-TTL = %q, want about 3600s", got)
	}
	m, err = s.GetLastMsgForSubject(context.Background(), "$KV."+DefaultBucket+".collector.sshd.2001-db8--7_128")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(headerTTL); got != "" {
		t.Errorf("permanent ban carries Nats-TTL %q", got)
	}
}

func adminJS(t *testing.T, srv *Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(adminUser, srv.adminPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// The traps: the bucket refuses rollups and purges, and a node may publish
// only under its own name.
func TestBucketRefusesWipes(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	startNode(t, cc, srv)
	js := adminJS(t, srv)
	ctx := context.Background()
	s, err := js.Stream(ctx, "KV_"+DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStream(s.CachedInfo().Config); err != nil {
		t.Fatalf("bucket as created: %v", err)
	}
	m := nats.NewMsg("$KV." + DefaultBucket + ".collector.sshd.1-2-3-4_32")
	m.Header.Set("Nats-Rollup", "all")
	if _, err := js.PublishMsg(ctx, m); err == nil {
		t.Error("a Nats-Rollup: all message was accepted")
	}
	if err := s.Purge(ctx); err == nil {
		t.Error("purge was accepted")
	}

	// hosta's credentials: its own prefix yes, another node's no.
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("hosta", testPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ajs, _ := jetstream.New(nc)
	// What must work gets 30 s; what must be refused gets a short wait
	// (the server drops a refused publish, so its ack never comes), after
	// the allowed publish showed the same connection working.
	okCtx, okCancel := context.WithTimeout(ctx, 30*time.Second)
	defer okCancel()
	if _, err := ajs.Publish(okCtx, "$KV."+DefaultBucket+".hosta.sshd.1-2-3-4_32", []byte("{}")); err != nil {
		t.Fatalf("hosta publishing under its own name: %v", err)
	}
	actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := ajs.Publish(actx, "$KV."+DefaultBucket+".collector.sshd.1-2-3-5_32", []byte("{}")); err == nil {
		t.Error("hosta published under collector's name")
	}
	if err := ajs.DeleteStream(actx, "KV_"+DefaultBucket); err == nil {
		t.Error("hosta deleted the bucket")
	}
	if _, err := ajs.UpdateStream(actx, jetstream.StreamConfig{Name: "KV_" + DefaultBucket, Subjects: []string{"$KV." + DefaultBucket + ".>"}, AllowRollup: true}); err == nil {
		t.Error("hosta turned rollups on")
	}
}

func TestScopeOrigin(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	cc.Scope = map[string]Scope{"postfix": ScopeOrigin}
	cc.Origins = map[string]string{"mail.example.org": "hosta"}
	collector := startNode(t, cc, srv)
	a := startNode(t, nodeConfig("hosta", srv.ClientURL()), nil)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)

	bn := ban("postfix", "198.51.100.9", time.Hour)
	bn.Origin = "mail.example.org"
	fl := ban("sshd", "198.51.100.10", time.Hour)
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{bn, fl}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hosta has both, hostb the fleet one", func() bool {
		return a.local.has("postfix", "198.51.100.9") && a.local.has("sshd", "198.51.100.10") && b.local.has("sshd", "198.51.100.10")
	})
	if b.local.has("postfix", "198.51.100.9") {
		t.Error("a ban of scope origin from hosta's log landed on hostb")
	}
}

func TestTrust(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	bc := nodeConfig("hostb", srv.ClientURL())
	bc.IgnoreIP = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	bc.Jails = []string{"sshd"}
	bc.MaxBanTime = time.Hour
	bc.RateCap = 5
	// A clock that stays inside one minute: the cap's window.
	frozen := time.Now().Add(time.Second)
	b := startNode(t, bc, srv, func(o *Options) { o.Now = func() time.Time { return frozen } })
	// The first snapshot is exempt from the cap; the bans below must come
	// after it, live.
	eventually(t, "hostb connected and its first snapshot read", func() bool {
		return b.connected.Load() && counterValue(t, b.stats.resyncs) >= 1
	})

	pub := collector.Publisher(nopApplier{})
	ctx := context.Background()
	bans := []sysban.Ban{
		ban("sshd", "192.0.2.1", time.Hour),       // hostb's ignoreip
		ban("sshd", "127.0.0.2", time.Hour),       // loopback
		ban("postfix", "203.0.113.50", time.Hour), // jail not accepted here
		ban("sshd", "203.0.113.51", sysban.Permanent),
	}
	for i := range 10 {
		bans = append(bans, ban("sshd", netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}).String(), time.Hour))
	}
	if err := pub.Apply(ctx, bans); err != nil {
		t.Fatal(err)
	}
	refused := func(r string) float64 { return counterValue(t, b.stats.refused.WithLabelValues(r)) }
	eventually(t, "refusals counted", func() bool {
		return refused(RefusedProtected) == 2 && refused(RefusedJail) == 1 && refused(RefusedRate) >= 6
	})
	if b.local.has("sshd", "192.0.2.1") || b.local.has("sshd", "127.0.0.2") || b.local.has("postfix", "203.0.113.50") {
		t.Error("a refused ban was applied")
	}
	// 5 within the minute: the permanent one (cut to an hour) and 4 others.
	if got := b.local.len(); got != 5 {
		t.Errorf("hostb applied %d bans, want the rate cap's 5", got)
	}
	if got := counterValue(t, b.stats.capped); got != 1 {
		t.Errorf("capped = %v, want 1", got)
	}
	b.mu.Lock()
	held := len(b.held)
	b.mu.Unlock()
	if held != 6 {
		t.Errorf("held = %d, want 6", held)
	}
	// A later resync does not release what the cap holds.
	before := counterValue(t, b.stats.resyncs)
	b.kick(b.resync)
	eventually(t, "resync", func() bool { return counterValue(t, b.stats.resyncs) > before })
	b.mu.Lock()
	held = len(b.held)
	b.mu.Unlock()
	if got := b.local.len(); got != 5 || held != 6 || refused(RefusedRate) != 6 {
		t.Errorf("after a resync: %d applied, %d held, %v counted; want 5, 6, 6", got, held, refused(RefusedRate))
	}
}

func TestUnbanEverywhereSurvivesResync(t *testing.T) {
	dir := t.TempDir()
	cc, srv := testServer(t, dir)
	collector := startNode(t, cc, srv)
	a := startNode(t, nodeConfig("hosta", srv.ClientURL()), nil)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	ctx := context.Background()
	if err := collector.Publisher(nopApplier{}).Apply(ctx, []sysban.Ban{ban("sshd", "203.0.113.80", sysban.Permanent)}); err != nil {
		t.Fatal(err)
	}
	collector.local.local("sshd", "203.0.113.80") // the decider's own ban
	eventually(t, "a and b ban", func() bool { return a.local.has("sshd", "203.0.113.80") && b.local.has("sshd", "203.0.113.80") })

	// Unban from hostb, which did not decide it.
	b.Unban(mustPrefix("203.0.113.80"))
	eventually(t, "lifted everywhere", func() bool {
		return !a.local.has("sshd", "203.0.113.80") && !b.local.has("sshd", "203.0.113.80") && !collector.local.has("sshd", "203.0.113.80")
	})
	// A full resync, and a new node joining late: it stays lifted.
	a.kick(a.resync)
	c := startNode(t, nodeConfig("hostc", srv.ClientURL()), nil)
	eventually(t, "hostc resynced", func() bool { return counterValue(t, c.stats.resyncs) >= 1 && counterValue(t, a.stats.resyncs) >= 2 })
	if a.local.has("sshd", "203.0.113.80") || c.local.has("sshd", "203.0.113.80") {
		t.Error("the unbanned address came back after a resync")
	}
}

func TestResyncLiftsWhatTheBucketLost(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	startNode(t, cc, srv)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	eventually(t, "first resync", func() bool { return counterValue(t, b.stats.resyncs) >= 1 })
	// A fleet ban in force here that the bucket no longer has (deleted
	// while this node was away) is lifted; a local ban stays.
	b.local.ApplyFleet(context.Background(), []Entry{{Key: Key{Node: "hosta", Jail: "sshd", Prefix: AddrKey(netip.MustParseAddr("203.0.113.90"))}, Value: Value{Start: time.Now()}}})
	b.local.local("sshd", "203.0.113.91")
	b.kick(b.resync)
	eventually(t, "stale fleet ban lifted", func() bool { return !b.local.has("sshd", "203.0.113.90") })
	if !b.local.has("sshd", "203.0.113.91") {
		t.Error("resync lifted a local ban")
	}
}

// A late joiner reads the unbans before the bans: a ban an unban lifted is
// never applied, not even for a moment; of two nodes' bans of one address
// the longer is in force.
func TestLateJoinerStreamsTheSnapshot(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	a := startNode(t, nodeConfig("hosta", srv.ClientURL()), nil)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	ctx := context.Background()
	lifted, both := "203.0.113.100", "203.0.113.101"
	if err := a.Publisher(nopApplier{}).Apply(ctx, []sysban.Ban{ban("sshd", lifted, time.Hour), ban("sshd", both, time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := collector.Publisher(nopApplier{}).Apply(ctx, []sysban.Ban{ban("sshd", both, sysban.Permanent)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb applies both", func() bool { return b.local.has("sshd", lifted) && b.local.has("sshd", both) })
	b.Unban(mustPrefix(lifted)) // hosta's key stays in the bucket, lifted by the tombstone
	eventually(t, "hostb lifts it", func() bool { return !b.local.has("sshd", lifted) })

	c := startNode(t, nodeConfig("hostc", srv.ClientURL()), nil)
	eventually(t, "hostc resynced", func() bool { return counterValue(t, c.stats.resyncs) >= 1 })
	c.local.mu.Lock()
	defer c.local.mu.Unlock()
	var last *Entry
	for i, e := range c.local.applied {
		switch e.Key.Prefix.Addr().String() {
		case lifted:
			t.Errorf("the late joiner applied an unbanned ban: %v", e.Key)
		case both:
			last = &c.local.applied[i]
		}
	}
	if last == nil || !last.Value.Expiry.IsZero() {
		t.Errorf("%s last applied as %+v, want the permanent ban", both, last)
	}
	// What it remembers of the bucket: both nodes' bans of both addresses.
	c.mu.Lock()
	st := c.known.byNode()
	c.mu.Unlock()
	if st["hosta"][ScopeFleet] != 2 || st["collector"][ScopeFleet] != 1 {
		t.Errorf("known bans by node = %v, want hosta 2, collector 1", st)
	}
}

// A server that does not let a node pull (an older sysban's, or an external
// one configured before the watch pulled) still gets it the fleet's bans:
// the node falls back to the KV watcher.
func TestWatchFallsBackWhenPullsAreRefused(t *testing.T) {
	const adminPW = "admin-password-for-the-test"
	old := func(node string) *server.Permissions {
		p := NodePermissions(DefaultBucket, node)
		p.Publish.Allow = slices.DeleteFunc(p.Publish.Allow, func(s string) bool { return strings.Contains(s, ".MSG.NEXT.") })
		return p
	}
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{{Username: adminUser, Password: adminPW},
			{Username: "collector", Password: testPassword, Permissions: old("collector")},
			{Username: "hostb", Password: testPassword, Permissions: old("hostb")}}}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	srv := &Server{srv: ns, adminPassword: adminPW}
	cc := &Config{Name: "collector", Decide: true, Enforce: true, Password: testPassword, Servers: []string{ns.ClientURL()}}
	collector := startNode(t, cc, srv)
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{ban("sshd", "203.0.113.120", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, nodeConfig("hostb", ns.ClientURL()), nil)
	eventually(t, "hostb applies the ban over the KV watcher", func() bool { return b.local.has("sshd", "203.0.113.120") })
	if !b.pullDenied.Load() {
		t.Error("hostb pulled although the server refuses it")
	}
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{ban("sshd", "203.0.113.121", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a live ban reaches hostb", func() bool { return b.local.has("sshd", "203.0.113.121") })
}

// A ban published when it was decided reaches the fleet without the
// worker's batch, and the Publisher does not publish it a second time;
// the batch's other bans (decided inside the worker: recidive, manual) it
// does publish.
func TestDecidedPublishesOnce(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	early, late := ban("sshd", "203.0.113.8", time.Hour), ban("sshd", "203.0.113.9", time.Hour)
	collector.Decided(early)
	eventually(t, "hostb applies the decided ban", func() bool { return b.local.has("sshd", "203.0.113.8") })
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{early, late}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb applies the batch's other ban", func() bool { return b.local.has("sshd", "203.0.113.9") })
	if got := counterValue(t, collector.stats.published); got != 2 {
		t.Errorf("published %v times, want 2 (the decided ban once)", got)
	}
	collector.earlyMu.Lock()
	n := len(collector.early)
	collector.earlyMu.Unlock()
	if n != 0 {
		t.Errorf("%d early marks left after the batch", n)
	}
}
