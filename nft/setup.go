package nft

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// ChainName is the name of the base chain in the table.
const ChainName = "input"

// jailSets is what Setup created for one jail: hash sets of single
// addresses, interval sets of prefixes (prefixes.go says why both).
type jailSets struct {
	rule         sysban.JailRule
	v4, v6       *nftables.Set
	v4net, v6net *nftables.Set
}

// setsPerJail is how many sets a jail has, each with its rules: two
// families, a hash and an interval set each.
const setsPerJail = 4

// all is the jail's sets, hash sets first.
func (js *jailSets) all() []*nftables.Set { return []*nftables.Set{js.v4, js.v6, js.v4net, js.v6net} }

// Set names of a jail.
func setName4(jail string) string    { return jail + "_v4" }
func setName6(jail string) string    { return jail + "_v6" }
func setName4Net(jail string) string { return jail + "_v4net" }
func setName6Net(jail string) string { return jail + "_v6net" }

// jailSetShapes are a jail's sets: name, key type, interval.
func jailSetShapes(jail string) []setShape {
	return []setShape{
		{setName4(jail), nftables.TypeIPAddr, false},
		{setName6(jail), nftables.TypeIP6Addr, false},
		{setName4Net(jail), nftables.TypeIPAddr, true},
		{setName6Net(jail), nftables.TypeIP6Addr, true},
	}
}

// setShape is what a named set of a jail looks like.
type setShape struct {
	name     string
	kt       nftables.SetDatatype
	interval bool
}

// IP protocol numbers of the transports whose destination port sits at
// offset 2 of the transport header ("th dport").
const (
	protoTCP  = unix.IPPROTO_TCP
	protoUDP  = unix.IPPROTO_UDP
	protoDCCP = unix.IPPROTO_DCCP
	protoSCTP = unix.IPPROTO_SCTP
)

