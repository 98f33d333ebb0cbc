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
// memory: each kernel set is read into a sorted slice of 16-byte keys
// (not a map of addresses, not nftables.SetElement values), and then the
// due bans stream past them one at a time, each looked up by binary
// search; only the ones the kernel lacks (normally none) are kept.
//
// It read the due bans first, once, into sorted 40-byte entries: 4 MB
// for 100,000 bans beside the kernel's 1.6 MB of keys, all of it fresh
// pages after the last check's memory went back to the kernel, which
// lifted an enforce-only host with 100,000 fleet bans from 27 to 31-38
// MiB RSS at each check.

// banKey identifies one ban: a jail and a prefix (an address is a /32 or
// /128).
type banKey struct {
	jail   string
	prefix netip.Prefix
}

// kernelSets are the single-address sets of an expectation (each rule's
// v4 set, then its v6 set, in exp.rules order) and, once read, the live
// keys of each, sorted.
type kernelSets struct {
	sets  []*nftables.Set
	index map[string]uint32 // jail -> the index of its v4 set (its v6 set is next)
	keys  [][][16]byte
}

func newKernelSets(exp expectation) *kernelSets {
	k := &kernelSets{index: make(map[string]uint32, len(exp.rules))}
	for _, r := range exp.rules {
		js := exp.jails[r.Name]
		if js == nil {
			continue
		}
		k.index[r.Name] = uint32(len(k.sets))
		k.sets = append(k.sets, js.v4, js.v6)
	}
	k.keys = make([][][16]byte, len(k.sets))
	return k
}

// count is how many keys the sets hold.
func (k *kernelSets) count() int {
	n := 0
	for _, keys := range k.keys {
		n += len(keys)
	}
	return n
}

// judge sorts one due ban: a single address its set lacks goes into out
// (the longest ban per jail and address), a prefix ban onto prefixes (the
// Backend's books judge those). Bans the kernel need not hold are
// dropped: another jail's, an invalid address, observe mode, or ending
// within expiryMargin of now (the kernel may rightly have let it go).
func (k *kernelSets) judge(ban sysban.Ban, now time.Time, out map[banKey]sysban.Ban, prefixes *[]sysban.Ban) {
	set, ok := k.index[ban.Jail]
	n := ban.Network()
	if !ok || !n.IsValid() || ban.Observed || endsSoon(ban, now) {
		return
	}
	if !n.IsSingleIP() {
		*prefixes = append(*prefixes, ban)
		return
	}
	a := n.Addr()
	if !a.Is4() {
		set++
	}
	if _, found := slices.BinarySearchFunc(k.keys[set], a.As16(), compareKeys); !found {
		keepLongest(out, ban)
	}
}

func compareKeys(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) }

// missing returns the due bans the kernel sets of exp lack: single
// addresses missing from the hash sets, and prefix bans the Backend's
// books do not hold (after a Setup recreated the prefix sets, or after
// checkPrefixSets found a set tampered with and emptied it).
//
// The kernel is read before the source. A ban the source gains between
// the two (a Journal records before it applies) looks missing; so it
// does with the other order, between the Journal's two steps. The check
// confirms what it found after confirmDelay before it repairs anything.
func (g *guard) missing(ctx context.Context, exp expectation) (map[banKey]sysban.Ban, error) {
	if err := g.b.checkPrefixSets(ctx, exp); err != nil {
		return nil, fmt.Errorf("nft: guard: read prefix sets: %w", err)
	}
	k := newKernelSets(exp)
	if g.keyHints == nil {
		g.keyHints = map[string]int{}
	}
	err := g.read(ctx, func(c *nftables.Conn) error {
		for i, s := range k.sets {
			// Room for what the set held at the last check, and a
			// little more: grown by append, 100,000 keys allocated
			// several times their 1.6 MB.
			hint := g.keyHints[s.Name]
			keys, err := g.dumpKeys(ctx, s, make([][16]byte, 0, hint+hint/16))
			if err != nil {
				return err
			}
			k.keys[i] = keys
			g.keyHints[s.Name] = len(keys)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nft: guard: read bans of table %s: %w", g.b.table.Name, err)
	}
	g.keysRead = k.count()
	out := map[banKey]sysban.Ban{}
	var prefixes []sysban.Ban
	now := time.Now()
	if err := g.src.EachDue(ctx, now, func(ban sysban.Ban) { k.judge(ban, now, out, &prefixes) }); err != nil {
		return nil, fmt.Errorf("nft: guard: read due bans: %w", err)
	}
	maps.Copy(out, g.b.missingPrefixBans(prefixes, exp.jails, now))
	return out, nil
}

// missingBans returns the single-address bans of due that the kernel sets
// (set name -> addresses present) lack at now, one per jail and address,
// the longest when several: the element check over plain values, for its
// tests.
func missingBans(due []sysban.Ban, jails map[string]*jailSets, kernel map[string][]netip.Addr, now time.Time) map[banKey]sysban.Ban {
	names := slices.Sorted(maps.Keys(jails))
	rules := make([]sysban.JailRule, len(names))
	for i, n := range names {
		rules[i] = sysban.JailRule{Name: n}
	}
	k := newKernelSets(expectation{rules: rules, jails: jails})
	for i, s := range k.sets {
		for _, a := range kernel[s.Name] {
			k.keys[i] = append(k.keys[i], a.As16())
		}
		slices.SortFunc(k.keys[i], compareKeys)
	}
	out := map[banKey]sysban.Ban{}
	var prefixes []sysban.Ban
	for _, b := range due {
		k.judge(b, now, out, &prefixes)
	}
	return out
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
// keys (IPv4 as IPv4-mapped) into keys (emptied first), retrying an
// inconsistent dump as dumpElements does.
//
// It reads the dump itself instead of through nftables.Conn.GetSetElements:
// for 100,000 elements that allocates about 80 MB (a SetElement of 128
// bytes and an attribute decoder per element, plus the slices' growth),
// and with the rest of the check lifted the daemon's heap to 50-73 MiB
// every ~20 s. Here only the netlink replies (about 50 bytes an element)
// and the keys are held.
func (g *guard) dumpKeys(ctx context.Context, s *nftables.Set, keys [][16]byte) ([][16]byte, error) {
	err := g.b.dumpConsistently(ctx, s, func() (listed, distinct int, err error) {
		keys, err = g.readKeys(s, keys[:0])
		if err != nil {
			return 0, 0, err
		}
		slices.SortFunc(keys, compareKeys)
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
				if len(keys) == cap(keys) {
					// Doubling, where append would grow by a quarter.
					keys = slices.Grow(keys, max(len(keys), 256))
				}
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
