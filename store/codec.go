package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sysban/sysban"
)

// Bounds on what one record keeps, so that an attacker who writes long
// lines cannot make the state file grow without limit.
const (
	MaxLines     = 10   // failure lines kept per ban: the last ones
	MaxLineBytes = 1024 // longer lines are cut (at a UTF-8 boundary)
	maxSource    = 64   // bytes of Record.Source and Event.Reason kept
	maxJail      = 255
)

// valueVersion is the first byte of every value. A reader refuses versions
// it does not know rather than misreading them. Version 2 (prefix bans)
// adds to a ban its flags (observed) and the address seen, and to an
// event the prefix length;
// version 1 values, written before, are single-address bans and still read.
const (
	valueVersion   = 2
	valueVersionV1 = 1
)

// flagObserved marks a ban of a jail in observe mode (version 2 flags).
const flagObserved = 1

var errShort = errors.New("truncated value")

// banKey is jail 0x00 addr16 for a single address (the form every store
// has used), jail 0x00 addr16 bits for a wider prefix (p canonical):
// sorted by jail, then network address, then length. The jail name has
// no NUL, so the first NUL ends it and what follows says which form.
func banKey(jail string, p netip.Prefix) []byte {
	k := make([]byte, 0, len(jail)+1+16+1)
	k = append(k, jail...)
	k = append(k, 0)
	a16 := p.Addr().As16()
	k = append(k, a16[:]...)
	if !p.IsSingleIP() {
		k = append(k, byte(p.Bits()))
	}
	return k
}

// parseBanKey splits a bans-bucket key.
func parseBanKey(k []byte) (jail string, p netip.Prefix, err error) { return parseBanKeyIn(nil, k) }

// parseBanKeyIn is parseBanKey with the jail name interned in in (nil:
// a new string).
func parseBanKeyIn(in *names, k []byte) (jail string, p netip.Prefix, err error) {
	nul := bytes.IndexByte(k, 0)
	if nul < 1 || (len(k)-nul-1 != 16 && len(k)-nul-1 != 17) {
		return "", netip.Prefix{}, fmt.Errorf("bad ban key %x", k)
	}
	a := netip.AddrFrom16([16]byte(k[nul+1 : nul+17])).Unmap()
	bits := a.BitLen()
	if len(k)-nul-1 == 17 {
		bits = int(k[nul+17])
	}
	p = netip.PrefixFrom(a, bits)
	if !p.IsValid() || p.Masked() != p || p.IsSingleIP() == (len(k)-nul-1 == 17) {
		return "", netip.Prefix{}, fmt.Errorf("bad ban key %x", k)
	}
	return in.get(k[:nul]), p, nil
}

// timeKey maps a time to 8 bytes that sort like the times do, negative
// (pre-1970) included.
func timeKey(t time.Time) uint64 { return uint64(t.UnixNano()) ^ (1 << 63) }

func keyTime(u uint64) time.Time { return time.Unix(0, int64(u^(1<<63))) }

// historyKey is addr16 time8 seq8.
func historyKey(a netip.Addr, t time.Time, seq uint64) []byte {
	k := make([]byte, 32)
	a16 := a.As16()
	copy(k, a16[:])
	binary.BigEndian.PutUint64(k[16:], timeKey(t))
	binary.BigEndian.PutUint64(k[24:], seq)
	return k
}

func addrPrefix(a netip.Addr) []byte {
	a16 := a.As16()
	return a16[:]
}

// encodeRecord appends the value of a bans-bucket entry (everything but
// jail and prefix, which are in the key).
func encodeRecord(r Record) []byte {
	b := make([]byte, 0, 48+len(r.Source)+len(r.Lines)*80)
	b = append(b, valueVersion)
	var flags byte
	if r.Observed {
		flags |= flagObserved
	}
	b = append(b, flags)
	b = appendString(b, string(r.Addr.AsSlice())) // the address seen; none for a manual prefix ban
	b = binary.AppendVarint(b, r.Start.UnixNano())
	b = binary.AppendVarint(b, int64(r.Duration))
	b = binary.AppendUvarint(b, uint64(max(r.Failures, 0)))
	b = binary.AppendUvarint(b, uint64(max(r.Offences, 0)))
	b = appendString(b, r.Source)
	b = binary.AppendUvarint(b, uint64(len(r.Lines)))
	for _, l := range r.Lines {
		b = appendString(b, l)
	}
	return b
}

func decodeRecord(in *names, jail string, p netip.Prefix, v []byte) (Record, error) {
	return decodeRecordLines(in, jail, p, v, true)
}

// decodeRecordHead is decodeRecord without the lines (checked, not kept).
func decodeRecordHead(in *names, jail string, p netip.Prefix, v []byte) (Record, error) {
	return decodeRecordLines(in, jail, p, v, false)
}

