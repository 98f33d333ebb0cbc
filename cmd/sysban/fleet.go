package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/control"
	"github.com/sysban/sysban/fleet"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/store"
)

var _ fleet.Local = (*fleetLocal)(nil)

// fleetSource is the store Source of a fleet ban: "fleet:<node>:<origin>",
// so that `sysban banned` can say who decided it and from whose log.
const fleetSource = "fleet:"

func fleetSourceOf(e fleet.Entry) string {
	return fleetSource + e.Key.Node + ":" + e.Value.Origin
}

// parseFleetSource reads a store Source; ok is false for a local ban.
func parseFleetSource(src string) (node, origin string, ok bool) {
	rest, ok := strings.CutPrefix(src, fleetSource)
	if !ok {
		return "", "", false
	}
	node, origin, _ = strings.Cut(rest, ":")
	return node, origin, true
}

// fleetLocal is this host's ban chain as the fleet node sees it: fleet bans
// go to the kernel and the store like every other ban, so that Restore and
// the nft Guard put them back like the rest.
type fleetLocal struct {
	store    *store.Store
	backend  *nft.Backend
	pl       atomic.Pointer[pipeline.Pipeline] // set once the pipeline exists
	log      *slog.Logger
	recorder *fleetRecorder
	lines    lineLimiter // of the "fleet ban" lines
	// deaf: the daemon has no listener (an enforce-only host), so its
	// pipeline never sees a failure and need not remember the fleet's
	// bans to avoid banning them twice. Remembering 100k of them was 7 MB
	// of such a host's heap. Listeners cannot be added by a reload.
	deaf bool
}

// spares is fleet.Options.Spared: the pipeline's protected networks, so
// that fleet prefixes are narrowed around the same addresses as this
// host's own prefix bans. The node runs (and applies) only once the
// pipeline exists (runDaemon), so the nil case is never consulted.
func (l *fleetLocal) spares(jail string, cand netip.Prefix) string {
	if pl := l.pl.Load(); pl != nil {
		return pl.Spares(jail, cand)
	}
	return ""
}

// ApplyFleet puts fleet bans in the kernel and leaves their store records
// to the recorder, the reverse of the Journal's order and off the path: the
// bucket, not this store, is where a fleet ban lives, so a ban lost between
// the two comes back at the next resync. The next bans of a storm reach the
// kernel without waiting for this batch's fsync, and a late joiner's 100k
// bans without waiting for the store. The store still records them (in
// chunks, to bound the transaction's memory), so that Restore and the Guard
// put them back after a reboot before NATS is even reachable.
func (l *fleetLocal) ApplyFleet(ctx context.Context, es []fleet.Entry) error {
	bans := make([]sysban.Ban, len(es))
	recs := make([]store.Record, len(es))
	for i, e := range es {
		bans[i] = e.Ban()
		recs[i] = store.Record{Ban: bans[i], Source: fleetSourceOf(e)}
	}
	var err error
	if err = l.backend.Apply(ctx, bans); err != nil {
		err = fmt.Errorf("fleet: kernel: %w", err)
	}
	l.recorder.add(recs)
	if !l.deaf {
		for _, b := range bans {
			l.pl.Load().MarkBanned(b)
		}
	}
	// One line per ban when they come one by one, up to a few a second; a
	// resync of thousands is one line (the fleet logs its own summary).
	// In a storm of thousands a second, a line per ban was a good part of
	// an enforcer's CPU and of its log: the rest are counted and told in
	// a line of their own with the next ban logged.
	if len(es) > 10 {
		l.log.Info("fleet bans", "bans", len(es))
		return err
	}
	for _, e := range es {
		if ok, held := l.lines.allow(time.Now()); ok {
			if held > 0 {
				l.log.Info("fleet bans not logged one by one", "bans", held)
			}
			l.log.Info("fleet ban", "jail", e.Key.Jail, "prefix", e.Key.Prefix, "source", fleetSourceOf(e))
		}
	}
	return err
}

// fleetBanLinesPerSecond bounds the "fleet ban" lines of one second.
const fleetBanLinesPerSecond = 20

// lineLimiter lets through up to fleetBanLinesPerSecond lines a second and
// counts the others.
type lineLimiter struct {
	mu     sync.Mutex
	second int64
	lines  int
	held   int // not let through since the last line that was
}

// allow reports whether a line may be written at now, and how many were
// held back before it (to be told first).
func (r *lineLimiter) allow(now time.Time) (ok bool, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := now.Unix(); s != r.second {
		r.second, r.lines = s, 0
	}
	if r.lines >= fleetBanLinesPerSecond {
		r.held++
		return false, 0
	}
	r.lines++
	held, r.held = r.held, 0
	return true, held
}

