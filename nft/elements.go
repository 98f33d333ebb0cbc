package nft

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/google/nftables"
	sysban "github.com/sysban/sysban"
)

// Element is one banned address as the kernel holds it.
type Element struct {
	Addr      netip.Addr
	Permanent bool
	Expires   time.Duration // remaining lifetime; 0 when Permanent
}

// Per-element size of the set-element list attribute, as google/nftables
// v0.3.0 encodes a set element (set.go makeElemList), in bytes:
//
//	NFTA_LIST_ELEM header                              4
//	NFTA_SET_ELEM_KEY header + NFTA_DATA_VALUE header  4 + 4
//	key: IPv4 4, IPv6 16                               16 (worst case)
//	NFTA_SET_ELEM_TIMEOUT header + u64 milliseconds    4 + 8
//	                                                   --
//	                                                   40 (IPv4 with timeout: 28)
//
// All of it goes into one NFTA_SET_ELEM_LIST_ELEMENTS attribute, whose
// length field is a uint16 the library fills without a check: past 65535
// bytes it wraps and the kernel parses only the first few elements. So one
// message may carry at most (65535-4)/40 = 1638 elements (IPv4 alone: 2340,
// the "about 2,300" seen in practice). The default of 1000 stays well below
// for both families; TestChunkBound verifies the arithmetic against the
// library's real encoding.
const (
	maxElemBytes    = 4 + 4 + 4 + 16 + 4 + 8
	maxChunkSize    = (0xffff - 4) / maxElemBytes
	elemMsgOverhead = 16 + 4 + 3*(4+4) + maxNameLen + 2*4 // nlmsghdr, nfgenmsg, name/table/id attrs
)

// maxTimeout caps element timeouts. The kernel refuses (ERANGE) timeouts of
// about 213,000 days and more; a ban of a century is, in practice, forever.
const maxTimeout = 100 * 365 * 24 * time.Hour

// batcher queues set-element messages on a Conn and flushes when the batch
// would outgrow the socket buffers (see socketBuffer). Every committed
// batch is reported to Options.ObserveWrite under op.
type batcher struct {
	b       *Backend
	c       *nftables.Conn
	op      string
	msgs    int
	bytes   int
	elems   int // set elements queued since the last flush
	flushes int
}

func newBatcher(b *Backend, c *nftables.Conn, op string) *batcher {
	return &batcher{b: b, c: c, op: op}
}

// note accounts for messages queued outside addElements.
func (bt *batcher) note(msgs, bytes int) {
	bt.msgs += msgs
	bt.bytes += bytes
}

func (bt *batcher) flush() error {
	if bt.msgs == 0 {
		return nil
	}
	elems := bt.elems
	bt.msgs, bt.bytes, bt.elems = 0, 0, 0
	bt.flushes++
	start := time.Now()
	if err := bt.c.Flush(); err != nil {
		return err
	}
	if obs := bt.b.opts.ObserveWrite; obs != nil {
		obs(bt.op, time.Since(start), elems)
	}
	return nil
}

// addElements queues elems for s in chunks.
func (bt *batcher) addElements(s *nftables.Set, elems []nftables.SetElement) error {
	return bt.chunked(s, elems, bt.c.SetAddElements)
}

// deleteElements queues the deletion of elems from s in chunks.
func (bt *batcher) deleteElements(s *nftables.Set, elems []nftables.SetElement) error {
	return bt.chunked(s, elems, bt.c.SetDeleteElements)
}

func (bt *batcher) chunked(s *nftables.Set, elems []nftables.SetElement, queue func(*nftables.Set, []nftables.SetElement) error) error {
	for len(elems) > 0 {
		n := min(len(elems), bt.b.opts.ChunkSize)
		if s.Interval && n < len(elems) && elems[n].IntervalEnd {
			n-- // keep an interval's start and end in one message
		}
		size := elemMsgOverhead + n*maxElemBytes
		if bt.msgs > 0 && (bt.bytes+size > bt.b.maxBatchBytes || bt.msgs >= bt.b.maxBatchMsgs) {
			if err := bt.flush(); err != nil {
				return err
			}
		}
		if err := queue(s, elems[:n]); err != nil {
			return fmt.Errorf("queue elements of %s: %w", s.Name, err)
		}
		bt.note(1, size)
		bt.elems += n
		elems = elems[n:]
	}
	return nil
}

