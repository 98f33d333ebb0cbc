package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// BanSource gives the bans that must be in the kernel at now: every ban
// stored and not yet over. The daemon passes its ban store.
type BanSource interface {
	// EachDue calls fn with every ban in force at now, one at a time: the
	// Guard keeps about 40 bytes of each single-address ban it compares,
	// not a list of sysban.Ban values with their strings (with 100,000
	// bans that list was most of a check's memory).
	EachDue(ctx context.Context, now time.Time, fn func(sysban.Ban)) error
}

// VersionedBanSource is a BanSource that tells when its bans change: a
// number that moves after every change (store.Store.Generation). With it,
// a check that finds the ban source and the kernel's ruleset generation
// where the last complete, clean check left them reads neither: nothing
// can be missing. Without it, every element check reads the source.
type VersionedBanSource interface {
	BanSource
	// Generation moves after every change of what EachDue gives (bans
	// expiring with time aside). It must move after the change is
	// visible to EachDue, never before.
	Generation() uint64
}

// DefaultGuardInterval is how often Guard compares the kernel with what it
// should hold when nothing prompts it sooner.
const DefaultGuardInterval = 2 * time.Second

// GuardOptions configure Guard. The zero value is usable.
type GuardOptions struct {
	// Interval between two reconciles; default DefaultGuardInterval. It
	// bounds how long damage can go unnoticed when a change notification
	// is lost.
	Interval time.Duration
	// OnHeal, if set, is called after each repair with its reason and the
	// number of bans put back into the kernel. It runs on Guard's
	// goroutine; a slow OnHeal delays the next check.
	OnHeal func(reason string, restored int)
	// NoMonitor turns the change notifications off, leaving the periodic
	// reconcile alone to notice damage (within Interval). For tests, and
	// for sandboxes that refuse to join the nftables multicast group.
	NoMonitor bool
	// NFLOG is what the daemon passes to SetupNFLOG (nil: no log rules):
	// Guard checks the log rules like the jail rules and a repair puts
	// them back. It must be the same n every SetupNFLOG call gets.
	NFLOG *NFLOG

	// checked, if set, is called after every completed check (tests count
	// them to know that a check ran and found nothing).
	checked func(trigger string)
	// healing, if set, is called just before OnHeal with the start of the
	// check that found the damage: tests measure detection from it, which
	// the repair's own duration on a loaded machine does not blur.
	healing func(checkStart time.Time)
	// elemDefer replaces maxElemDefer when set (tests).
	elemDefer time.Duration
}

// Timings of Guard.
const (
	// confirmDelay separates the two readings that must both miss a ban
	// before Guard puts it back: between its store write and its Apply, a
	// fresh ban is due but not yet in the kernel, and an unban may leave
	// the kernel before the store.
	confirmDelay = 250 * time.Millisecond
	// expiryMargin: a ban ending this soon is not looked for in the kernel,
	// whose clock may already have removed it.
	expiryMargin = time.Second
	// minCheckGap limits how often notifications start a check.
	minCheckGap = 100 * time.Millisecond
	// readTimeout bounds one check's netlink reads.
	readTimeout = 30 * time.Second
	// Backoff after a failed check or repair, doubling up to maxBackoff.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// Repairs closer together than healStreakGap form a streak; from the
	// third on, the next check waits longer and longer (Interval, twice
	// that, ... up to maxHealPause), so sysban never fights another
	// firewall manager in a tight loop: at most one repair per
	// maxHealPause. The cap is what bounds a repair's delay: damage
	// during a pause is repaired when it ends, so any damage is repaired
	// within maxHealPause plus one check (well under 15 s), and damage at
	// most every healStreakGap comes after the pause the previous repair
	// began has ended, so it is repaired at once (within 2 s, in fact
	// about 0.1 s). A longer cap (it was a minute) left a table flushed
	// by a firewall manager every few seconds open for most of the time.
	healStreakGap = 10 * time.Second
	maxHealPause  = 8 * time.Second
	// elementBudget caps the share of time periodic element checks take:
	// after one that took d, the reconcile compares elements again only
	// after elementBudget*d (and at every tick while that is shorter).
	// Reading 100,000 elements costs the kernel about 0.9 s, so with that
	// many bans the reconcile compares elements about every 18 s; layout
	// checks (about a millisecond) stay at every tick, and a change
	// notification or a lost one (ENOBUFS) still compares at once.
	elementBudget = 20
	// While this Backend's Applies come closer together than applyQuiet
	// (a storm of bans), the reconcile defers its element comparisons,
	// for at most maxElemDefer since the last one. A comparison in a
	// storm reads a set that grows under it, and its dump competed for
	// the CPU with the storm itself: on the 3-node cluster bench the
	// enforcer's dumps were 6% of all CPU during a storm of 10k bans/s.
	// The kernel acknowledged every element of those Applies; a change by
	// anyone else still starts a check at once (the monitor), and lost
	// notifications wait at most maxElemDefer, as a large set's pacing
	// above makes them wait anyway.
	applyQuiet   = 500 * time.Millisecond
	maxElemDefer = 30 * time.Second
	// releaseAfter: an element check that compared at least this many
	// bans returns its memory to the kernel at once.
	releaseAfter = 10000
	// monitorBuffer is the receive buffer of the notification socket.
	// Overflowing it loses notifications (ENOBUFS), which only costs a
	// reconcile, so it need not hold a large Apply's worth.
	monitorBuffer = 4 << 20
)