// validateRules checks rules before anything is sent to the kernel.
func validateRules(rules []sysban.JailRule) error {
	seen := make(map[string]bool, len(rules))
	var errs []error
	for _, r := range rules {
		if !validName(r.Name) {
			errs = append(errs, fmt.Errorf("jail %q: name must be ASCII letters, digits, '_', '-' or '.' (not starting with '-' or '.'), at most %d bytes", r.Name, maxNameLen))
			continue
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("jail %q: defined twice", r.Name))
		}
		seen[r.Name] = true
		switch r.Protocol {
		case sysban.TCP, sysban.UDP, sysban.All:
		default:
			errs = append(errs, fmt.Errorf("jail %q: unknown protocol %q (want tcp, udp or all)", r.Name, r.Protocol))
		}
		switch r.Verdict {
		case sysban.Drop, sysban.Reject:
		default:
			errs = append(errs, fmt.Errorf("jail %q: unknown verdict %q (want drop or reject)", r.Name, r.Verdict))
		}
		for _, p := range r.Ports {
			if p.First > p.Last {
				errs = append(errs, fmt.Errorf("jail %q: port range %d-%d is reversed", r.Name, p.First, p.Last))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nft: setup: %w", err)
	}
	return nil
}

// Setup makes the table enforce rules, atomically: one netlink batch
// removes everything the previous table of that name held (chains, rules,
// sets of jails no longer configured, anything foreign), creates the chain,
// sets and rules, and keeps every ban of the jails that remain. Call it at
// start and on every configuration reload.
//
// Bans are kept by leaving the sets of remaining jails in place rather than
// by reading them out and writing them back: a set-element dump of a large
// set is not a reliable snapshot (see dumpElements), while an untouched set
// keeps every element with its exact expiry. Only a set of the right name
// but the wrong shape (created by something else) is recreated, with its
// elements carried over in the same batch.
func (b *Backend) Setup(ctx context.Context, rules []sysban.JailRule) error {
	return b.SetupNFLOG(ctx, rules, nil)
}

// SetupNFLOG is Setup with the NFLOG rules n describes (nflog.go); nil n
// installs none, like Setup. A daemon that logs calls it at start and on
// every reload with the same n it gives Guard in GuardOptions.NFLOG, so
// Guard restores what Setup installed.
func (b *Backend) SetupNFLOG(ctx context.Context, rules []sysban.JailRule, n *NFLOG) error {
	if err := validateRules(rules); err != nil {
		return err
	}
	if err := n.validate(rules); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := b.setupLocked(ctx, rules, n)
	if err != nil {
		if n != nil {
			return explainNFLOG(err)
		}
		return err
	}
	b.log.Info("nft: ruleset installed", "table", b.table.Name, "jails", len(rules),
		"kept_sets", st.kept, "carried_bans", st.carried, "nflog", n != nil)
	return nil
}

// setupStats is what setupLocked did with an earlier table.
type setupStats struct {
	kept    int // sets left in place with their elements
	carried int // elements carried from recreated sets
}

// setupLocked is Setup with b.mu held and rules validated. On success it
// records rules as the ones Guard restores. n (nil: none) adds the NFLOG
// rules.
func (b *Backend) setupLocked(ctx context.Context, rules []sysban.JailRule, n *NFLOG) (setupStats, error) {
	var prev *previous
	err := b.do(ctx, func(c *nftables.Conn) error {
		var err error
		prev, err = b.readPrevious(ctx, c, rules)
		return err
	})
	if err != nil {
		return setupStats{}, explain("setup: read table "+b.table.Name, err)
	}

	jails := make(map[string]*jailSets, len(rules))
	var carried int
	err = b.do(ctx, func(c *nftables.Conn) error {
		b.nextID = 0
		carried = 0
		bt := newBatcher(b, c, "setup")
		// Adding an existing table is a no-op; deleting its contents
		// piecewise (not the table) is what lets kept sets survive.
		c.AddTable(b.table)
		for _, ch := range prev.chains {
			c.FlushChain(ch) // rules first: a chain in use cannot be deleted
		}
		for _, ch := range prev.chains {
			c.DelChain(ch)
		}
		for _, s := range prev.sets {
			if !prev.keep[s.Name] {
				c.DelSet(s)
			}
		}
		policy := nftables.ChainPolicyAccept
		chain := c.AddChain(&nftables.Chain{
			Name:     ChainName,
			Table:    b.table,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookInput,
			Priority: nftables.ChainPriorityRef(nftables.ChainPriority(*b.opts.Priority)),
			Policy:   &policy,
		})
		bt.note(2+2*len(prev.chains)+len(prev.sets), 512*(2+2*len(prev.chains)+len(prev.sets)))
		// The port gate first: what no rule below can match leaves here.
		k, err := b.addGateRules(c, chain, rules, n)
		if err != nil {
			return err
		}
		bt.note(2+2*k, 1024*k)
		for _, r := range rules {
			shapes := jailSetShapes(r.Name)
			js := &jailSets{
				rule:  r,
				v4:    b.newSet(shapes[0]),
				v6:    b.newSet(shapes[1]),
				v4net: b.newSet(shapes[2]),
				v6net: b.newSet(shapes[3]),
			}
			for _, s := range js.all() {
				if prev.keep[s.Name] && s.Interval && b.books[r.Name] == nil {
					// A prefix set from before this Backend (a restart):
					// its segments are unknown, so it is emptied, and the
					// caller's restore of the due bans fills it again.
					c.FlushSet(s)
				}
				if prev.keep[s.Name] {
					continue // rules find it by name
				}
				if err := c.AddSet(s, nil); err != nil {
					return fmt.Errorf("add set %s: %w", s.Name, err)
				}
			}
			k, err := b.addJailRules(c, chain, js, n)
			if err != nil {
				return err
			}
			bt.note(2+2*k, 1024*k)
			jails[r.Name] = js
		}
		// Probe rules last: a banned scanner's packets were dropped above.
		k, err = b.addProbeRules(c, chain, n)
		if err != nil {
			return err
		}
		bt.note(2+2*k, 1024*k)
		// Elements of recreated sets go last; only they can make the batch
		// outgrow the socket buffers, and then the rest follows at once.
		for _, r := range rules {
			for _, s := range []*nftables.Set{jails[r.Name].v4, jails[r.Name].v6} {
				elems := prev.carry[s.Name]
				carried += len(elems)
				if err := bt.addElements(s, elems); err != nil {
					return err
				}
			}
		}
		if bt.flushes > 0 {
			b.log.Warn("nft: setup: carried bans did not fit one batch; the rest were added right after",
				"carried", carried, "batches", bt.flushes+1)
		}
		return bt.flush()
	})
	if err != nil {
		return setupStats{}, explain("setup table "+b.table.Name, err)
	}
	b.jails = jails
	// A prefix book stays valid only while its interval sets stayed in
	// place; recreated ones are empty, and the caller (the daemon at start,
	// Guard after a repair) applies the due bans again.
	books := make(map[string]*prefixBook, len(rules))
	for _, r := range rules {
		if pb := b.books[r.Name]; pb != nil && prev.keep[setName4Net(r.Name)] && prev.keep[setName6Net(r.Name)] {
			books[r.Name] = pb
		} else {
			books[r.Name] = newPrefixBook()
		}
	}
	b.books = books
	b.rules = append([]sysban.JailRule{}, rules...) // non-nil: "set up", even with no jails
	b.gen++
	return setupStats{kept: len(prev.keep), carried: carried}, nil
}

// previous is what Setup found of an earlier table.
type previous struct {
	chains []*nftables.Chain
	sets   []*nftables.Set                  // named sets
	keep   map[string]bool                  // sets left in place
	carry  map[string][]nftables.SetElement // elements of sets to recreate
}

// readPrevious inspects the previous table, if any: which sets of the
// configured jails can stay as they are, and the elements of those that
// must be recreated, their remaining lifetime as new timeout.
func (b *Backend) readPrevious(ctx context.Context, c *nftables.Conn, rules []sysban.JailRule) (*previous, error) {
	prev := &previous{keep: map[string]bool{}, carry: map[string][]nftables.SetElement{}}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == b.table.Name }) {
		return prev, nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, err
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == b.table.Name {
			prev.chains = append(prev.chains, &nftables.Chain{Name: ch.Name, Table: b.table})
		}
	}
	sets, err := c.GetSets(b.table)
	if err != nil {
		return nil, err
	}
	want := map[string]setShape{}
	for _, r := range rules {
		for _, sh := range jailSetShapes(r.Name) {
			want[sh.name] = sh
		}
	}
	for _, s := range sets {
		if s.Anonymous {
			continue // goes with the rule that owns it
		}
		prev.sets = append(prev.sets, s)
		sh, ok := want[s.Name]
		if !ok {
			continue
		}
		if compatible(s, sh) {
			prev.keep[s.Name] = true
			continue
		}
		if sh.interval {
			// Segments cannot be carried one by one; the caller applies
			// the due bans again (see the books in setupLocked).
			continue
		}
		kt := sh.kt
		b.log.Warn("nft: setup: set has an unexpected shape; recreating it with its elements",
			"set", s.Name, "key", s.KeyType.Name, "timeout_flag", s.HasTimeout)
		elems, err := b.dumpElements(ctx, c, s)
		if err != nil {
			return nil, err
		}
		keep := make([]nftables.SetElement, 0, len(elems))
		for _, e := range elems {
			if len(e.Key) != int(kt.Bytes) || e.IntervalEnd {
				continue
			}
			ne := nftables.SetElement{Key: e.Key}
			if e.Timeout != 0 {
				if e.Expires <= 0 {
					continue // expired, not yet collected
				}
				ne.Timeout = e.Expires
			}
			keep = append(keep, ne)
		}
		prev.carry[s.Name] = keep
	}
	return prev, nil
}

