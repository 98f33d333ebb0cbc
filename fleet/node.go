package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Local is this host's ban state as the fleet sees it: cmd/sysban
// implements it with the store and the kernel (the ban chain).
type Local interface {
	// ApplyFleet puts fleet bans in force through the ban chain (store,
	// then kernel), recorded as the fleet's. entries is the caller's
	// again once it returns (a resync fills it anew): keep copies of
	// the entries, not the slice.
	ApplyFleet(ctx context.Context, entries []Entry) error
	// InForce calls each for every ban in force here: the fleet's (Node
	// set) and this host's own (Node empty). A callback, not a list: a
	// resync must not hold every ban of the store at once.
	InForce(now time.Time, each func(Applied)) error
	// Lift removes bans (store and kernel).
	Lift(ctx context.Context, bans []Applied) error
}

// Applied is one ban in force on this host.
type Applied struct {
	Jail   string
	Prefix netip.Prefix // canonical; a single address is a /32 or /128
	Start  time.Time
	Node   string // the deciding node of a fleet ban; empty for a local one
}

// jailNet is one ban's identity in a jail's sets.
type jailNet struct {
	jail string
	net  netip.Prefix
}

// Options configure a Node.
type Options struct {
	Config *Config
	Local  Local // required when Config.Enforce
	// Never are prefixes no fleet ban may cover here (own addresses,
	// forwarders); loopback and Config.IgnoreIP are added.
	Never []netip.Prefix
	// EnabledJails are the jails this host has; fleet bans of others
	// cannot be enforced (no set) and are refused.
	EnabledJails []string
	// Spared says why this host never bans cand in jail (its ignoreip,
	// allowed senders, link-local: what narrows its own prefix bans), or
	// "". Fleet prefixes are narrowed by it and by Never; nil: Never only.
	Spared     func(jail string, cand netip.Prefix) string
	OutboxPath string
	Server     *Server // the embedded server, when this node runs one
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time

	trace func(s stage, key string) // see Node.trace
}

// Node is one sysban's membership of the fleet: it publishes the bans this
// host decides and applies the fleet's bans to this host.
type Node struct {
	set     atomic.Pointer[settings]
	local   Local
	spared  func(jail string, cand netip.Prefix) string
	server  *Server
	log     *slog.Logger
	now     func() time.Time
	stats   *stats
	signer  *signer     // nil: this node has no nkey and publishes unsigned
	trust   trustKeys   // nodes whose values must be signed
	checked *checkedSet // entries whose signature was good

	nc        *nats.Conn
	js        jetstream.JetStream
	connected atomic.Bool
	// pullDenied: the server refuses the watch's pulls; pullRefused is
	// closed then (watch.go).
	pullDenied  atomic.Bool
	pullRefused chan struct{}
	outbox      *Outbox
	queue       pubQueue
	earlyMu     sync.Mutex
	early       map[earlyKey]struct{} // published by Decided, not yet by the Publisher
	sending     sendState
	resync      chan struct{}
	flush       chan struct{}
	// joined is closed when the first resync has ended, applied or
	// failed (Joined).
	joined     chan struct{}
	joinedOnce sync.Once

	// trace, when set (by the propagation benchmark), is told when each
	// publication and each ban passes a stage of the path.
	trace func(s stage, key string)

	mu         sync.Mutex
	known      *known                 // the bucket's bans as last seen
	tombs      *tombs                 // unbans: prefix -> lifted before
	held       map[Key]Entry          // over the rate cap
	rate       map[string]*rateWindow // per deciding node
	lastResync time.Time
	watchedAt  string // the server holding the live watch's consumer (Status)
	synced     bool   // the first snapshot has been applied
	lag        time.Duration
}