// pendingSet collects the elements of one set for one call, one per address.
// It is built for 100k addresses in one call: the index is keyed by the
// 16-byte form (no pointer for the collector to scan, unlike netip.Addr)
// and the keys are cut from shared blocks, not allocated one by one.
type pendingSet struct {
	idx   map[[16]byte]int
	elems []nftables.SetElement
	keys  []byte // the current block of keys
}

// keyBlock is the size of a block of element keys: 4096 IPv4 or 1024 IPv6
// keys.
const keyBlock = 16 << 10

// put adds an element; for an address already present the longer ban
// (no timeout = permanent is longest) wins.
func (p *pendingSet) put(a netip.Addr, timeout time.Duration) {
	if p.idx == nil {
		p.idx = map[[16]byte]int{}
	}
	k := a.As16()
	if i, ok := p.idx[k]; ok {
		old := p.elems[i].Timeout
		if old != 0 && (timeout == 0 || timeout > old) {
			p.elems[i].Timeout = timeout
		}
		return
	}
	p.idx[k] = len(p.elems)
	p.elems = append(p.elems, nftables.SetElement{Key: p.key(a), Timeout: timeout})
}

// key returns a's set key (4 bytes for IPv4, 16 for IPv6) in the block.
func (p *pendingSet) key(a netip.Addr) []byte {
	if cap(p.keys)-len(p.keys) < 16 {
		p.keys = make([]byte, 0, keyBlock)
	}
	start := len(p.keys)
	if a.Is4() {
		b := a.As4()
		p.keys = append(p.keys, b[:]...)
	} else {
		b := a.As16()
		p.keys = append(p.keys, b[:]...)
	}
	return p.keys[start:len(p.keys):len(p.keys)]
}

// elementTimeout is the kernel timeout of ban at now: 0 for permanent, the
// remaining time rounded up to whole milliseconds (the kernel's unit; a
// rounded-down 0 would mean "permanent") and capped at maxTimeout. ok is
// false when the ban is already over.
func elementTimeout(ban sysban.Ban, now time.Time) (timeout time.Duration, ok bool) {
	if ban.Permanent() {
		return 0, true
	}
	rem := ban.Start.Add(ban.Duration).Sub(now)
	if rem <= 0 {
		return 0, false
	}
	rem = (rem + time.Millisecond - 1).Truncate(time.Millisecond)
	return min(rem, maxTimeout), true
}

// The Backend is the last link of the ban chain (see sysban.Applier).
var _ sysban.Applier = (*Backend)(nil)

// Apply adds every ban to its jail's set, with the ban's remaining time as
// timeout (none for permanent bans); bans already over are skipped. An
// IPv4-mapped IPv6 address is banned as IPv4. Bans are sent in one batch
// unless they outgrow the socket buffers. Adding an address that is already
// in the set replaces its timeout on kernels that support element updates
// (the newest ban wins); older kernels keep the existing element as is.
//
// Observed bans (observe mode) are skipped: the kernel is not touched.
// Bans for unknown jails or with invalid addresses are skipped and reported
// in the returned error; the others are still applied.
func (b *Backend) Apply(ctx context.Context, bans []sysban.Ban) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.applyLocked(ctx, bans)
	b.lastApply.Store(time.Now().UnixNano())
	return err
}