// errStale says a Setup ran while Guard was checking: what Guard expected
// is out of date, so it checks again rather than repair.
var errStale = errors.New("nft: guard: ruleset reloaded during the check")

// Guard keeps the table as the last Setup made it, with every ban src says
// is due, until ctx is done. It notices damage two ways: nf_tables change
// notifications from other processes (someone ran "nft flush ruleset",
// deleted the table, a rule or a set, flushed a set, or a firewall manager
// loaded a ruleset that wipes it) start a check at once, and a reconcile
// every opts.Interval catches what a lost notification would hide. A check
// compares the kernel with the expected layout (table, chain, each jail's
// rules, both sets of each jail) and with the due bans; a repair runs Setup
// again with the current rules (one atomic batch, keeping surviving sets)
// and then adds the due bans the kernel lacks, with their remaining time.
//
// Guard does not hold the Backend's lock while it reads the kernel or src,
// and never repairs with rules older than the last Setup: a Setup during a
// check makes it check again. It returns nil when ctx is done, and an
// error only when it cannot start or the Backend was closed.
func (b *Backend) Guard(ctx context.Context, src BanSource, opts GuardOptions) error {
	if src == nil {
		return errors.New("nft: guard: no ban source")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultGuardInterval
	}
	g := &guard{b: b, src: src, opts: opts, log: b.log.With("component", "nft-guard")}
	if err := g.openReader(); err != nil {
		return fmt.Errorf("nft: guard: %w", err)
	}
	defer g.closeReader()
	return g.run(ctx)
}

// guard is the state of one Guard call.
type guard struct {
	b    *Backend
	src  BanSource
	opts GuardOptions
	log  *slog.Logger

	// A connection of its own for reading the kernel, so reads never wait
	// for, or hold, the Backend's lock.
	rc *nftables.Conn
	nl *netlink.Conn
	// dumpBuf receives the datagrams of element dumps (guardelems.go).
	dumpBuf []byte

	mon       *monitor
	monWarned bool // the monitor's failure to start was logged

	// now is the clock of the repair pacing (healed and the run loop's
	// waits); nil is time.Now. Tests inject their own.
	now func() time.Time

	fails     int            // consecutive failed checks
	streak    int            // repairs in a row, each within healStreakGap of the last
	lastHeal  time.Time      // when the last repair finished
	notBefore time.Time      // no check before this (backoff)
	nextElems time.Time      // no periodic element comparison before this
	lastElems time.Time      // when the last element comparison started
	keyHints  map[string]int // per set: the keys the last element check read
	keysRead  int            // keys the last element check read, in all sets

	// clean is where the last complete check that found nothing to
	// repair left the generations (its valid is false otherwise).
	clean generations
	// skipped counts checks that read nothing, for the debug log.
	skipped int
}

// generations are the three numbers that move when what a check compares
// can have changed: the kernel's ruleset generation (NFT_MSG_GETGEN; the
// kernel moves it at every committed nf_tables transaction in the
// network namespace, by anyone: an element deleted, a set flushed, a
// table dropped, our own Applies too), the ban source's generation, and
// the Backend's Setup generation.
type generations struct {
	valid  bool
	kernel uint32
	source uint64
	setup  uint64
}