// New connects to the fleet (or starts connecting: a node that cannot
// reach NATS keeps working locally and queues its publications).
func New(ctx context.Context, o Options) (*Node, error) {
	c := o.Config
	if err := c.loaded(); err != nil {
		return nil, err
	}
	n := &Node{
		local: o.Local, spared: o.Spared, server: o.Server, log: o.Logger, now: o.Now, trace: o.trace,
		queue:  pubQueue{ready: make(chan struct{}, 1)},
		early:  map[earlyKey]struct{}{},
		resync: make(chan struct{}, 1),
		flush:  make(chan struct{}, 1), pullRefused: make(chan struct{}), joined: make(chan struct{}),
		known: newKnown(), tombs: newTombs(),
		held: map[Key]Entry{}, rate: map[string]*rateWindow{},
		checked: newCheckedSet(),
	}
	n.set.Store(newSettings(c, o.Never, o.EnabledJails))
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.now == nil {
		n.now = time.Now
	}
	var err error
	if n.trust, err = newTrustKeys(c.trustedKeys()); err != nil {
		return nil, err
	}
	if c.nkey != nil {
		if n.signer, err = newSigner(c.nkey); err != nil {
			return nil, err
		}
	}
	if n.stats, err = newStats(o.Registerer, n); err != nil {
		return nil, err
	}
	if n.outbox, err = OpenOutbox(o.OutboxPath, c.OutboxMax); err != nil {
		return nil, err
	}
	if o.Server != nil {
		if err := n.createBucket(ctx); err != nil {
			n.outbox.Close()
			return nil, err
		}
	}
	if err := n.connect(); err != nil {
		n.outbox.Close()
		return nil, err
	}
	return n, nil
}

// Joined is closed when an enforcing node's first resync has ended, its
// bans applied or the attempt failed; never on a node that does not
// enforce. Until then this host's kernel is filling with the fleet's
// standing bans, tens of thousands of them on a late joiner: the daemon
// starts its nft Guard after it (or a timeout), whose element checks would
// read the growing sets over and over while the join competes for the
// same CPU, and find nothing (the store follows the kernel, not the
// reverse).
func (n *Node) Joined() <-chan struct{} { return n.joined }

// Enforces reports whether this node applies the fleet's bans here.
func (n *Node) Enforces() bool { return n.cfg().Enforce }

// settings are what a reload may change on a running node (see
// RestartKeys): the config, and what is derived from it and the host.
type settings struct {
	cfg   *Config
	never []netip.Prefix  // no fleet ban may cover these here
	jails map[string]bool // jails accepted from the fleet
}

func newSettings(c *Config, never []netip.Prefix, enabledJails []string) *settings {
	s := &settings{cfg: c, jails: map[string]bool{}}
	s.never = append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, never...)
	s.never = append(s.never, c.IgnoreIP...)
	for _, j := range enabledJails {
		if len(c.Jails) == 0 || slices.Contains(c.Jails, j) {
			s.jails[j] = true
		}
	}
	return s
}

// cfg is the node's current config.
func (n *Node) cfg() *Config { return n.set.Load().cfg }

// Reload applies c (validated) to the running node: what it accepts from
// the fleet (jails, maxbantime, ratecap, ignoreip, maxprefix), the scopes,
// the origins and the resync period, then resyncs so that the new rules
// apply to what is in force. never and enabledJails are as in Options. A
// change that needs a new connection or server is refused, naming its
// keys, and nothing changes.
func (n *Node) Reload(c *Config, never []netip.Prefix, enabledJails []string) error {
	if keys := RestartKeys(n.cfg(), c); len(keys) > 0 {
		return fmt.Errorf("fleet: %s changed: this needs a restart (systemctl restart sysban)", strings.Join(keys, ", "))
	}
	n.set.Store(newSettings(c, never, enabledJails))
	n.log.Info("fleet: config reloaded; resyncing under the new rules")
	n.kick(n.resync)
	return nil
}

