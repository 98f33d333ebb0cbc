package nft

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// This file is the Guard's element check: which due bans the kernel sets
// lack. With 100,000 bans it runs every ~20 s, so it is written for
// memory: the due single-address bans are kept as sorted 40-byte entries
// (not sysban.Ban values), and each kernel set is read into a sorted slice
// of 16-byte keys (not a map of addresses), compared by binary search.

// banKey identifies one ban: a jail and a prefix (an address is a /32 or
// /128).
type banKey struct {
	jail   string
	prefix netip.Prefix
}

// dueAddr is a due single-address ban as the element check keeps it:
// enough to look it up in its set and, if missing, to apply it again.
type dueAddr struct {
	key   [16]byte // the address, IPv4 as IPv4-mapped
	set   uint32   // index into dueBans.sets
	start int64    // Unix nanoseconds
	dur   time.Duration
}

// dueBans is what the kernel must hold at now: the single-address bans
// sorted by set and address (one per set and address, the longest), and
// the prefix bans (few, kept whole).
type dueBans struct {
	sets     []*nftables.Set // each rule's v4 then v6 set, in exp.rules order
	jails    []string        // the jail of each set
	addrs    []dueAddr
	prefixes []sysban.Ban
}

// collectDue reads the due bans of src into a dueBans for the sets of exp;
// hint is how many single-address bans to make room for (the last
// check's count: growing a slice of 100,000 entries step by step
// allocates twice what it keeps).
func collectDue(ctx context.Context, src BanSource, exp expectation, now time.Time, hint int) (*dueBans, error) {
	d := &dueBans{addrs: make([]dueAddr, 0, hint)}
	index := make(map[string]uint32, len(exp.rules))
	for _, r := range exp.rules {
		js := exp.jails[r.Name]
		if js == nil {
			continue
		}
		index[r.Name] = uint32(len(d.sets))
		d.sets = append(d.sets, js.v4, js.v6)
		d.jails = append(d.jails, r.Name, r.Name)
	}
	err := src.EachDue(ctx, now, func(ban sysban.Ban) {
		d.add(ban, index, now)
	})
	if err != nil {
		return nil, err
	}
	d.sort()
	return d, nil
}

// add keeps ban if the kernel should hold it: a jail of index, a valid
// address, not observed, not ending within expiryMargin (the kernel may
// rightly have let it go already).
func (d *dueBans) add(ban sysban.Ban, index map[string]uint32, now time.Time) {
	set, ok := index[ban.Jail]
	n := ban.Network()
	if !ok || !n.IsValid() || ban.Observed || endsSoon(ban, now) {
		return
	}
	if !n.IsSingleIP() {
		d.prefixes = append(d.prefixes, ban)
		return
	}
	a := n.Addr()
	if !a.Is4() {
		set++
	}
	d.addrs = append(d.addrs, dueAddr{key: a.As16(), set: set, start: ban.Start.UnixNano(), dur: ban.Duration})
}

// sort orders the addresses by set and key and keeps one per set and key,
// the one lasting longest.
func (d *dueBans) sort() {
	slices.SortFunc(d.addrs, func(x, y dueAddr) int {
		if x.set != y.set {
			return int(x.set) - int(y.set)
		}
		return bytes.Compare(x.key[:], y.key[:])
	})
	out := d.addrs[:0]
	for _, e := range d.addrs {
		if last := len(out) - 1; last >= 0 && out[last].set == e.set && out[last].key == e.key {
			if laterExpiry(d.ban(e).Expiry(), d.ban(out[last]).Expiry()) {
				out[last] = e
			}
			continue
		}
		out = append(out, e)
	}
	clear(d.addrs[len(out):])
	d.addrs = out
}

// ban rebuilds the sysban.Ban of e, as much of it as Apply uses.
func (d *dueBans) ban(e dueAddr) sysban.Ban {
	return sysban.Ban{Jail: d.jails[e.set], Addr: netip.AddrFrom16(e.key).Unmap(), Start: time.Unix(0, e.start), Duration: e.dur}
}

