package fleet

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// memLocal is an in-memory Local: what the store and kernel would hold.
type memLocal struct {
	mu      sync.Mutex
	bans    map[jailNet]Applied
	log     []string
	applied []Entry // every entry ApplyFleet was handed, in order
}

func newMemLocal() *memLocal { return &memLocal{bans: map[jailNet]Applied{}} }

func (m *memLocal) ApplyFleet(_ context.Context, es []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range es {
		b := e.Ban()
		m.bans[jailNet{b.Jail, b.Network()}] = Applied{Jail: b.Jail, Prefix: b.Network(), Start: b.Start, Node: e.Key.Node}
	}
	m.applied = append(m.applied, es...)
	return nil
}

func (m *memLocal) InForce(_ time.Time, each func(Applied)) error {
	m.mu.Lock()
	out := make([]Applied, 0, len(m.bans))
	for _, a := range m.bans {
		out = append(out, a)
	}
	m.mu.Unlock()
	for _, a := range out {
		each(a)
	}
	return nil
}

func (m *memLocal) Lift(_ context.Context, as []Applied) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range as {
		delete(m.bans, jailNet{a.Jail, a.Prefix})
	}
	return nil
}

// local adds a ban this host decided itself, of an address or a prefix.
func (m *memLocal) local(jail, addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := mustPrefix(addr)
	m.bans[jailNet{jail, p}] = Applied{Jail: jail, Prefix: p, Start: time.Now()}
}

// has reports whether a ban of addr (an address or a prefix) is in force.
func (m *memLocal) has(jail, addr string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.bans[jailNet{jail, mustPrefix(addr)}]
	return ok
}

func mustPrefix(s string) netip.Prefix {
	p, err := sysban.ParsePrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}

func (m *memLocal) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.bans)
}

const testPassword = "correct-horse-battery"

var testNodes = []string{"collector", "hosta", "hostb", "hostc"}

// testServer starts an embedded server run by "collector" and returns its
// config and the server.
func testServer(t testing.TB, dir string) (*Config, *Server) {
	t.Helper()
	nodes := map[string]string{}
	for _, n := range testNodes {
		nodes[n] = testPassword
	}
	c := &Config{Name: "collector", Decide: true, Enforce: true, Password: testPassword,
		Embedded: &Embedded{Listen: "127.0.0.1:-1", StoreDir: dir, Nodes: nodes}}
	return c, serveConfig(t, c)
}

// serveConfig starts the embedded server of c, stopped when t ends.
func serveConfig(t testing.TB, c *Config) *Server {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := StartServer(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

type testNode struct {
	*Node
	local *memLocal
}

// startNode runs a node named name against url (or the embedded srv).
func startNode(t testing.TB, c *Config, srv *Server, tune ...func(*Options)) testNode {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	local := newMemLocal()
	o := Options{
		Config: c, Local: local, Server: srv,
		EnabledJails: []string{"sshd", "postfix"},
		OutboxPath:   filepath.Join(t.TempDir(), OutboxFile),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range tune {
		f(&o)
	}
	n, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	return testNode{n, local}
}

func nodeConfig(name, url string) *Config {
	return &Config{Name: name, Decide: true, Enforce: true, Password: testPassword, Servers: []string{url}}
}

// eventually polls cond for up to 30 s: it fails only if cond never
// comes true, so it allows for a loaded CI machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	within(t, 30*time.Second, what, cond)
}

// within polls cond for up to limit.
func within(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasString(ss []string, s string) bool { return slices.Contains(ss, s) }

// bareNode is a Node with only a config and a server, for the calls that
// need no more (creating the bucket).
func bareNode(c *Config, srv *Server) *Node {
	n := &Node{server: srv}
	n.set.Store(&settings{cfg: c})
	return n
}

// bucketGet reads k's entry from the bucket (what the node keeps of it,
// known, has neither the address nor the lines).
func (tn testNode) bucketGet(k Key) (Entry, bool) {
	ctx := context.Background()
	kv, err := tn.js.KeyValue(ctx, tn.cfg().Bucket)
	if err != nil {
		return Entry{}, false
	}
	kve, err := kv.Get(ctx, k.String())
	if err != nil {
		return Entry{}, false
	}
	e, err := decodeEntry(k.String(), kve.Value(), time.Now())
	return e, err == nil
}

// knownKeys are the keys of the bans the node knows of.
func (tn testNode) knownKeys() []Key {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	kn := tn.known
	var out []Key
	for kk := range kn.bans {
		k := Key{Node: kn.nodes.list[kk.node], Jail: kn.jails.list[kk.jail], Prefix: kk.prefix()}
		if kk.origin > 0 {
			k.Origin = kn.origins.list[kk.origin-1]
		}
		out = append(out, k)
	}
	return out
}