// fleetRecordChunk bounds one store transaction of fleet bans.
const fleetRecordChunk = 10000

// fleetRecordGap is the least time between the starts of two commits of
// the recorder, unless fleetRecordEager records wait or a reader syncs.
// Each commit is two fdatasyncs (bbolt's pages, then its meta page); on
// this project's 2-core VM each is a virtio round trip. Committing as soon
// as the last commit ended, a node took about 100 commits a second in a
// storm of 10k fleet bans a second, and the store's commits were 12% of
// the CPU the 3-node cluster bench's six processes used. The wait costs no
// ban anything: the bans are in force in the kernel before they are
// recorded, and a node that dies before the commit gets them back from
// the bucket at its next resync.
const fleetRecordGap = 100 * time.Millisecond

// fleetRecordEager records are committed without waiting out the gap: a
// resync's chunks (a late joiner's 100,000 bans) go to the store as fast
// as they come, as before.
const fleetRecordEager = 4096

// fleetRecorder records fleet bans in the store behind their kernel
// writes: one goroutine at a time commits everything added meanwhile, at
// most once per fleetRecordGap, so that during a storm one commit covers
// many batches.
type fleetRecorder struct {
	store *store.Store
	log   *slog.Logger
	gap   time.Duration
	// hurry cuts the running goroutine's wait short: enough records wait,
	// or a reader syncs.
	hurry chan struct{}

	mu         sync.Mutex
	idle       sync.Cond // broadcast when running turns false
	pending    []store.Record
	running    bool
	lastCommit time.Time // when the last commit started
}

func newFleetRecorder(st *store.Store, log *slog.Logger) *fleetRecorder {
	r := &fleetRecorder{store: st, log: log, gap: fleetRecordGap, hurry: make(chan struct{}, 1)}
	r.idle.L = &r.mu
	return r
}

// maxPendingRecords bounds the records waiting for the recorder: beyond
// it the caller commits its own, after those waiting, so that a resync's
// chunks, or a storm the store cannot keep up with, wait for the store
// rather than pile up in memory. Three of a resync's chunks (4096 bans,
// a few hundred bytes a record): with one, a late joiner's applier
// waited for the store's commits every other chunk, and with it the
// snapshot's reading (up to 0.4 s of a 100k join); with three it did not
// wait at all in the bench, for about 2.5 MiB more at the peak.
const maxPendingRecords = 3 * 4096

// add queues recs and starts the committing goroutine if none runs.
func (r *fleetRecorder) add(recs []store.Record) {
	r.mu.Lock()
	if len(r.pending)+len(recs) > maxPendingRecords {
		r.hasten()
		for r.running {
			r.idle.Wait()
		}
		r.lastCommit = time.Now()
		r.mu.Unlock()
		r.commit(recs)
		return
	}
	r.pending = append(r.pending, recs...)
	if len(r.pending) >= fleetRecordEager {
		r.hasten()
	}
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		go r.run()
	}
}

// hasten tells the running goroutine, if it waits, to commit now.
func (r *fleetRecorder) hasten() {
	select {
	case r.hurry <- struct{}{}:
	default:
	}
}

func (r *fleetRecorder) run() {
	for {
		r.mu.Lock()
		if len(r.pending) == 0 {
			r.running = false
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		}
		wait := time.Until(r.lastCommit.Add(r.gap))
		r.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.hurry:
				t.Stop()
			}
		}
		r.mu.Lock()
		recs := r.pending
		r.pending = nil
		r.lastCommit = time.Now()
		r.mu.Unlock()
		r.commit(recs)
	}
}

func (r *fleetRecorder) commit(recs []store.Record) {
	for chunk := range slices.Chunk(recs, fleetRecordChunk) {
		if err := r.store.Record(chunk); err != nil {
			// In force in the kernel; the next resync finds them missing
			// from the store and applies them again.
			r.log.Warn("fleet: recording fleet bans in the store", "err", err, "bans", len(recs))
			return
		}
	}
}

// sync waits until every record added before it is committed: what reads
// or removes the store's fleet bans (InForce, Lift) and shutdown call it.
func (r *fleetRecorder) sync() {
	r.mu.Lock()
	if r.running {
		r.hasten()
	}
	for r.running {
		r.idle.Wait()
	}
	r.mu.Unlock()
}