// compatible reports whether an existing set is exactly what newSet would
// create, so it can stay in place with its elements.
func compatible(s *nftables.Set, sh setShape) bool {
	return s.KeyType.Name == sh.kt.Name && s.KeyType.Bytes == sh.kt.Bytes &&
		s.HasTimeout && s.Timeout == 0 && s.Interval == sh.interval &&
		!s.IsMap && !s.Constant && !s.Concatenation && !s.Anonymous
}

// newSet describes a jail's named address set. IDs are ours, not the
// library's (see doc.go), and only need to be unique within a batch.
func (b *Backend) newSet(sh setShape) *nftables.Set {
	comment := "sysban bans"
	if sh.interval {
		comment = "sysban prefix bans"
	}
	return &nftables.Set{
		Table:      b.table,
		Name:       sh.name,
		ID:         b.id(),
		KeyType:    sh.kt,
		HasTimeout: true,
		Interval:   sh.interval,
		Comment:    comment,
	}
}

func (b *Backend) id() uint32 {
	b.nextID++
	return b.nextID
}

// rulePart is one rule of a jail per address family: which transports it
// matches (nil: any) and its verdict.
type rulePart struct {
	protos  []byte
	verdict expr.Any
}

var (
	verdictDrop = &expr.Verdict{Kind: expr.VerdictDrop}
	rejectTCP   = &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}
	rejectOther = &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}
)