// decodeRecordLines decodes a ban's value, its source interned in in (nil:
// a new string).
func decodeRecordLines(in *names, jail string, p netip.Prefix, v []byte, lines bool) (Record, error) {
	d := decoder{b: v}
	r := Record{Ban: sysban.Ban{Jail: jail, Prefix: p}}
	switch ver := d.byte(); {
	case d.err != nil:
	case ver == valueVersionV1 && p.IsSingleIP():
		r.Addr = p.Addr()
	case ver == valueVersion:
		flags := d.byte()
		if flags&^flagObserved != 0 {
			return Record{}, fmt.Errorf("ban value: unknown flags %#x", flags)
		}
		r.Observed = flags&flagObserved != 0
		if seen := d.bytes(); len(seen) > 0 {
			a, ok := netip.AddrFromSlice(seen)
			if !ok || !p.Contains(a.Unmap()) {
				return Record{}, fmt.Errorf("ban value: address seen %x is not in %s", seen, p)
			}
			r.Addr = a.Unmap()
		}
	default:
		return Record{}, fmt.Errorf("ban value version %d, want %d", ver, valueVersion)
	}
	r.Start = time.Unix(0, d.varint())
	r.Duration = time.Duration(d.varint())
	r.Failures = d.count()
	r.Offences = d.count()
	r.Source = in.get(d.bytes())
	n := d.count()
	if n > MaxLines {
		return Record{}, fmt.Errorf("ban value: %d lines, at most %d", n, MaxLines)
	}
	if n > 0 && d.err == nil && lines {
		r.Lines = make([]string, 0, n)
	}
	for range n {
		if l := d.bytes(); lines && d.err == nil {
			r.Lines = append(r.Lines, string(l))
		}
	}
	if d.err != nil {
		return Record{}, fmt.Errorf("ban value: %w", d.err)
	}
	if len(d.b) != 0 {
		return Record{}, fmt.Errorf("ban value: %d trailing bytes", len(d.b))
	}
	return r, nil
}

func encodeEvent(e Event) []byte {
	b := make([]byte, 0, 32+len(e.Jail)+len(e.Source)+len(e.Reason))
	b = append(b, valueVersion, byte(e.Kind), byte(e.Bits))
	b = appendString(b, e.Jail)
	b = binary.AppendVarint(b, int64(e.Duration))
	b = binary.AppendUvarint(b, uint64(max(e.Failures, 0)))
	b = binary.AppendUvarint(b, uint64(max(e.Offences, 0)))
	b = appendString(b, e.Source)
	b = appendString(b, e.Reason)
	return b
}

// decodeEvent decodes a history entry; k is its key.
func decodeEvent(k, v []byte) (Event, error) {
	if len(k) != 32 {
		return Event{}, fmt.Errorf("bad history key %x", k)
	}
	var a16 [16]byte
	copy(a16[:], k)
	e := Event{
		Addr: netip.AddrFrom16(a16).Unmap(),
		Time: keyTime(binary.BigEndian.Uint64(k[16:])),
	}
	d := decoder{b: v}
	ver := d.byte()
	if d.err == nil && ver != valueVersion && ver != valueVersionV1 {
		return Event{}, fmt.Errorf("history value version %d, want %d", ver, valueVersion)
	}
	e.Kind = EventKind(d.byte())
	e.Bits = e.Addr.BitLen()
	if ver == valueVersion {
		e.Bits = int(d.byte())
		if e.Bits > e.Addr.BitLen() {
			return Event{}, fmt.Errorf("history value: /%d of %s", e.Bits, e.Addr)
		}
	}
	e.Jail = d.string()
	e.Duration = time.Duration(d.varint())
	e.Failures = d.count()
	e.Offences = d.count()
	e.Source = d.string()
	e.Reason = d.string()
	if d.err != nil {
		return Event{}, fmt.Errorf("history value: %w", d.err)
	}
	if len(d.b) != 0 {
		return Event{}, fmt.Errorf("history value: %d trailing bytes", len(d.b))
	}
	return e, nil
}

// eventJailKind reads only the kind, prefix length (-1: the whole
// address, as version 1 values are) and jail of a history value: enough to
// count offences without decoding the rest.
func eventJailKind(v []byte) (kind EventKind, bits int, jail string, err error) {
	d := decoder{b: v}
	ver := d.byte()
	if d.err == nil && ver != valueVersion && ver != valueVersionV1 {
		return 0, 0, "", fmt.Errorf("history value version %d, want %d", ver, valueVersion)
	}
	kind, bits = EventKind(d.byte()), -1
	if ver == valueVersion {
		bits = int(d.byte())
	}
	jail = d.string()
	return kind, bits, jail, d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a value; the first error sticks and later reads return
// zero values, so callers check once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errShort
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count is a uvarint that must fit an int comfortably.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > 1<<31 {
		if d.err == nil {
			d.err = fmt.Errorf("count %d out of range", v)
		}
		return 0
	}
	return int(v)
}

func (d *decoder) string() string { return string(d.bytes()) }

// bytes is a length-prefixed string as a slice of the value, not copied.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

// cut returns s shortened to at most n bytes without splitting a UTF-8
// sequence (invalid bytes are kept as they are: lines are stored as
// received).
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	if !utf8.RuneStart(s[i]) {
		i = n // not UTF-8 there anyway: cut at the byte limit
	}
	return s[:i]
}

// boundLines keeps the last MaxLines lines, each cut at MaxLineBytes.
func boundLines(lines []string) []string {
	if len(lines) == 0 {
		return nil
	}
	if len(lines) > MaxLines {
		lines = lines[len(lines)-MaxLines:]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = cut(l, MaxLineBytes)
	}
	return out
}

// names interns the few strings that records repeat, jail names and
// sources ("pipeline", "fleet:NODE:ORIGIN", "manual"): a scan of 100,000
// bans (the Guard's EachDue every ~20 s, the first Expire after a start)
// made two new strings a record, 6-8 MB of garbage each time, which an
// enforce-only host kept as resident heap until the next collection.
// Safe for concurrent use (read transactions run side by side).
type names struct {
	mu sync.RWMutex
	m  map[string]string
}

// maxNames bounds the table: beyond it, strings are made each time.
const maxNames = 4096

func newNames() *names { return &names{m: map[string]string{}} }

// get returns b as a string, the table's copy if it has one; nil n makes
// a new string.
func (n *names) get(b []byte) string {
	if n == nil || len(b) == 0 {
		return string(b)
	}
	n.mu.RLock()
	s, ok := n.m[string(b)]
	n.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	n.mu.Lock()
	if len(n.m) < maxNames {
		n.m[s] = s
	}
	n.mu.Unlock()
	return s
}
