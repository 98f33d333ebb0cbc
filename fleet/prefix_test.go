package fleet

import (
	"context"
	"crypto/tls"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// prefixBan is a jail's ban of prefix, decided on addr's failures ("" for
// a manual prefix ban, which names no address).
func prefixBan(jail, prefix, addr string, d time.Duration) sysban.Ban {
	b := sysban.Ban{Jail: jail, Prefix: mustPrefix(prefix), Start: time.Now(), Duration: d, Failures: 3}
	if addr != "" {
		b.Addr = netip.MustParseAddr(addr)
	}
	return b
}

// TestPrefixBans: a prefix ban (and an escalated network) goes out under
// its prefix and is applied as one; an enforcer refuses prefixes wider
// than its fleet.maxprefix4/6, and narrows one that covers an address it
// never bans (its fleet never-ban list, or what Options.Spared names: the
// host's own prefix-ban protections) around the offending address, as its
// own jails would, or refuses it when it cannot.
func TestPrefixBans(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	bc := nodeConfig("hostb", srv.ClientURL())
	bc.IgnoreIP = []netip.Prefix{mustPrefix("2001:db8:2:2:8000::/65"), mustPrefix("198.51.100.77")}
	bc.MaxPrefix6 = 40
	// e.g. the jail's ignoreip on hostb: the /64 narrows to the /113
	// around the offender that leaves it out.
	spared := mustPrefix("2001:db8:3:3::ffff")
	b := startNode(t, bc, srv, func(o *Options) {
		o.Spared = func(jail string, cand netip.Prefix) string {
			if jail == "sshd" && cand.Overlaps(spared) {
				return "ignoreip " + spared.String()
			}
			return ""
		}
	})
	eventually(t, "hostb connected", func() bool { return b.connected.Load() })

	bans := []sysban.Ban{
		prefixBan("sshd", "2001:db8:1:2::/64", "2001:db8:1:2::c", time.Hour),
		prefixBan("sshd", "2001:db8:5::/48", "2001:db8:5:1::9", time.Hour), // escalated
		prefixBan("sshd", "203.0.113.0/24", "203.0.113.9", time.Hour),
		prefixBan("sshd", "2001:db8::/32", "2001:db8::1", time.Hour),         // wider than hostb's /40
		prefixBan("sshd", "10.0.0.0/8", "10.0.0.1", time.Hour),               // wider than the default /24
		prefixBan("sshd", "2001:db8:2:2::/64", "2001:db8:2:2::1", time.Hour), // covers hostb's fleet.ignoreip
		prefixBan("sshd", "2001:db8:3:3::/64", "2001:db8:3:3::1", time.Hour), // covers what Spared names
		prefixBan("sshd", "198.51.100.0/24", "", time.Hour),                  // covers it, and no address to narrow around
		prefixBan("sshd", "2001:db8:9::/48", "2001:db8:9::1", time.Hour),
	}
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), bans); err != nil {
		t.Fatal(err)
	}
	want := []string{"2001:db8:1:2::/64", "2001:db8:5::/48", "203.0.113.0/24", "2001:db8:2:2::/65", "2001:db8:3:3::/113", "2001:db8:9::/48"}
	eventually(t, "hostb applies the prefixes", func() bool {
		for _, p := range want {
			if !b.local.has("sshd", p) {
				return false
			}
		}
		return true
	})
	refused := func(r string) float64 { return counterValue(t, b.stats.refused.WithLabelValues(r)) }
	eventually(t, "refusals counted", func() bool { return refused(RefusedPrefix) == 2 && refused(RefusedProtected) == 1 })
	if got := b.local.len(); got != len(want) {
		t.Errorf("hostb holds %d bans, want %d", got, len(want))
	}
	if got := b.Status().Narrowed; got != 2 {
		t.Errorf("narrowed = %v, want 2", got)
	}
	// The key carries the prefix; the value the address seen.
	var e Entry
	eventually(t, "the /64 in the bucket", func() bool {
		var ok bool
		e, ok = collector.bucketGet(Key{Node: "collector", Jail: "sshd", Prefix: mustPrefix("2001:db8:1:2::/64")})
		return ok
	})
	if e.Value.Addr != netip.MustParseAddr("2001:db8:1:2::c") {
		t.Errorf("bucket entry of the /64: %+v", e)
	}

	// A resync keeps the narrowed bans (it wants what it applied).
	before := counterValue(t, b.stats.resyncs)
	b.kick(b.resync)
	eventually(t, "resync", func() bool { return counterValue(t, b.stats.resyncs) > before })
	for _, p := range want {
		if !b.local.has("sshd", p) {
			t.Errorf("after a resync hostb lacks %s", p)
		}
	}
}