// applyLocked is Apply with b.mu held. It also returns how many elements
// it sent (one per jail and address).
func (b *Backend) applyLocked(ctx context.Context, bans []sysban.Ban) (int, error) {
	now := time.Now()
	type pair struct{ v4, v6 pendingSet }
	pending := map[string]*pair{}
	var order []string
	unknown := map[string]int{}
	invalid := 0
	nets := newNetChanges(b)
	for _, ban := range bans {
		if ban.Observed {
			continue // observe mode: recorded and announced, never enforced
		}
		js, ok := b.jails[ban.Jail]
		if !ok {
			unknown[ban.Jail]++
			continue
		}
		network := ban.Network()
		if !network.IsValid() {
			invalid++
			continue
		}
		a := network.Addr()
		timeout, ok := elementTimeout(ban, now)
		if !ok {
			continue
		}
		p := pending[js.rule.Name]
		if p == nil {
			p = &pair{}
			pending[js.rule.Name] = p
			order = append(order, js.rule.Name)
		}
		if !network.IsSingleIP() {
			nets.put(js, network, ban.Expiry())
			continue
		}
		if a.Is4() {
			p.v4.put(a, timeout)
		} else {
			p.v6.put(a, timeout)
		}
	}

	var errs []error
	for _, j := range slices.Sorted(maps.Keys(unknown)) {
		errs = append(errs, fmt.Errorf("nft: apply: unknown jail %q (%d bans skipped)", j, unknown[j]))
	}
	if invalid > 0 {
		errs = append(errs, fmt.Errorf("nft: apply: %d bans with an invalid address skipped", invalid))
	}
	if len(order) == 0 {
		return 0, errors.Join(errs...)
	}

	start := time.Now()
	plans := nets.plan(now)
	var count, flushes int
	err := b.do(ctx, func(c *nftables.Conn) error {
		count = 0 // counts what reached the kernel only when it all did
		bt := newBatcher(b, c, "apply")
		defer func() { flushes = bt.flushes }()
		n, err := plans.queue(bt)
		if err != nil {
			return err
		}
		count += n
		for _, j := range order {
			js, p := b.jails[j], pending[j]
			if err := bt.addElements(js.v4, p.v4.elems); err != nil {
				return err
			}
			if err := bt.addElements(js.v6, p.v6.elems); err != nil {
				return err
			}
			count += len(p.v4.elems) + len(p.v6.elems)
		}
		return bt.flush()
	})
	plans.done(err)
	switch {
	case errors.Is(err, syscall.ENOENT):
		errs = append(errs, explain(fmt.Sprintf("add bans to table %s (jails %v): table or set missing, deleted outside sysban? Setup recreates it", b.table.Name, order), err))
	case err != nil:
		errs = append(errs, explain(fmt.Sprintf("add bans to table %s (jails %v)", b.table.Name, order), err))
	default:
		b.log.Debug("nft: bans applied", "elements", count, "batches", flushes, "took", time.Since(start))
	}
	if err != nil {
		count = 0
	}
	return count, errors.Join(errs...)
}

// Remove lifts the bans of exactly nets in jail (an address is a /32 or
// /128): lifting a /48 leaves a /64 or an address banned inside it, and
// lifting an address leaves the prefix around it. A prefix that is not
// banned is not an error.
func (b *Backend) Remove(ctx context.Context, jail string, nets []netip.Prefix) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	js, ok := b.jails[jail]
	if !ok {
		return fmt.Errorf("nft: remove: unknown jail %q", jail)
	}
	var v4, v6 pendingSet
	changes := newNetChanges(b)
	lifted := 0
	for _, p := range nets {
		p = sysban.CanonicalPrefix(p)
		a := p.Addr()
		switch {
		case !p.IsValid():
		case !p.IsSingleIP():
			if changes.lift(js, p) {
				lifted++
			}
		case a.Is4():
			v4.put(a, 0)
		default:
			v6.put(a, 0)
		}
	}
	if lifted > 0 {
		if err := b.removePrefixes(ctx, changes); err != nil {
			return explain(fmt.Sprintf("remove %d prefixes from jail %s", lifted, jail), err)
		}
	}
	if len(v4.elems)+len(v6.elems) == 0 {
		return nil
	}
	// Deleting an absent element fails the whole batch with ENOENT. That is
	// rare (the caller usually removes what it banned), so try the cheap
	// way first and, on ENOENT, delete only what the kernel still holds.
	// An element can expire between the read and the delete, hence the
	// retries.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = b.do(ctx, func(c *nftables.Conn) error {
			bt := newBatcher(b, c, "remove")
			if err := bt.deleteElements(js.v4, v4.elems); err != nil {
				return err
			}
			if err := bt.deleteElements(js.v6, v6.elems); err != nil {
				return err
			}
			return bt.flush()
		})
		if !errors.Is(err, syscall.ENOENT) {
			break
		}
		err = b.do(ctx, func(c *nftables.Conn) error {
			var err error
			if v4.elems, err = present(c, js.v4, v4.elems); err != nil {
				return err
			}
			v6.elems, err = present(c, js.v6, v6.elems)
			return err
		})
		if err != nil {
			break
		}
		if len(v4.elems)+len(v6.elems) == 0 {
			return nil
		}
	}
	if err != nil {
		return explain(fmt.Sprintf("remove %d addresses from jail %s", len(nets), jail), err)
	}
	return nil
}

// removePrefixes sends the segments changes leave. A segment can expire
// between the plan and the batch (ENOENT); the plan is then made again.
func (b *Backend) removePrefixes(ctx context.Context, changes *netChanges) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		plan := changes.plan(time.Now())
		err = b.do(ctx, func(c *nftables.Conn) error {
			bt := newBatcher(b, c, "remove")
			if _, err := plan.queue(bt); err != nil {
				return err
			}
			return bt.flush()
		})
		plan.done(err)
		if !errors.Is(err, syscall.ENOENT) {
			return err
		}
	}
	return err
}