// InForce reads the store's bans without their lines, one at a time: a
// resync against 100,000 bans never holds them all. Records still queued
// are committed first.
func (l *fleetLocal) InForce(now time.Time, each func(fleet.Applied)) error {
	l.recorder.sync()
	return l.store.EachDue(now, func(r store.Record) {
		if r.Observed {
			return // not in force: observe mode
		}
		node, _, _ := parseFleetSource(r.Source)
		each(fleet.Applied{Jail: r.Jail, Prefix: r.Network(), Start: r.Start, Node: node})
	})
}

func (l *fleetLocal) Lift(ctx context.Context, bans []fleet.Applied) error {
	l.recorder.sync() // a record still queued must not outlive its removal
	byJail := map[string][]netip.Prefix{}
	for _, b := range bans {
		byJail[b.Jail] = append(byJail[b.Jail], sysban.CanonicalPrefix(b.Prefix))
	}
	var errs []error
	for jail, nets := range byJail {
		if _, err := l.store.Remove(jail, nets, "fleet"); err != nil {
			errs = append(errs, err)
		}
		if err := l.backend.Remove(ctx, jail, nets); err != nil {
			errs = append(errs, err)
		}
		for _, n := range nets {
			l.pl.Load().Forget(jail, n)
		}
		l.log.Info("fleet unban", "jail", jail, "bans", len(nets))
	}
	return errors.Join(errs...)
}

// fleetRun is the daemon's fleet: the embedded server and the node, all
// nil without a fleet section (every method is then a no-op).
type fleetRun struct {
	node   *fleet.Node
	server *fleet.Server
	local  *fleetLocal
	done   chan struct{}
}

// startFleet starts the embedded server (if any) and the fleet node.
func startFleet(ctx context.Context, cfg *config.Config, st *store.Store, backend *nft.Backend, never []netip.Prefix, reg prometheus.Registerer, logger *slog.Logger) (*fleetRun, error) {
	fr := &fleetRun{local: &fleetLocal{store: st, backend: backend, log: logger, recorder: newFleetRecorder(st, logger),
		deaf: len(cfg.Listen.Specs) == 0}, done: make(chan struct{})}
	fc := cfg.Fleet
	if fc == nil {
		close(fr.done)
		return fr, nil
	}
	if fc.Embedded != nil {
		var err error
		if fr.server, err = fleet.StartServer(fc); err != nil {
			return nil, err
		}
		logger.Info("fleet: embedded NATS server started", "listen", fc.Embedded.Listen, "store", fc.Embedded.StoreDir)
	}
	node, err := fleet.New(ctx, fleet.Options{
		Config:       fc,
		Local:        fr.local,
		Never:        fleetNever(cfg, never),
		EnabledJails: jailNames(cfg),
		Spared:       fr.local.spares,
		OutboxPath:   filepath.Join(cfg.State.Dir, fleet.OutboxFile),
		Server:       fr.server,
		Registerer:   reg,
		Logger:       logger,
	})
	if err != nil {
		if fr.server != nil {
			fr.server.Close()
		}
		return nil, err
	}
	fr.node = node
	return fr, nil
}

// fleetNever is what no fleet ban may cover here beside the fleet's own
// ignoreip: this host's addresses and the defaults' ignoreip.
func fleetNever(cfg *config.Config, own []netip.Prefix) []netip.Prefix {
	return append(slices.Clip(own), cfg.Defaults.IgnoreIP...)
}

// publisher is the chain link after the announcer: next, or next with the
// fleet publishing beside it on a deciding node.
func (fr *fleetRun) publisher(next sysban.Applier) sysban.Applier {
	if fr.node == nil || !fr.node.Decides() {
		return next
	}
	return fr.node.Publisher(next)
}

// decided is the pipeline's hook for a ban the moment it is decided: a
// deciding node publishes it from there; nil otherwise.
func (fr *fleetRun) decided() func(sysban.Ban) {
	if fr.node == nil || !fr.node.Decides() {
		return nil
	}
	return fr.node.Decided
}

// start runs the node until ctx is done; wait waits for that.
func (fr *fleetRun) start(ctx context.Context) {
	if fr.node == nil {
		return
	}
	go func() { defer close(fr.done); _ = fr.node.Run(ctx) }()
}

// fleetJoinGuardWait bounds how long the nft Guard waits for the first
// fleet resync: a node that cannot reach NATS must not leave its kernel
// unguarded.
const fleetJoinGuardWait = 10 * time.Second

// joined waits until an enforcing node's first resync has ended, at most
// limit; at once without a fleet or on a node that does not enforce.
func (fr *fleetRun) joined(ctx context.Context, limit time.Duration) {
	if fr.node == nil || !fr.node.Enforces() {
		return
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-fr.node.Joined():
	case <-t.C:
	case <-ctx.Done():
	}
}