func (g *guard) run(ctx context.Context) error {
	kick, overrun := make(chan struct{}, 1), make(chan struct{}, 1)
	if !g.opts.NoMonitor {
		g.startMonitor(kick, overrun)
	}
	defer g.stopMonitor()

	ticker := time.NewTicker(g.opts.Interval)
	defer ticker.Stop()
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()

	pending, trigger := true, "start"
	var lastCheck time.Time
	for {
		if pending {
			now := g.clock()
			due := g.notBefore
			if trigger == "monitor" {
				due = later(due, lastCheck.Add(minCheckGap))
			}
			if now.Before(due) {
				wake.Reset(due.Sub(now))
			} else {
				pending = false
				err := g.check(ctx, trigger)
				lastCheck = g.clock()
				switch {
				case ctx.Err() != nil:
					return nil
				case errors.Is(err, errClosed):
					return err
				case errors.Is(err, errStale):
					pending, trigger = true, "reload"
				case err != nil:
					// Retry after a pause; a check that failed because the
					// damage happened under it must not wait for the tick.
					pending, trigger = true, "retry"
					g.fails++
					wait := backoff(g.fails)
					g.notBefore = g.clock().Add(wait)
					g.log.Error("nft: guard: check or repair failed; retrying", "err", err,
						"attempt", g.fails, "retry_in", wait)
				default:
					g.fails = 0
				}
				if g.opts.checked != nil && err == nil {
					g.opts.checked(trigger)
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if g.mon == nil && !g.opts.NoMonitor {
				g.startMonitor(kick, overrun)
			}
			if !pending {
				pending, trigger = true, "reconcile"
			}
		case <-kick:
			pending, trigger = true, "monitor"
		case <-overrun:
			// Checks the layout now; elements as the reconcile would, as
			// overruns mostly follow our own large Applies.
			if !pending {
				pending, trigger = true, "overrun"
			}
		case <-g.monitorDone():
			// The monitor stopped on an error; notifications may have been
			// lost, so check now and restart it at the next tick.
			g.log.Warn("nft: guard: change monitor stopped; relying on the reconcile until it restarts", "err", g.mon.err)
			g.mon = nil
			pending, trigger = true, "monitor"
		case <-wake.C:
		}
	}
}

// streaming reports whether the Backend's last Apply ended less than
// applyQuiet before now.
func (g *guard) streaming(now time.Time) bool {
	last := g.b.lastApply.Load()
	return last != 0 && now.Sub(time.Unix(0, last)) < applyQuiet
}

func (g *guard) maxDefer() time.Duration {
	if g.opts.elemDefer > 0 {
		return g.opts.elemDefer
	}
	return maxElemDefer
}

func (g *guard) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// backoff is the pause after the n-th consecutive failure.
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

var errClosed = errors.New("nft: guard: backend closed")

// expectation is what the kernel should hold after the last Setup.
type expectation struct {
	gen   uint64
	rules []sysban.JailRule
	jails map[string]*jailSets
}

// expected snapshots the Backend's state; ok is false before the first
// Setup and after Teardown, when there is nothing to guard.
func (b *Backend) expected() (exp expectation, ok bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return expectation{}, false, errClosed
	}
	if b.rules == nil {
		return expectation{}, false, nil
	}
	return expectation{gen: b.gen, rules: b.rules, jails: maps.Clone(b.jails)}, true, nil
}

// check runs one check and, if the kernel differs, one repair.
func (g *guard) check(ctx context.Context, trigger string) error {
	start := time.Now()
	exp, ok, err := g.b.expected()
	if err != nil || !ok {
		return err
	}
	// Read before the kernel and the source are: a change during the
	// check moves them past what is noted here.
	gens := g.generations(ctx, exp)
	if gens.valid && gens == g.clean {
		// No transaction touched the ruleset and no ban changed since a
		// check found everything in place. The kernel can only have let
		// elements time out, and those bans are no longer due either.
		if g.skipped++; g.skipped%1000 == 0 {
			g.log.Debug("nft: guard: checks with nothing changed since the last complete one", "checks", g.skipped)
		}
		return nil
	}
	g.clean = generations{}
	reasons, err := g.inspect(ctx, exp)
	if err != nil {
		return err
	}
	if len(reasons) > 0 {
		return g.repair(ctx, exp, trigger, strings.Join(reasons, "; "), start)
	}

	// The layout is intact; look for bans the kernel lost. The periodic
	// reconcile paces this (see elementBudget); anything else that starts
	// a check has a reason to look now.
	if trigger == "reconcile" || trigger == "overrun" {
		if start.Before(g.nextElems) || (g.streaming(start) && start.Sub(g.lastElems) < g.maxDefer()) {
			return nil
		}
	}
	g.lastElems = start
	missing, err := g.missing(ctx, exp)
	if err == nil && len(missing) == 0 {
		g.clean = gens
	}
	g.nextElems = time.Now().Add(elementBudget * time.Since(start))
	g.log.Debug("nft: guard: elements compared", "trigger", trigger, "elements", g.keysRead,
		"missing", len(missing), "took", time.Since(start), "next_periodic", g.nextElems.Format(time.RFC3339Nano))
	if g.keysRead >= releaseAfter {
		// The check's lists and netlink replies are garbage now, and the
		// runtime would hand their pages back to the kernel only slowly:
		// an enforce-only host with 100,000 bans sat on 130-200 MiB
		// between checks. A forced GC of the remaining heap costs a few
		// milliseconds every ~20 s.
		defer debug.FreeOSMemory()
	}
	if err != nil || len(missing) == 0 {
		return err
	}
	t := time.NewTimer(confirmDelay)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
	}
	exp2, ok, err := g.b.expected()
	if err != nil || !ok {
		return err
	}
	if exp2.gen != exp.gen {
		return errStale
	}
	again, err := g.missing(ctx, exp2)
	if err != nil {
		return err
	}
	var bans []sysban.Ban
	for k, ban := range again {
		if _, ok := missing[k]; ok {
			bans = append(bans, ban)
		}
	}
	if len(bans) == 0 {
		return nil
	}
	n, err := g.b.applyIfCurrent(ctx, exp.gen, bans)
	if err != nil {
		return err
	}
	g.healed(trigger, fmt.Sprintf("%d due bans missing from the kernel sets", len(bans)), n, start)
	return nil
}