// TestPrefixUnban: an unban of one address, from a node that decided
// nothing, lifts the fleet ban whose prefix covers it on every node, and
// it stays lifted after a resync and for a node starting afresh; a ban of
// a narrower prefix elsewhere stays.
func TestPrefixUnban(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	a := startNode(t, nodeConfig("hosta", srv.ClientURL()), nil)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	ctx := context.Background()
	if err := collector.Publisher(nopApplier{}).Apply(ctx, []sysban.Ban{
		prefixBan("sshd", "2001:db8::/64", "2001:db8::9", sysban.Permanent),
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Publisher(nopApplier{}).Apply(ctx, []sysban.Ban{ban("sshd", "2001:db8:0:1::6", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	collector.local.local("sshd", "2001:db8::/64") // the decider's own ban
	eventually(t, "b bans both and knows them", func() bool {
		return b.local.has("sshd", "2001:db8::/64") && b.local.has("sshd", "2001:db8:0:1::6") && len(b.knownKeys()) == 2
	})

	if got := b.Unban(mustPrefix("2001:db8::5")); len(got) != 1 || got[0].Key.Prefix != mustPrefix("2001:db8::/64") || got[0].Key.Node != "collector" {
		t.Errorf("Unban reports %+v, want the collector's /64", got)
	}
	eventually(t, "the /64 lifted everywhere", func() bool {
		return !a.local.has("sshd", "2001:db8::/64") && !b.local.has("sshd", "2001:db8::/64") && !collector.local.has("sshd", "2001:db8::/64")
	})
	if !b.local.has("sshd", "2001:db8:0:1::6") {
		t.Error("an unban of 2001:db8::5 lifted a ban that does not cover it")
	}
	// Republished by the decider from before the unban (an outbox
	// flushed late): the tombstone still lifts it.
	old := prefixBan("sshd", "2001:db8::/64", "2001:db8::9", sysban.Permanent)
	old.Start = time.Now().Add(-time.Minute)
	collector.publish([]sysban.Ban{old}, false)
	a.kick(a.resync)
	c := startNode(t, nodeConfig("hostc", srv.ClientURL()), nil)
	eventually(t, "resyncs", func() bool {
		return counterValue(t, c.stats.resyncs) >= 1 && counterValue(t, a.stats.resyncs) >= 2 && c.local.has("sshd", "2001:db8:0:1::6")
	})
	if a.local.has("sshd", "2001:db8::/64") || c.local.has("sshd", "2001:db8::/64") {
		t.Error("the unbanned prefix came back after a resync or a fresh start")
	}
}

// TestPublishManual: a ban made by hand is published like a jail's, with
// the jail's scope, its origin the deciding node, marked manual; under
// scope origin it stays where it was made.
func TestPublishManual(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	cc.Scope = map[string]Scope{"postfix": ScopeOrigin}
	collector := startNode(t, cc, srv)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	eventually(t, "hostb connected", func() bool { return b.connected.Load() })
	collector.PublishManual(prefixBan("sshd", "2001:db8:7::/48", "", time.Hour))
	collector.PublishManual(ban("postfix", "203.0.113.70", time.Hour))
	eventually(t, "hostb applies the manual prefix ban", func() bool { return b.local.has("sshd", "2001:db8:7::/48") })
	e, _ := b.bucketGet(Key{Node: "collector", Jail: "sshd", Prefix: mustPrefix("2001:db8:7::/48")})
	// A resync applies as the snapshot arrives and takes its view of the
	// bucket at the end.
	var keys []Key
	eventually(t, "hostb knows the ban", func() bool { keys = b.knownKeys(); return len(keys) > 0 })
	if !e.Value.Manual || e.Value.Origin != "collector" {
		t.Errorf("manual ban's value: %+v", e.Value)
	}
	if len(keys) != 1 {
		t.Errorf("bucket holds %v; the postfix ban (scope origin) must stay on the collector", keys)
	}
}

// TestReload: trust changes apply to a running node and what is in force
// (a resync follows); a change that needs a new connection is refused,
// naming the key, and the old config stays.
func TestReload(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	bc := nodeConfig("hostb", srv.ClientURL())
	b := startNode(t, bc, srv)
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{
		ban("sshd", "192.0.2.10", time.Hour),
		prefixBan("sshd", "2001:db8:4::/48", "2001:db8:4::1", time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb bans both", func() bool {
		return b.local.has("sshd", "192.0.2.10") && b.local.has("sshd", "2001:db8:4::/48")
	})

	moved := *bc
	moved.Servers = []string{"nats://192.0.2.1:4222"}
	moved.IgnoreIP = []netip.Prefix{mustPrefix("192.0.2.0/24")}
	err := b.Reload(&moved, nil, []string{"sshd", "postfix"})
	if err == nil || !strings.Contains(err.Error(), "fleet.servers") {
		t.Fatalf("reload with new servers: %v, want a refusal naming fleet.servers", err)
	}
	if b.cfg() != bc {
		t.Error("a refused reload changed the config")
	}

	next := *bc
	next.IgnoreIP = []netip.Prefix{mustPrefix("192.0.2.0/24")}
	next.MaxPrefix6 = 56
	if err := b.Reload(&next, nil, []string{"sshd", "postfix"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the resync lifts what the new rules refuse", func() bool {
		return !b.local.has("sshd", "192.0.2.10") && !b.local.has("sshd", "2001:db8:4::/48")
	})
	if got := counterValue(t, b.stats.refused.WithLabelValues(RefusedPrefix)); got < 1 {
		t.Errorf("refused (prefix) = %v after the reload", got)
	}
}

func TestTombsLiftedAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := newTombs()
	ts.add(mustPrefix("2001:db8::5"), t0)
	ts.add(mustPrefix("2001:db8:1::/64"), t0.Add(time.Hour))
	ts.add(mustPrefix("203.0.113.9"), t0.Add(2*time.Hour))
	ts.add(mustPrefix("2001:db8::5"), t0.Add(-time.Hour)) // older: ignored
	tests := []struct {
		ban  string
		want time.Time
	}{
		{"2001:db8::5", t0},
		{"2001:db8::/64", t0},                // covers the unbanned address
		{"2001:db8::/32", t0.Add(time.Hour)}, // covers both: the later
		{"2001:db8:1::/48", t0.Add(time.Hour)},
		{"2001:db8:1::/96", time.Time{}}, // inside the unbanned /64: stays
		{"2001:db8::6", time.Time{}},
		{"203.0.113.0/24", t0.Add(2 * time.Hour)},
		{"198.51.100.0/24", time.Time{}},
	}
	for _, tt := range tests {
		if got := ts.liftedAt(mustPrefix(tt.ban)); !got.Equal(tt.want) {
			t.Errorf("liftedAt(%s) = %v, want %v", tt.ban, got, tt.want)
		}
	}
}

// loadedTLS stands for a TLS configuration Load made: a new one at every
// load, which reflect.DeepEqual never finds equal to the last (it holds
// functions).
func loadedTLS() *tls.Config {
	return &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return nil }}
}

func TestRestartKeys(t *testing.T) {
	base := func() *Config {
		c := nodeConfig("hostb", "nats://127.0.0.1:4222")
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		c.Embedded = &Embedded{Listen: "127.0.0.1:4222", TLS: &TLSFiles{Cert: "a.pem"}, serverTLS: loadedTLS()}
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"trust", func(c *Config) {
			c.Jails, c.MaxBanTime, c.RateCap, c.MaxPrefix6 = []string{"sshd"}, time.Hour, 10, 64
			c.IgnoreIP = []netip.Prefix{mustPrefix("10.0.0.0/8")}
			c.Scope, c.Origins, c.Resync = map[string]Scope{"sshd": ScopeOrigin}, map[string]string{"h": "hostb"}, time.Minute
		}, nil},
		{"servers", func(c *Config) { c.Servers = []string{"nats://10.0.0.1:4222"} }, []string{"fleet.servers"}},
		{"roles", func(c *Config) { c.Decide = false }, []string{"fleet.roles"}},
		{"name and password", func(c *Config) { c.Name, c.Password = "hostc", "x" }, []string{"fleet.name", "fleet.password"}},
		{"embedded", func(c *Config) { c.Embedded = &Embedded{Listen: ":4222"} }, []string{"fleet.embedded"}},
		{"what Load read, anew", func(c *Config) { c.Embedded.serverTLS = loadedTLS() }, nil},
		{"embedded TLS files", func(c *Config) { c.Embedded.TLS = &TLSFiles{Cert: "b.pem"} }, []string{"fleet.embedded"}},
	}
	for _, tt := range tests {
		c := base()
		tt.change(c)
		if got := RestartKeys(base(), c); !slices.Equal(got, tt.want) {
			t.Errorf("%s: RestartKeys = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestScopeOriginPerOrigin: with per-origin counting one address may be
// banned from host A's log and from host B's; under scope origin each
// ban has a key of its own, and each host keeps its ban, through a
// resync too.
func TestScopeOriginPerOrigin(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	cc.Scope = map[string]Scope{"postfix": ScopeOrigin}
	collector := startNode(t, cc, srv)
	a := startNode(t, nodeConfig("hosta", srv.ClientURL()), nil)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	fromA, fromB := ban("postfix", "198.51.100.20", time.Hour), ban("postfix", "198.51.100.20", time.Hour)
	fromA.Origin, fromB.Origin = "hosta", "hostb"
	pub := collector.Publisher(nopApplier{})
	if err := pub.Apply(context.Background(), []sysban.Ban{fromA}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Apply(context.Background(), []sysban.Ban{fromB}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "each host has its ban", func() bool {
		return a.local.has("postfix", "198.51.100.20") && b.local.has("postfix", "198.51.100.20")
	})
	before := counterValue(t, a.stats.resyncs)
	a.kick(a.resync)
	eventually(t, "resync", func() bool { return counterValue(t, a.stats.resyncs) > before })
	if !a.local.has("postfix", "198.51.100.20") {
		t.Error("host B's ban of the same address took host A's away")
	}
}