// ruleParts splits a jail into rules. A TCP reset can only answer TCP, so a
// rejecting jail over several transports needs a TCP rule (reset) and a rule
// for the rest (ICMP admin-prohibited).
func ruleParts(r sysban.JailRule) []rulePart {
	reject := r.Verdict == sysban.Reject
	switch r.Protocol {
	case sysban.TCP:
		if reject {
			return []rulePart{{[]byte{protoTCP}, rejectTCP}}
		}
		return []rulePart{{[]byte{protoTCP}, verdictDrop}}
	case sysban.UDP:
		if reject {
			return []rulePart{{[]byte{protoUDP}, rejectOther}}
		}
		return []rulePart{{[]byte{protoUDP}, verdictDrop}}
	}
	// All.
	if len(r.Ports) == 0 {
		if reject {
			return []rulePart{{[]byte{protoTCP}, rejectTCP}, {nil, rejectOther}}
		}
		return []rulePart{{nil, verdictDrop}}
	}
	if reject {
		return []rulePart{
			{[]byte{protoTCP}, rejectTCP},
			{[]byte{protoUDP, protoSCTP, protoDCCP}, rejectOther},
		}
	}
	return []rulePart{{[]byte{protoTCP, protoUDP, protoSCTP, protoDCCP}, verdictDrop}}
}

// addJailRules queues the jail's rules (and their anonymous sets) and
// returns how many rules it queued. With n logging banned traffic, each
// verdict rule follows a log rule of the same match (see nflog.go).
func (b *Backend) addJailRules(c *nftables.Conn, chain *nftables.Chain, js *jailSets, n *NFLOG) (int, error) {
	families := []struct {
		nfproto  byte
		off, len uint32
		set      *nftables.Set
	}{
		{unix.NFPROTO_IPV4, 12, 4, js.v4},    // ip saddr
		{unix.NFPROTO_IPV6, 8, 16, js.v6},    // ip6 saddr
		{unix.NFPROTO_IPV4, 12, 4, js.v4net}, // ip saddr, prefixes
		{unix.NFPROTO_IPV6, 8, 16, js.v6net}, // ip6 saddr, prefixes
	}
	ports := mergePorts(js.rule.Ports)
	count := 0
	for _, f := range families {
		for _, p := range ruleParts(js.rule) {
			// match builds the rule's match afresh each time: an
			// anonymous set belongs to the one rule that uses it. The
			// expressions are ANDed, so their order is the cost: the
			// cheap compares that turn most packets away (family,
			// transport, port) come first and the lookup in the
			// jail's address set last, which traffic for other
			// services never reaches (see doc.go, "Rule order").
			match := func() ([]expr.Any, error) {
				ex := []expr.Any{
					&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.nfproto}},
				}
				pe, err := b.protoExprs(c, p.protos)
				if err != nil {
					return nil, err
				}
				ex = append(ex, pe...)
				pe, err = b.portExprs(c, ports, false)
				if err != nil {
					return nil, err
				}
				ex = append(ex, pe...)
				return append(ex,
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.off, Len: f.len},
					&expr.Lookup{SourceRegister: 1, SetName: f.set.Name, SetID: f.set.ID},
				), nil
			}
			if n.logRulesPerPart() > 0 {
				ex, err := match()
				if err != nil {
					return count, err
				}
				c.AddRule(&nftables.Rule{
					Table:    b.table,
					Chain:    chain,
					Exprs:    append(ex, n.logExprs(BanPrefix+js.rule.Name)...),
					UserData: userdata.AppendString(nil, userdata.TypeComment, logComment(js.rule.Name)),
				})
				count++
			}
			ex, err := match()
			if err != nil {
				return count, err
			}
			c.AddRule(&nftables.Rule{
				Table:    b.table,
				Chain:    chain,
				Exprs:    append(ex, p.verdict),
				UserData: userdata.AppendString(nil, userdata.TypeComment, "sysban jail "+js.rule.Name),
			})
			count++
		}
	}
	return count, nil
}