// generations reads the generations a check starts from; valid is false
// when the source has none or the kernel did not say (then every check
// reads everything).
func (g *guard) generations(ctx context.Context, exp expectation) generations {
	vs, ok := g.src.(VersionedBanSource)
	if !ok {
		return generations{}
	}
	source := vs.Generation()
	kernel, err := g.kernelGeneration(ctx)
	if err != nil {
		g.log.Debug("nft: guard: ruleset generation unreadable; checking in full", "err", err)
		return generations{}
	}
	return generations{valid: true, kernel: kernel, source: source, setup: exp.gen}
}

// kernelGeneration asks the kernel for its nf_tables ruleset generation.
func (g *guard) kernelGeneration(ctx context.Context) (gen uint32, err error) {
	found := false
	err = g.read(ctx, func(*nftables.Conn) error {
		msgs, err := g.nl.Execute(netlink.Message{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
				Flags: netlink.Request,
			},
			Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
		})
		if err != nil {
			return fmt.Errorf("ruleset generation: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN) || len(m.Data) < 4 {
				continue
			}
			if err := eachAttr(m.Data[4:], func(typ uint16, b []byte) error {
				if typ == unix.NFTA_GEN_ID && len(b) == 4 {
					gen, found = binary.BigEndian.Uint32(b), true
				}
				return nil
			}); err != nil {
				return fmt.Errorf("ruleset generation: %w", err)
			}
		}
		return nil
	})
	if err == nil && !found {
		err = errors.New("ruleset generation: no NFTA_GEN_ID in the answer")
	}
	return gen, err
}