// present filters elems to those whose key is in s.
func present(c *nftables.Conn, s *nftables.Set, elems []nftables.SetElement) ([]nftables.SetElement, error) {
	if len(elems) == 0 {
		return nil, nil
	}
	cur, err := c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("read set %s: %w", s.Name, err)
	}
	have := make(map[string]bool, len(cur))
	for _, e := range cur {
		have[string(e.Key)] = true
	}
	out := elems[:0]
	for _, e := range elems {
		if have[string(e.Key)] {
			out = append(out, e)
		}
	}
	return out, nil
}

// Banned lists the addresses the kernel currently bans in jail (IPv4
// first, otherwise in the kernel's order).
func (b *Backend) Banned(ctx context.Context, jail string) ([]Element, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	js, ok := b.jails[jail]
	if !ok {
		return nil, fmt.Errorf("nft: banned: unknown jail %q", jail)
	}
	var out []Element
	err := b.do(ctx, func(c *nftables.Conn) error {
		for _, s := range []*nftables.Set{js.v4, js.v6} {
			elems, err := b.dumpElements(ctx, c, s)
			if err != nil {
				return err
			}
			if out == nil {
				out = make([]Element, 0, len(elems))
			}
			for _, e := range elems {
				if el, ok := toElement(e); ok {
					out = append(out, el)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, explain("list bans of jail "+jail, err)
	}
	return out, nil
}

// toElement converts a kernel set element; ok is false for keys that are
// not an address and for elements that expired but are not collected yet.
func toElement(e nftables.SetElement) (Element, bool) {
	a, ok := netip.AddrFromSlice(e.Key)
	if !ok || e.IntervalEnd {
		return Element{}, false
	}
	if e.Timeout == 0 {
		return Element{Addr: a, Permanent: true}, true
	}
	if e.Expires <= 0 {
		return Element{}, false
	}
	return Element{Addr: a, Expires: e.Expires}, true
}

// dumpAttempts bounds how often dumpElements retries an inconsistent dump.
const dumpAttempts = 5

// dumpElements reads every element of s. The kernel sends a large set in
// many parts and resumes each part by walking the set again and skipping
// the elements already sent. When the set's hash table is resized between
// parts (it is, shortly after many insertions), the walk order changes and
// the dump repeats some elements and misses as many: Test100k saw 1,738 of
// 100,000 repeated. A dump with repeats is therefore retried after a short
// pause; if the set will not hold still, the last dump is returned without
// its repeats and a warning is logged. (Elements expiring during a dump can
// likewise shift it; no dump is an exact snapshot of a changing set, which
// is why Setup does not rely on one.)
func (b *Backend) dumpElements(ctx context.Context, c *nftables.Conn, s *nftables.Set) ([]nftables.SetElement, error) {
	var elems []nftables.SetElement
	err := b.dumpConsistently(ctx, s, func() (listed, distinct int, err error) {
		all, err := c.GetSetElements(s)
		if err != nil {
			return 0, 0, fmt.Errorf("read set %s: %w", s.Name, err)
		}
		elems = dedupeElements(all)
		return len(all), len(elems), nil
	})
	return elems, err
}

// dumpConsistently calls dump until it reads s without repeats (listed ==
// distinct), pausing a little longer after each inconsistent read; after
// dumpAttempts it logs a warning and keeps the last read (without its
// repeats, which dump drops).
func (b *Backend) dumpConsistently(ctx context.Context, s *nftables.Set, dump func() (listed, distinct int, err error)) error {
	for attempt := 1; ; attempt++ {
		listed, distinct, err := dump()
		if err != nil || listed == distinct {
			return err
		}
		if attempt == dumpAttempts {
			b.log.Warn("nft: set kept changing while being read; listing may be incomplete",
				"set", s.Name, "listed", listed, "distinct", distinct)
			return nil
		}
		b.log.Debug("nft: inconsistent set dump, retrying", "set", s.Name,
			"listed", listed, "distinct", distinct, "attempt", attempt)
		t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// dedupeElements returns elems without repeated keys (first one kept). It
// returns elems itself when there are none.
func dedupeElements(elems []nftables.SetElement) []nftables.SetElement {
	seen := make(map[string]struct{}, len(elems))
	var out []nftables.SetElement
	for i, e := range elems {
		if _, dup := seen[string(e.Key)]; dup {
			if out == nil {
				out = slices.Clone(elems[:i])
			}
			continue
		}
		seen[string(e.Key)] = struct{}{}
		if out != nil {
			out = append(out, e)
		}
	}
	if out == nil {
		return elems
	}
	return out
}