// inSet returns the due addresses of set i (a sub-slice of d.addrs).
func (d *dueBans) inSet(i int) []dueAddr {
	lo, _ := slices.BinarySearchFunc(d.addrs, uint32(i), func(e dueAddr, s uint32) int { return int(e.set) - int(s) })
	hi, _ := slices.BinarySearchFunc(d.addrs, uint32(i+1), func(e dueAddr, s uint32) int { return int(e.set) - int(s) })
	return d.addrs[lo:hi]
}

// missingFrom returns the bans of due (one set's addresses, sorted) whose
// key is not in present (sorted).
func (d *dueBans) missingFrom(due []dueAddr, present [][16]byte, out map[banKey]sysban.Ban) {
	for _, e := range due {
		if _, found := slices.BinarySearchFunc(present, e.key, func(k, want [16]byte) int { return bytes.Compare(k[:], want[:]) }); !found {
			ban := d.ban(e)
			out[banKey{jail: ban.Jail, prefix: ban.Network()}] = ban
		}
	}
}

// missing returns the due bans the kernel sets of exp lack: single
// addresses missing from the hash sets, and prefix bans the Backend's
// books do not hold (after a Setup recreated the prefix sets, or after
// checkPrefixSets found a set tampered with and emptied it).
func (g *guard) missing(ctx context.Context, exp expectation) (map[banKey]sysban.Ban, error) {
	due, err := collectDue(ctx, g.src, exp, time.Now(), g.dueHint+g.dueHint/16)
	if err != nil {
		return nil, fmt.Errorf("nft: guard: read due bans: %w", err)
	}
	g.dueHint = len(due.addrs)
	if err := g.b.checkPrefixSets(ctx, exp); err != nil {
		return nil, fmt.Errorf("nft: guard: read prefix sets: %w", err)
	}
	out := g.b.missingPrefixBans(due.prefixes, exp.jails, time.Now())
	err = g.read(ctx, func(c *nftables.Conn) error {
		for i, s := range due.sets {
			want := due.inSet(i)
			if len(want) == 0 {
				continue // only read the sets that should hold something
			}
			present, err := g.dumpKeys(ctx, s)
			if err != nil {
				return err
			}
			due.missingFrom(want, present, out)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nft: guard: read bans of table %s: %w", g.b.table.Name, err)
	}
	return out, nil
}

// missingBans returns the bans of due that the kernel sets (set name ->
// addresses present) lack at now, one per jail and address, the longest
// when several: the element check over plain values, for its tests.
func missingBans(due []sysban.Ban, jails map[string]*jailSets, kernel map[string][]netip.Addr, now time.Time) map[banKey]sysban.Ban {
	names := slices.Sorted(maps.Keys(jails))
	rules := make([]sysban.JailRule, len(names))
	for i, n := range names {
		rules[i] = sysban.JailRule{Name: n}
	}
	d, _ := collectDue(context.Background(), sliceSource(due), expectation{rules: rules, jails: jails}, now, 0)
	out := map[banKey]sysban.Ban{}
	for i, s := range d.sets {
		var present [][16]byte
		for _, a := range kernel[s.Name] {
			present = append(present, a.As16())
		}
		slices.SortFunc(present, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
		d.missingFrom(d.inSet(i), present, out)
	}
	return out
}

// sliceSource is a BanSource over a slice already filtered to what is due.
type sliceSource []sysban.Ban

func (s sliceSource) EachDue(_ context.Context, _ time.Time, fn func(sysban.Ban)) error {
	for _, b := range s {
		fn(b)
	}
	return nil
}

// endsSoon reports whether ban ends within expiryMargin of now: the kernel
// may rightly have let it go already.
func endsSoon(ban sysban.Ban, now time.Time) bool {
	return !ban.Permanent() && ban.Expiry().Before(now.Add(expiryMargin))
}

// keepLongest puts ban in out under its jail and prefix unless a ban there
// lasts at least as long.
func keepLongest(out map[banKey]sysban.Ban, ban sysban.Ban) {
	k := banKey{jail: ban.Jail, prefix: ban.Network()}
	if old, ok := out[k]; ok && !laterExpiry(ban.Expiry(), old.Expiry()) {
		return
	}
	out[k] = ban
}

// dumpKeys reads the live addresses of the hash set s, sorted, as 16-byte
// keys (IPv4 as IPv4-mapped), retrying an inconsistent dump as
// dumpElements does.
//
// It reads the dump itself instead of through nftables.Conn.GetSetElements:
// for 100,000 elements that allocates about 80 MB (a SetElement of 128
// bytes and an attribute decoder per element, plus the slices' growth),
// and with the rest of the check lifted the daemon's heap to 50-73 MiB
// every ~20 s. Here only the netlink replies (about 50 bytes an element)
// and the keys are held.
func (g *guard) dumpKeys(ctx context.Context, s *nftables.Set) ([][16]byte, error) {
	var keys [][16]byte
	err := g.b.dumpConsistently(ctx, s, func() (listed, distinct int, err error) {
		keys, err = g.readKeys(s, keys[:0])
		if err != nil {
			return 0, 0, err
		}
		slices.SortFunc(keys, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
		listed = len(keys)
		keys = slices.Compact(keys)
		return listed, len(keys), nil
	})
	return keys, err
}

// readKeys sends one element dump request for s on the guard's read
// connection and appends the keys of its live elements to keys. The dump's
// datagrams are read one at a time into a buffer the guard keeps, and
// decoded in place: netlink.Conn.Receive would hold the whole dump (about
// 5 MB for 100,000 elements) as garbage of every check.
func (g *guard) readKeys(s *nftables.Set, keys [][16]byte) ([][16]byte, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_TABLE, Data: []byte(s.Table.Name + "\x00")},
		{Type: unix.NFTA_SET_NAME, Data: []byte(s.Name + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{byte(s.Table.Family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	}
	sent, err := g.nl.Send(req)
	if err != nil {
		return nil, fmt.Errorf("read set %s: %w", s.Name, err)
	}
	rc, err := g.nl.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("read set %s: %w", s.Name, err)
	}
	if g.dumpBuf == nil {
		g.dumpBuf = make([]byte, 2*dumpBuffer)
	}
	for {
		var n int
		var rerr error
		// The read connection's deadline (Guard.read) bounds the wait.
		if err := rc.Read(func(fd uintptr) bool {
			n, _, _, _, rerr = unix.Recvmsg(int(fd), g.dumpBuf, nil, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN
		}); err != nil || rerr != nil {
			return nil, fmt.Errorf("read set %s: %w", s.Name, errors.Join(err, rerr))
		}
		var done bool
		if keys, done, err = appendDumpKeys(keys, g.dumpBuf[:n], sent.Header.Sequence); err != nil {
			return nil, fmt.Errorf("read set %s: %w", s.Name, err)
		}
		if done {
			return keys, nil
		}
	}
}

// appendDumpKeys decodes one datagram of a set element dump answering the
// request of sequence number seq: it appends the keys of its elements and
// says whether the dump is over. Messages of other requests (none are
// expected: the guard's connection has one request at a time) are
// skipped.
func appendDumpKeys(keys [][16]byte, b []byte, seq uint32) (_ [][16]byte, done bool, err error) {
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return keys, false, fmt.Errorf("%w: %d trailing bytes", errBadElements, len(b))
		}
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return keys, false, fmt.Errorf("%w: message of %d bytes in %d", errBadElements, n, len(b))
		}
		typ := netlink.HeaderType(binary.NativeEndian.Uint16(b[4:]))
		ours := binary.NativeEndian.Uint32(b[8:]) == seq
		data := b[unix.NLMSG_HDRLEN:n]
		b = b[min(len(b), (n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		if !ours {
			continue
		}
		switch typ {
		case netlink.Done:
			return keys, true, nil
		case netlink.Error:
			if len(data) < 4 {
				return keys, false, fmt.Errorf("%w: short error message", errBadElements)
			}
			if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
				return keys, false, unix.Errno(-code)
			}
			return keys, true, nil
		}
		if keys, err = appendElementKeys(keys, netlink.Message{Header: netlink.Header{Type: typ}, Data: data}); err != nil {
			return keys, false, err
		}
	}
	return keys, false, nil
}

var errBadElements = errors.New("malformed set element message")

// appendElementKeys appends to keys the address of every live element of
// one NFT_MSG_NEWSETELEM message, as nftables' SetElement decoding and
// toElement would keep it: keys of 4 or 16 bytes, not interval ends, and
// either without timeout or not yet expired.
func appendElementKeys(keys [][16]byte, m netlink.Message) ([][16]byte, error) {
	if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM) || len(m.Data) < 4 {
		return keys, fmt.Errorf("%w: type %#x, %d bytes", errBadElements, m.Header.Type, len(m.Data))
	}
	err := eachAttr(m.Data[4:], func(typ uint16, list []byte) error {
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			return nil
		}
		return eachAttr(list, func(typ uint16, elem []byte) error {
			if typ != unix.NFTA_LIST_ELEM {
				return nil
			}
			k, ok, err := elementKey(elem)
			if ok {
				keys = append(keys, k)
			}
			return err
		})
	})
	return keys, err
}

// elementKey decodes one NFTA_LIST_ELEM's attributes.
func elementKey(elem []byte) (key [16]byte, live bool, err error) {
	var (
		addr             netip.Addr
		flags            uint32
		timeout, expires uint64
		hasExpiry        bool
	)
	err = eachAttr(elem, func(typ uint16, b []byte) error {
		switch typ {
		case unix.NFTA_SET_ELEM_KEY:
			return eachAttr(b, func(typ uint16, v []byte) error {
				if typ == unix.NFTA_DATA_VALUE {
					addr, _ = netip.AddrFromSlice(v)
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			if len(b) != 4 {
				return fmt.Errorf("%w: flags of %d bytes", errBadElements, len(b))
			}
			flags = binary.BigEndian.Uint32(b)
		case unix.NFTA_SET_ELEM_TIMEOUT, unix.NFTA_SET_ELEM_EXPIRATION:
			if len(b) != 8 {
				return fmt.Errorf("%w: time of %d bytes", errBadElements, len(b))
			}
			if typ == unix.NFTA_SET_ELEM_TIMEOUT {
				timeout = binary.BigEndian.Uint64(b)
			} else {
				expires, hasExpiry = binary.BigEndian.Uint64(b), true
			}
		}
		return nil
	})
	// As toElement: an element with a timeout whose expiration is absent,
	// zero or negative is expired but not yet collected.
	expired := timeout != 0 && (!hasExpiry || int64(expires) <= 0)
	if err != nil || !addr.IsValid() || flags&unix.NFT_SET_ELEM_INTERVAL_END != 0 || expired {
		return key, false, err
	}
	return addr.As16(), true, nil
}

// eachAttr calls fn with the type (flags stripped) and payload of every
// netlink attribute in b.
func eachAttr(b []byte, fn func(typ uint16, payload []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: %d trailing bytes", errBadElements, len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		if n < 4 || n > len(b) {
			return fmt.Errorf("%w: attribute of %d bytes in %d", errBadElements, n, len(b))
		}
		if err := fn(binary.NativeEndian.Uint16(b[2:])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), b[4:n]); err != nil {
			return err
		}
		b = b[min(len(b), (n+3)&^3):]
	}
	return nil
}