// protoExprs matches meta l4proto against protos (nothing when nil).
func (b *Backend) protoExprs(c *nftables.Conn, protos []byte) ([]expr.Any, error) {
	if len(protos) == 0 {
		return nil, nil
	}
	ex := []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}}
	if len(protos) == 1 {
		return append(ex, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protos[0]}}), nil
	}
	s := b.anonSet(nftables.TypeInetProto, false)
	elems := make([]nftables.SetElement, len(protos))
	for i, p := range protos {
		elems[i] = nftables.SetElement{Key: []byte{p}}
	}
	if err := c.AddSet(s, elems); err != nil {
		return nil, fmt.Errorf("add protocol set: %w", err)
	}
	return append(ex, &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}), nil
}

// portExprs matches th dport against merged port ranges (nothing when
// empty): a compare for one port, a range for one range, an anonymous
// interval set otherwise. With outside, it matches the ports not in
// ports (the gate, gate.go).
func (b *Backend) portExprs(c *nftables.Conn, ports []sysban.PortRange, outside bool) ([]expr.Any, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	op := expr.CmpOpEq
	if outside {
		op = expr.CmpOpNeq
	}
	ex := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
	if len(ports) == 1 {
		p := ports[0]
		if p.First == p.Last {
			return append(ex, &expr.Cmp{Op: op, Register: 1, Data: be16(p.First)}), nil
		}
		return append(ex, &expr.Range{Op: op, Register: 1, FromData: be16(p.First), ToData: be16(p.Last)}), nil
	}
	s := b.anonSet(nftables.TypeInetService, true)
	if err := c.AddSet(s, intervalElements(ports)); err != nil {
		return nil, fmt.Errorf("add port set: %w", err)
	}
	return append(ex, &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: outside}), nil
}

// anonSet describes a constant anonymous set bound to one rule; the kernel
// names it (__set0, ...) and frees it with the rule.
func (b *Backend) anonSet(kt nftables.SetDatatype, interval bool) *nftables.Set {
	return &nftables.Set{
		Table:     b.table,
		Name:      "__set%d",
		ID:        b.id(),
		Anonymous: true,
		Constant:  true,
		Interval:  interval,
		KeyType:   kt,
	}
}

// Teardown deletes the table and with it every ban. The daemon does not
// call it on exit (bans must survive restarts); it is for tests and an
// explicit uninstall. A missing table is not an error.
func (b *Backend) Teardown(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.do(ctx, func(c *nftables.Conn) error {
		c.AddTable(b.table) // so the delete cannot fail with ENOENT
		c.DelTable(b.table)
		return c.Flush()
	})
	if err != nil {
		return explain("teardown table "+b.table.Name, err)
	}
	b.jails = map[string]*jailSets{}
	b.books = map[string]*prefixBook{}
	b.rules = nil
	b.gen++ // a Guard running must not rebuild what was torn down on purpose
	return nil
}