// repair rebuilds the layout and puts the due bans back.
func (g *guard) repair(ctx context.Context, exp expectation, trigger, reason string, start time.Time) error {
	if err := g.b.resetup(ctx, exp.gen, g.opts.NFLOG); err != nil {
		return err
	}
	tSetup := time.Now()
	exp2, ok, err := g.b.expected()
	if err != nil || !ok {
		return err
	}
	missing, err := g.missing(ctx, exp2)
	if err != nil {
		return fmt.Errorf("%s; ruleset rebuilt, but the bans could not be checked: %w", reason, err)
	}
	bans := make([]sysban.Ban, 0, len(missing))
	for _, ban := range missing {
		bans = append(bans, ban)
	}
	tMissing := time.Now()
	n, err := g.b.applyIfCurrent(ctx, exp2.gen, bans)
	if err != nil {
		return fmt.Errorf("%s; ruleset rebuilt, but the bans could not be restored: %w", reason, err)
	}
	g.log.Debug("nft: guard: repair steps", "setup", tSetup.Sub(start), "read", tMissing.Sub(tSetup), "apply", time.Since(tMissing))
	g.healed(trigger, reason, n, start)
	return nil
}

// healed logs a repair, reports it and paces the next check when repairs
// come in a streak.
func (g *guard) healed(trigger, reason string, restored int, start time.Time) {
	now := g.clock()
	if !g.lastHeal.IsZero() && now.Sub(g.lastHeal) < healStreakGap {
		g.streak++
	} else {
		g.streak = 1
	}
	g.lastHeal = now
	g.log.Warn("nft: table damaged outside sysban; repaired",
		"table", g.b.table.Name, "reason", reason, "restored_bans", restored,
		"detected_by", trigger, "took", now.Sub(start))
	if g.streak >= 3 {
		pause := min(g.opts.Interval<<(g.streak-3), maxHealPause)
		g.notBefore = now.Add(pause)
		g.log.Warn("nft: guard: table keeps being damaged; is a firewall manager or script reloading the ruleset? pausing checks",
			"repairs_in_a_row", g.streak, "pause", pause)
	}
	if g.opts.healing != nil {
		g.opts.healing(start)
	}
	if g.opts.OnHeal != nil {
		g.opts.OnHeal(reason, restored)
	}
}

// resetup runs Setup again with the current rules, unless a Setup ran
// since gen (then the damage seen may have been that Setup's doing).
func (b *Backend) resetup(ctx context.Context, gen uint64, n *NFLOG) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return errClosed
	case b.gen != gen:
		return errStale
	}
	if _, err := b.setupLocked(ctx, b.rules, n); err != nil {
		return err
	}
	return nil
}

// applyIfCurrent applies bans unless a Setup ran since gen, and returns
// how many elements it added.
func (b *Backend) applyIfCurrent(ctx context.Context, gen uint64, bans []sysban.Ban) (int, error) {
	if len(bans) == 0 {
		return 0, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, errClosed
	case b.gen != gen:
		return 0, errStale
	}
	return b.applyLocked(ctx, bans)
}

// inspect compares the table's layout with exp and returns what differs.
func (g *guard) inspect(ctx context.Context, exp expectation) ([]string, error) {
	var reasons []string
	err := g.read(ctx, func(c *nftables.Conn) error {
		tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
		if err != nil {
			return fmt.Errorf("list tables: %w", err)
		}
		if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == g.b.table.Name }) {
			reasons = append(reasons, "table inet "+g.b.table.Name+" missing")
			return nil
		}
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return fmt.Errorf("list chains: %w", err)
		}
		var chain *nftables.Chain
		for _, ch := range chains {
			if ch.Table != nil && ch.Table.Name == g.b.table.Name && ch.Name == ChainName {
				chain = ch
			}
		}
		if chain == nil {
			reasons = append(reasons, "chain "+ChainName+" missing")
		} else {
			if why := chainDiffers(chain, *g.b.opts.Priority); why != "" {
				reasons = append(reasons, why)
			}
			rules, err := c.GetRules(g.b.table, chain)
			if err != nil {
				return fmt.Errorf("list rules: %w", err)
			}
			logReasons, rest := nflogDiffer(g.opts.NFLOG, exp.rules, ruleComments(rules))
			reasons = append(reasons, rulesDiffer(exp.rules, gateComments(exp.rules, g.opts.NFLOG), rest)...)
			reasons = append(reasons, logReasons...)
		}
		sets, err := c.GetSets(g.b.table)
		if err != nil {
			return fmt.Errorf("list sets: %w", err)
		}
		reasons = append(reasons, setsDiffer(exp.rules, sets)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nft: guard: inspect table %s: %w", g.b.table.Name, err)
	}
	return reasons, nil
}

