package pipeline

import (
	"math"
	"net/netip"
)

// This file holds what makes a jail count and ban by network prefix
// rather than by address (ipv6prefix, ipv4prefix): the key mask keyOf
// applies, the bans of other lengths a jail remembers beside its shards
// (a manual /48 in a /64 jail, a ban narrowed around a protected
// address), and the count of bans by length.

// keyMask is the mask keyOf applies: the jail's IPv4 and IPv6 prefix
// lengths as 16-byte masks over the As16 form. full (both /32 and /128)
// skips the masking, so a single-address jail pays one branch.
type keyMask struct {
	v4, v6 [2]uint64
	full   bool
}

// newKeyMask is the mask for prefixes of v4bits (IPv4) and v6bits (IPv6)
// bits; 0 means the whole address.
func newKeyMask(v4bits, v6bits int) keyMask {
	if v4bits == 0 {
		v4bits = 32
	}
	if v6bits == 0 {
		v6bits = 128
	}
	ones := func(n int) [2]uint64 {
		var m [2]uint64
		for i := range 2 {
			switch b := n - 64*i; {
			case b >= 64:
				m[i] = math.MaxUint64
			case b > 0:
				m[i] = math.MaxUint64 << (64 - b)
			}
		}
		return m
	}
	// IPv4 in the As16 form sits behind the 96 bits of ::ffff:.
	return keyMask{v4: ones(96 + v4bits), v6: ones(v6bits), full: v4bits == 32 && v6bits == 128}
}

// prefixOf is the prefix a counts toward and is banned by (a canonical).
func (j *jail) prefixOf(a netip.Addr) netip.Prefix {
	bits := j.v6bits
	if a.Is4() {
		bits = j.v4bits
	}
	p, _ := a.Prefix(bits)
	return p
}

// counted reports whether p has the jail's own length (its bans live in
// the shards); other lengths live in others.
func (j *jail) counted(p netip.Prefix) bool {
	if p.Addr().Is4() {
		return p.Bits() == j.v4bits
	}
	return p.Bits() == j.v6bits
}

// otherBan reports whether one of others covers a at now, noting the
// rate-limited notice in v.
func (j *jail) otherBan(a netip.Addr, now int64, v *verdict) bool {
	j.othersMu.Lock()
	defer j.othersMu.Unlock()
	for p, b := range j.others {
		if !p.Contains(a) {
			continue
		}
		if now >= b.expiry {
			delete(j.others, p)
			j.nOthers.Add(-1)
			continue
		}
		v.banned = true
		if v.notice = b.noticeDue(now); v.notice {
			j.others[p] = b
		}
		return true
	}
	return false
}

// countBan counts a kept ban of p by its family and length.
func (j *jail) countBan(p netip.Prefix) {
	f := 1
	if p.Addr().Is4() {
		f = 0
	}
	j.bansByBits[f][p.Bits()].Add(1)
}

// bansByPrefix returns the kept bans by family and length, those counted.
func (j *jail) bansByPrefix() map[PrefixLen]uint64 {
	var out map[PrefixLen]uint64
	for f, fam := range []string{"ipv4", "ipv6"} {
		for b := range j.bansByBits[f] {
			if n := j.bansByBits[f][b].Load(); n > 0 {
				if out == nil {
					out = map[PrefixLen]uint64{}
				}
				out[PrefixLen{Family: fam, Bits: b}] = n
			}
		}
	}
	return out
}

// rememberOther records b, a ban of p, which the shards do not key: the
// longer expiry wins, and the map is bounded like a shard's.
func (j *jail) rememberOther(p netip.Prefix, b banState) {
	j.othersMu.Lock()
	defer j.othersMu.Unlock()
	old, ok := j.others[p]
	switch {
	case ok && old.expiry >= b.expiry:
		old.kept = old.kept || b.kept
		j.others[p] = old
	case ok:
		b.kept = b.kept || old.kept
		j.others[p] = b
	case len(j.others) < j.maxTracked:
		j.others[p] = b
		j.nOthers.Add(1)
	}
}