// createBucket makes the bucket as the embedded server's admin.
func (n *Node) createBucket(ctx context.Context) error {
	nc, err := nats.Connect("", nats.InProcessServer(n.server.srv), nats.UserInfo(adminUser, n.server.adminPassword))
	if err != nil {
		return fmt.Errorf("fleet: embedded server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Clustered embedded servers start together: until they have elected
	// a JetStream meta leader a request goes unanswered, so each attempt
	// is short and they go on until one is answered.
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		err = ensureBucket(actx, js, n.cfg().Bucket, n.cfg().Replicas)
		acancel()
		if err == nil || errors.Is(err, errBucketRefused) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n *Node) connect() error {
	c := n.cfg()
	opts := []nats.Option{
		nats.Name("sysban " + c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1), // publications wait in the outbox, not in memory
		// A link that dies without a FIN or RST is noticed within ~6 s,
		// which restarts the watch with a resync on reconnect.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(3),
		// A write into a dead link blocks once the socket buffer is full,
		// holding the connection's lock, so the pings above cannot notice
		// it and publications cannot reach the outbox: give up on the
		// write after 3 s (the client's default is a minute).
		nats.FlusherTimeout(3 * time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "connected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { n.asyncError(err) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.connected.Store(false)
			n.log.Warn("fleet: NATS connection lost; banning locally, queueing publications", "err", err)
		}),
	}
	switch {
	case c.nkey != nil:
		pub, err := c.nkey.PublicKey()
		if err != nil {
			return fmt.Errorf("fleet: nkey: %w", err)
		}
		opts = append(opts, nats.Nkey(pub, c.nkey.Sign))
	case c.Password != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.clientTLS != nil && len(c.Servers) > 0 {
		opts = append(opts, nats.Secure(c.clientTLS))
	}
	url := ""
	for i, s := range c.Servers {
		if i > 0 {
			url += ","
		}
		url += s
	}
	if url == "" && n.server != nil {
		opts = append(opts, nats.InProcessServer(n.server.srv))
		if len(c.Embedded.Nodes) == 0 {
			opts = append(opts, nats.UserInfo(adminUser, n.server.adminPassword))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("fleet: connect: %w", err)
	}
	n.nc = nc
	if nc.IsConnected() {
		n.onConnect(nc, "connected")
	}
	n.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) { n.sending.onAck(m, nil) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { n.sending.onAck(m, err) }),
		// Above the largest send, so that no send stalls on the client's
		// limit of unacknowledged messages (a late ack may still count).
		jetstream.WithPublishAsyncMaxPending(2*maxSend),
	)
	if err != nil {
		return err
	}
	return nil
}

// stage is a point on the path of a ban from the decider to an enforcer's
// kernel, for tracing.
type stage uint8

const (
	stageQueued    stage = iota // the decider queued the publication
	stageSent                   // handed to the NATS client
	stageAcked                  // the server acknowledged it (stored)
	stageDelivered              // an enforcer's watch delivered it
	stageApplied                // the enforcer's Local applied it (kernel, store)
	stages
)

var stageNames = [stages]string{"queued", "sent", "acked", "delivered", "applied"}

func (n *Node) traced(s stage, key string) {
	if n.trace != nil {
		n.trace(s, key)
	}
}

// onConnect runs on the client's callback goroutine, possibly before
// connect has stored n.nc: it uses the conn it is handed.
func (n *Node) onConnect(nc *nats.Conn, what string) {
	if n.connected.Swap(true) {
		return
	}
	n.log.Info("fleet: NATS "+what, "server", nc.ConnectedUrlRedacted())
	n.kick(n.resync)
	n.kick(n.flush)
}

func (n *Node) kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Close disconnects and closes the outbox.
func (n *Node) Close() error {
	n.nc.Close()
	return n.outbox.Close()
}

func (n *Node) outboxLen() int { return n.outbox.Len() }

// Run publishes and enforces until ctx is done.
func (n *Node) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.publishLoop(ctx) }()
	if n.cfg().Enforce {
		n.watchLoop(ctx)
	}
	wg.Wait()
	return nil
}