// chainDiffers says how the base chain differs from what Setup creates, or
// "" when it does not.
func chainDiffers(ch *nftables.Chain, prio int) string {
	switch {
	case ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookInput:
		return "chain " + ChainName + " is not on the input hook"
	case ch.Priority == nil || int(*ch.Priority) != prio:
		return "chain " + ChainName + " has another priority"
	case ch.Type != nftables.ChainTypeFilter:
		return "chain " + ChainName + " has another type"
	case ch.Policy == nil || *ch.Policy != nftables.ChainPolicyAccept:
		return "chain " + ChainName + " policy is not accept"
	}
	return ""
}

// ruleComments returns each rule's comment ("" for none).
func ruleComments(rules []*nftables.Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i], _ = userdata.GetString(r.UserData, userdata.TypeComment)
	}
	return out
}

// rulesDiffer compares the rules of the chain, by comment, with those
// Setup creates for rules: each gate in gates (gate.go) once, how many
// each jail has, and any rule that is not ours (an accept before our
// drops would open the door, which is why a gate Setup did not write,
// say one left over by a jail with all ports added since, is foreign).
func rulesDiffer(rules []sysban.JailRule, gates []string, comments []string) []string {
	have := map[string]int{}
	for _, c := range comments {
		have[c]++
	}
	var reasons []string
	for _, c := range gates {
		if have[c] != 1 {
			reasons = append(reasons, fmt.Sprintf("%d of 1 rule %q", have[c], c))
		}
		delete(have, c)
	}
	for _, r := range rules {
		c := ruleComment(r.Name)
		want := setsPerJail * len(ruleParts(r))
		if have[c] != want {
			reasons = append(reasons, fmt.Sprintf("jail %s has %d of its %d rules", r.Name, have[c], want))
		}
		delete(have, c)
	}
	foreign := 0
	for _, n := range have {
		foreign += n
	}
	if foreign > 0 {
		reasons = append(reasons, fmt.Sprintf("%d foreign rules in chain %s", foreign, ChainName))
	}
	return reasons
}

func ruleComment(jail string) string { return "sysban jail " + jail }

// setsDiffer checks that both sets of every jail exist with the right
// shape.
func setsDiffer(rules []sysban.JailRule, sets []*nftables.Set) []string {
	byName := make(map[string]*nftables.Set, len(sets))
	for _, s := range sets {
		if !s.Anonymous {
			byName[s.Name] = s
		}
	}
	var reasons []string
	for _, r := range rules {
		for _, w := range jailSetShapes(r.Name) {
			s, ok := byName[w.name]
			switch {
			case !ok:
				reasons = append(reasons, "set "+w.name+" missing")
			case !compatible(s, w):
				reasons = append(reasons, "set "+w.name+" changed shape")
			}
		}
	}
	return reasons
}

// openReader opens the guard's read connection.
func (g *guard) openReader() error {
	conn, nl, err := openConn(g.b.opts.NetNS)
	if err != nil {
		return err
	}
	setBuf(nl, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, socketBuffer)
	if err := widenDumps(nl); err != nil {
		g.log.Debug("nft: guard: netlink dump size not raised", "err", err)
	}
	g.rc, g.nl = conn, nl
	return nil
}

func (g *guard) closeReader() {
	if g.rc != nil {
		_ = g.rc.CloseLasting()
	}
	g.rc, g.nl = nil, nil
}

// resetReader replaces the read connection after an error, which may have
// left answers unread on it.
func (g *guard) resetReader() {
	g.closeReader()
	if err := g.openReader(); err != nil {
		g.log.Error("nft: guard: reopen netlink", "err", err)
	}
}

// read runs fn on the read connection, bounded by ctx and readTimeout.
func (g *guard) read(ctx context.Context, fn func(c *nftables.Conn) error) error {
	if g.rc == nil {
		if err := g.openReader(); err != nil {
			return err
		}
	}
	nl := g.nl
	_ = nl.SetDeadline(time.Now().Add(readTimeout))
	stop := context.AfterFunc(ctx, func() { _ = nl.SetDeadline(time.Unix(1, 0)) })
	err := fn(g.rc)
	if !stop() || err != nil {
		g.resetReader()
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	}
	_ = nl.SetDeadline(time.Time{})
	return nil
}