// wait waits for the node to stop and for the store records of the
// fleet bans it applied.
func (fr *fleetRun) wait() {
	<-fr.done
	fr.local.recorder.sync()
}

func (fr *fleetRun) close() {
	if fr.node != nil {
		fr.node.Close()
	}
	if fr.server != nil {
		fr.server.Close()
	}
}

func cmdFleet(args []string, stdout, stderr io.Writer) int {
	return defaultCtl().fleet(args, stdout, stderr)
}

// fleet is `sysban fleet status` (the daemon's fleet node, from Status)
// and `sysban fleet keygen SEEDFILE` (a node's nkey).
func (c ctl) fleet(args []string, stdout, stderr io.Writer) int {
	f := newCtlFlags("fleet", "fleet status [--socket PATH] [--json] | fleet keygen SEEDFILE", stderr)
	pos, ok := f.parse(args)
	if !ok {
		return 2
	}
	if len(pos) == 2 && pos[0] == "keygen" {
		return fleetKeygen(pos[1], stdout, stderr)
	}
	if len(pos) != 1 || pos[0] != "status" {
		return f.usageErr(stderr, "want: fleet status, or fleet keygen SEEDFILE")
	}
	return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if st.Fleet == nil {
			return errors.New("this sysban has no fleet section")
		}
		if f.json {
			return printJSON(stdout, st.Fleet)
		}
		c.printFleet(stdout, *st.Fleet)
		return nil
	})
}

// fleetKeygen writes a new nkey seed to path (mode 0600, never over an
// existing file) and prints its public key and where each goes.
func fleetKeygen(path string, stdout, stderr io.Writer) int {
	pub, err := fleet.WriteSeed(path)
	if err != nil {
		fmt.Fprintf(stderr, "sysban fleet keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", pub)
	fmt.Fprintf(stderr, "seed written to %s (mode 0600). On this node: fleet.nkeyseed: %s\n"+
		"On the embedded server: embedded.nodes: [NAME=%s]; on enforcers (signatures): fleet.trustkeys: [NAME=%s]\n", path, path, pub, pub)
	return 0
}

func (c ctl) printFleet(w io.Writer, s fleet.Status) {
	var roles []string
	if s.Decide {
		roles = append(roles, "decide")
	}
	if s.Enforce {
		roles = append(roles, "enforce")
	}
	servers := strings.Join(s.Servers, ",")
	if s.Embedded != "" {
		servers = strings.TrimPrefix(servers+",embedded "+s.Embedded, ",")
	}
	conn := "no"
	if s.Connected {
		conn = "yes (" + s.ConnectedTo + ")"
	}
	resync := "never"
	if !s.LastResync.IsZero() {
		resync = c.when(s.LastResync)
	}
	fmt.Fprintf(w, "node       %s (%s)\nservers    %s\nconnected  %s\nresync     %s\nlag        %.1f ms\n",
		s.Name, strings.Join(roles, ", "), servers, conn, resync, s.LagSeconds*1000)
	if s.StreamLeader != "" || s.WatchServer != "" {
		fmt.Fprintf(w, "leader     %s (stores every ban)\nwatch      %s (delivers bans here)\n", cmp.Or(s.StreamLeader, "-"), cmp.Or(s.WatchServer, "-"))
	}
	fmt.Fprintf(w, "outbox     %d\nheld       %d\npublished  %d\napplied    %d\nrefused    %s\nnarrowed   %d\nunbans     %d\n",
		s.Outbox, s.Held, s.Published, s.Applied, droppedText(s.Refused), s.Narrowed, s.Unbans)
	tw := newTable(w)
	fmt.Fprintln(tw, "\nNODE\tFLEET\tORIGIN")
	for _, node := range slices.Sorted(maps.Keys(s.Bans)) {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", node, s.Bans[node][fleet.ScopeFleet], s.Bans[node][fleet.ScopeOrigin])
	}
	tw.Flush()
}

// checkFleet is `sysban check`'s line for the fleet section, if any.
func checkFleet(w io.Writer, f *fleet.Config) {
	if f == nil {
		return
	}
	embedded := "-"
	if f.Embedded != nil {
		embedded = f.Embedded.Listen
	}
	fmt.Fprintf(w, "fleet   name=%s decide=%v enforce=%v servers=%v embedded=%s scope=%v nkey=%v tls=%v trustkeys=%d\n",
		f.Name, f.Decide, f.Enforce, f.Servers, embedded, f.Scope, f.NKeySeed != "", f.TLS != nil || (f.Embedded != nil && f.Embedded.TLS != nil), len(f.TrustKeys))
}
