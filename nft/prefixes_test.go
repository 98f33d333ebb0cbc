package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	sysban "github.com/sysban/sysban"
)

// segmentsString renders segments as "from-to@expiry" with the expiry in
// minutes after t0 (P for permanent).
func segmentsString(fam family, segs []segEntry, t0 time.Time) string {
	var out []string
	for _, s := range segs {
		exp := "P"
		if s.expiry != 0 {
			exp = fmt.Sprint(int(time.Unix(0, s.expiry).Sub(t0) / time.Minute))
		}
		out = append(out, fmt.Sprintf("%s-%s@%s", fam.toAddr(s.from), fam.toAddr(s.to), exp))
	}
	return strings.Join(out, " ")
}

// TestSegments: nested and neighbouring prefix bans become disjoint
// segments, each expiring with the longest ban that covers it, with an
// injected clock.
func TestSegments(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	min := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type ban struct {
		prefix string
		until  time.Time // zero: permanent
	}
	tests := []struct {
		name string
		bans []ban
		at   time.Time
		want string
	}{
		{"one /64", []ban{{"2001:db8:1:2::/64", min(60)}}, t0,
			"2001:db8:1:2::-2001:db8:1:2:ffff:ffff:ffff:ffff@60"},
		{"a /64 inside a /48 that outlasts it: one segment", []ban{{"2001:db8::/48", min(120)}, {"2001:db8:0:5::/64", min(60)}}, t0,
			"2001:db8::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@120"},
		{"a /64 outlasting its /48: three segments", []ban{{"2001:db8::/48", min(60)}, {"2001:db8:0:5::/64", min(120)}}, t0,
			"2001:db8::-2001:db8:0:4:ffff:ffff:ffff:ffff@60 2001:db8:0:5::-2001:db8:0:5:ffff:ffff:ffff:ffff@120 2001:db8:0:6::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@60"},
		{"the /48 expired: the /64 alone", []ban{{"2001:db8::/48", min(60)}, {"2001:db8:0:5::/64", min(120)}}, min(61),
			"2001:db8:0:5::-2001:db8:0:5:ffff:ffff:ffff:ffff@120"},
		{"the /64 at the start of the /48", []ban{{"2001:db8::/48", min(60)}, {"2001:db8::/64", sysbanPermanent}}, t0,
			"2001:db8::-2001:db8::ffff:ffff:ffff:ffff@P 2001:db8:0:1::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@60"},
		{"the /64 at the end of the /48", []ban{{"2001:db8::/48", min(60)}, {"2001:db8:0:ffff::/64", min(90)}}, t0,
			"2001:db8::-2001:db8:0:fffe:ffff:ffff:ffff:ffff@60 2001:db8:0:ffff::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@90"},
		{"three levels", []ban{{"10.0.0.0/8", min(10)}, {"10.1.0.0/16", min(20)}, {"10.1.2.0/24", min(30)}}, t0,
			"10.0.0.0-10.0.255.255@10 10.1.0.0-10.1.1.255@20 10.1.2.0-10.1.2.255@30 10.1.3.0-10.1.255.255@20 10.2.0.0-10.255.255.255@10"},
		{"neighbours of one expiry merge", []ban{{"192.0.2.0/25", min(10)}, {"192.0.2.128/25", min(10)}}, t0,
			"192.0.2.0-192.0.2.255@10"},
		{"neighbours of two expiries stay apart", []ban{{"192.0.2.0/25", min(10)}, {"192.0.2.128/25", min(20)}}, t0,
			"192.0.2.0-192.0.2.127@10 192.0.2.128-192.0.2.255@20"},
		{"to the last address", []ban{{"255.255.255.0/24", min(10)}, {"255.255.255.128/25", min(20)}}, t0,
			"255.255.255.0-255.255.255.127@10 255.255.255.128-255.255.255.255@20"},
		{"all expired", []ban{{"192.0.2.0/24", min(10)}}, min(10), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := newPrefixBook().v4
			if strings.Contains(tt.bans[0].prefix, ":") {
				fb = newPrefixBook().v6
			}
			for _, b := range tt.bans {
				fb.put(netip.MustParsePrefix(b.prefix), b.until)
			}
			if got := segmentsString(fb.fam, fb.segments(tt.at), t0); got != tt.want {
				t.Errorf("segments:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// sysbanPermanent is the zero expiry: a permanent ban.
var sysbanPermanent time.Time

// TestPlanOverlaps: the element changes for the overlap cases, step by
// step: the kernel never gets an element that overlaps one it holds
// (every overlapping old segment is deleted in the same batch, before the
// additions), and an unban of the /48 leaves the /64.
func TestPlanOverlaps(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	fb := newFamilyBook(famV6)
	p48, p64 := netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("2001:db8:0:5::/64")

	// The /64 first.
	fb.put(p64, t0.Add(2*time.Hour))
	del, add := fb.plan(t0)
	if len(del) != 0 || len(add) != 2 || add[0].Timeout != 2*time.Hour {
		t.Fatalf("first /64: del %v add %v", del, add)
	}
	// The /48 over it, shorter: the /64's element stays, two around it.
	fb.put(p48, t0.Add(time.Hour))
	del, add = fb.plan(t0)
	if len(del) != 0 || len(add) != 4 {
		t.Fatalf("/48 over the /64: del %v add %v", del, add)
	}
	checkDisjoint(t, fb)
	// A ban of the same /64 again, shorter: nothing changes.
	fb.put(p64, t0.Add(time.Minute))
	if del, add = fb.plan(t0); len(del)+len(add) != 0 {
		t.Fatalf("shorter ban of the /64 again: del %v add %v", del, add)
	}
	// Lifting the /48: its two segments go, the /64 stays.
	fb.lift(p48)
	del, add = fb.plan(t0.Add(time.Minute))
	if len(del) != 4 || len(add) != 0 {
		t.Fatalf("lift /48: del %v add %v", del, add)
	}
	if fb.kernel.Len() != 1 {
		t.Fatalf("after lifting the /48 the kernel holds %v", fb.kernel)
	}
	// A longer /48 again: one segment replaces the /64's (deleted first).
	fb.put(p48, t0.Add(3*time.Hour))
	del, add = fb.plan(t0.Add(2 * time.Minute))
	if len(del) != 2 || len(add) != 2 || del[0].IntervalEnd || !del[1].IntervalEnd {
		t.Fatalf("longer /48: del %v add %v", del, add)
	}
	checkDisjoint(t, fb)
	// Segments that expired in the kernel are not deleted (ENOENT).
	fb.put(netip.MustParsePrefix("2001:db9::/64"), t0.Add(3*time.Minute))
	fb.plan(t0.Add(2 * time.Minute))
	fb.lift(p48)
	del, _ = fb.plan(t0.Add(4 * time.Minute))
	for _, e := range del {
		if a, _ := netip.AddrFromSlice(e.Key); strings.HasPrefix(a.String(), "2001:db9:") {
			t.Errorf("deletes the expired segment %v", a)
		}
	}
}

// checkDisjoint fails when two segments the kernel would hold overlap.
func checkDisjoint(t *testing.T, fb *familyBook) {
	t.Helper()
	var prev *segEntry
	fb.kernel.Ascend(func(s segEntry) bool {
		if prev != nil && !prev.to.less(s.from) {
			t.Errorf("segments %v and %v overlap", *prev, s)
		}
		prev = &s
		return true
	})
}

// TestBanNetwork: Ban.Network and Target in the forms the backend uses.
func TestBanNetwork(t *testing.T) {
	for _, tc := range []struct {
		ban    sysban.Ban
		net    string
		target string
	}{
		{sysban.Ban{Addr: netip.MustParseAddr("::ffff:192.0.2.1")}, "192.0.2.1/32", "192.0.2.1"},
		{sysban.Ban{Prefix: netip.MustParsePrefix("::ffff:192.0.2.0/120")}, "192.0.2.0/24", "192.0.2.0/24"},
		{sysban.Ban{Prefix: netip.MustParsePrefix("2001:db8::5/64"), Addr: netip.MustParseAddr("2001:db8::5")}, "2001:db8::/64", "2001:db8::/64"},
	} {
		if got := tc.ban.Network().String(); got != tc.net || tc.ban.Target() != tc.target {
			t.Errorf("%+v: Network %s Target %s, want %s %s", tc.ban, got, tc.ban.Target(), tc.net, tc.target)
		}
	}
}

// fill100k puts 100k prefix bans into fb: 50k /48s with a longer /64
// inside each, planned every planEvery pairs (0: never).
func fill100k(fb *familyBook, now time.Time, planEvery int) {
	for j := range 50_000 {
		var a [16]byte
		a[0], a[1], a[2], a[3], a[4], a[5] = 0x2a, 0x01, byte(j>>24), byte(j>>16), byte(j>>8), byte(j)
		fb.put(netip.PrefixFrom(netip.AddrFrom16(a), 48), now.Add(time.Hour))
		a[7] = 1
		fb.put(netip.PrefixFrom(netip.AddrFrom16(a), 64), now.Add(2*time.Hour))
		if planEvery > 0 && j%planEvery == planEvery-1 {
			fb.plan(now)
		}
	}
}

// BenchmarkPlan100k times the planning of 100k prefix bans (50k /48s
// with a longer /64 inside each) from an empty book: the userspace half
// of applying them.
func BenchmarkPlan100k(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		fb := newFamilyBook(famV6)
		fill100k(fb, now, 0)
		fb.plan(now)
	}
}

// BenchmarkPlanRestore100k times the planning of 100k prefix bans
// arriving in ten batches of 10k, as the store restores them at start.
func BenchmarkPlanRestore100k(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		fill100k(newFamilyBook(famV6), now, 5000)
	}
}

// BenchmarkPlanOneIn100k times the planning of one more /64 ban (inside
// a banned /48, so its span is re-planned) in a book of 100k: the
// userspace cost of a ban in steady state.
func BenchmarkPlanOneIn100k(b *testing.B) {
	now := time.Now()
	fb := newFamilyBook(famV6)
	fill100k(fb, now, 0)
	fb.plan(now)
	j := 0
	for b.Loop() {
		var a [16]byte
		a[0], a[1], a[2], a[3], a[4], a[5], a[7] = 0x2a, 0x01, byte(j>>24), byte(j>>16), byte(j>>8), byte(j), 2
		fb.put(netip.PrefixFrom(netip.AddrFrom16(a), 64), now.Add(3*time.Hour))
		fb.plan(now)
		j = (j + 1) % 50_000
	}
}

// simKernel is an interval set as the kernel keeps it: it refuses to
// delete an absent element or add one overlapping another, and expires
// elements by their timeout.
type simKernel struct {
	fam  family
	segs map[u128]segEntry // by start
}

// ranges decodes elems (start, then an interval end unless the range runs
// to the family's last address) into segments with their expiry at now.
func (k *simKernel) ranges(t *testing.T, elems []nftables.SetElement, now time.Time) []segEntry {
	t.Helper()
	var out []segEntry
	for i := 0; i < len(elems); i++ {
		e := elems[i]
		if e.IntervalEnd {
			t.Fatalf("interval end %x without a start", e.Key)
		}
		s := segEntry{from: k.keyU(e.Key), to: k.fam.last()}
		if e.Timeout != 0 {
			s.expiry = now.Add(e.Timeout).UnixNano()
		}
		if i+1 < len(elems) && elems[i+1].IntervalEnd {
			s.to = k.keyU(elems[i+1].Key).prev()
			i++
		}
		out = append(out, s)
	}
	return out
}

func (k *simKernel) keyU(key []byte) u128 {
	a, _ := netip.AddrFromSlice(key)
	return k.fam.toU(a)
}

// apply deletes del and adds add at now, as one batch.
func (k *simKernel) apply(t *testing.T, del, add []nftables.SetElement, now time.Time) {
	t.Helper()
	for from, s := range k.segs {
		if !live(s.expiry, now.UnixNano()) {
			delete(k.segs, from)
		}
	}
	for _, s := range k.ranges(t, del, now) {
		old, ok := k.segs[s.from]
		if !ok || old.to != s.to {
			t.Fatalf("deletes %v-%v, which the kernel does not hold (%v)", k.fam.toAddr(s.from), k.fam.toAddr(s.to), ok)
		}
		delete(k.segs, s.from)
	}
	for _, s := range k.ranges(t, add, now) {
		for _, o := range k.segs {
			if !o.to.less(s.from) && !s.to.less(o.from) {
				t.Fatalf("adds %v-%v overlapping %v-%v", k.fam.toAddr(s.from), k.fam.toAddr(s.to), k.fam.toAddr(o.from), k.fam.toAddr(o.to))
			}
		}
		k.segs[s.from] = s
	}
}

// coverage is the kernel's live segments in order, adjacent ones of one
// expiry merged (expiries rounded to the millisecond, as timeouts are).
func coverage(fam family, segs []segEntry, now time.Time) string {
	slices.SortFunc(segs, func(a, b segEntry) int {
		if a.from.less(b.from) {
			return -1
		}
		return 1
	})
	var out []segEntry
	for _, s := range segs {
		if !live(s.expiry, now.UnixNano()) {
			continue
		}
		if s.expiry != 0 {
			s.expiry = (s.expiry + int64(time.Millisecond) - 1) / int64(time.Millisecond)
		}
		if n := len(out); n > 0 && out[n-1].expiry == s.expiry && out[n-1].to.next() == s.from {
			out[n-1].to = s.to
			continue
		}
		out = append(out, s)
	}
	var b strings.Builder
	for _, s := range out {
		fmt.Fprintf(&b, "%v-%v@%d ", fam.toAddr(s.from), fam.toAddr(s.to), s.expiry)
	}
	return b.String()
}

// TestPlanIncremental: random bans, longer bans and lifts of nested and
// neighbouring prefixes, with the clock moving past expiries, planned a
// few at a time (by the spans they touch) into a simulated kernel that
// refuses what the real one refuses. After every step the kernel holds
// what a full sweep of the bans says, and the book knows it.
func TestPlanIncremental(t *testing.T) {
	for _, tc := range []struct {
		fam  family
		high bool // the network at the end of the space (its last address)
	}{{famV4, false}, {famV4, true}, {famV6, false}, {famV6, true}} {
		fam := tc.fam
		t.Run(fmt.Sprint(fam.width, tc.high), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(fam.width), 7))
			t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			now := t0
			fb := newFamilyBook(fam)
			k := &simKernel{fam: fam, segs: map[u128]segEntry{}}
			// Prefixes in a small space so that they nest and touch: the
			// top 4 bits vary at lengths from 2 to 8 (plus the last
			// address of the family, and permanent bans).
			base := fam.width - 12
			randPrefix := func() netip.Prefix {
				var u u128
				if fam.width == 32 {
					u.lo = uint64(rng.Uint32())
				} else {
					u = u128{rng.Uint64(), rng.Uint64()}
				}
				// Keep the low 12 bits: prefixes of one small network,
				// so that they nest and touch.
				m := hostMask(12)
				u = u128{u.hi & m.hi, u.lo & m.lo}
				if tc.high {
					top := fam.last()
					u = u128{u.hi | top.hi&^m.hi, u.lo | top.lo&^m.lo}
				}
				if rng.IntN(8) == 0 {
					u = hostMask(12)
				}
				bits := base + 2 + rng.IntN(8)
				f, _ := fam.span(u, bits)
				return netip.PrefixFrom(fam.toAddr(f), bits)
			}
			var live []netip.Prefix
			for step := range 600 {
				for range 1 + rng.IntN(3) {
					switch op := rng.IntN(10); {
					case op < 6:
						p := randPrefix()
						exp := now.Add(time.Duration(1+rng.IntN(40)) * time.Minute)
						if rng.IntN(10) == 0 {
							exp = time.Time{}
						}
						fb.put(p, exp)
						live = append(live, p)
					case len(live) > 0:
						i := rng.IntN(len(live))
						fb.lift(live[i])
						live = slices.Delete(live, i, i+1)
					}
				}
				if rng.IntN(3) == 0 {
					now = now.Add(time.Duration(rng.IntN(10)) * time.Minute)
				}
				// Plan the spans only (full sweeps are tested above and
				// come on their own every so many changes).
				enc := encoder{fam: fam, now: now}
				if step%50 == 49 {
					fb.planAll(&enc)
				} else {
					fb.planRegions(&enc)
				}
				fb.dirty = fb.dirty[:0]
				del, add := enc.elements()
				k.apply(t, del, add, now)

				var held, inKernel []segEntry
				fb.kernel.Ascend(func(s segEntry) bool { held = append(held, s); return true })
				for _, s := range k.segs {
					inKernel = append(inKernel, s)
				}
				full := newFamilyBook(fam)
				fb.bans.Ascend(func(e banEntry) bool { full.bans.ReplaceOrInsert(e); return true })
				want := coverage(fam, full.segments(now), now)
				if got := coverage(fam, inKernel, now); got != want {
					t.Fatalf("step %d: the kernel holds\n%s\nwant\n%s", step, got, want)
				}
				if got := coverage(fam, held, now); got != want {
					t.Fatalf("step %d: the book thinks the kernel holds\n%s\nwant\n%s", step, got, want)
				}
				checkDisjoint(t, fb)
			}
		})
	}
}

// TestPlanSpansSharingASegment: two changed bans whose spans one kernel
// segment joins (three neighbours of one expiry, merged; the outer two
// banned longer) are planned as one span, so that the segment is deleted
// once and nothing added in the batch is deleted in it.
func TestPlanSpansSharingASegment(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	fb := newFamilyBook(famV4)
	k := &simKernel{fam: famV4, segs: map[u128]segEntry{}}
	for _, p := range []string{"192.0.2.0/26", "192.0.2.64/26", "192.0.2.128/26"} {
		fb.put(netip.MustParsePrefix(p), t0.Add(time.Hour))
	}
	for i := range 100 { // enough other bans that the next plan goes by spans
		fb.put(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24), t0.Add(time.Duration(i+1)*time.Minute))
	}
	del, add := fb.plan(t0)
	k.apply(t, del, add, t0)
	fb.put(netip.MustParsePrefix("192.0.2.0/26"), t0.Add(2*time.Hour))
	fb.put(netip.MustParsePrefix("192.0.2.128/26"), t0.Add(2*time.Hour))
	if len(fb.dirty) != 2 || 8*len(fb.dirty) >= fb.bans.Len() {
		t.Fatalf("the plan would not go by spans: %d changes, %d bans", len(fb.dirty), fb.bans.Len())
	}
	del, add = fb.plan(t0)
	k.apply(t, del, add, t0)
	var segs []segEntry
	for _, s := range k.segs {
		segs = append(segs, s)
	}
	got := coverage(famV4, segs, t0)
	for _, want := range []string{"192.0.2.0-192.0.2.63@", "192.0.2.64-192.0.2.127@", "192.0.2.128-192.0.2.191@"} {
		if !strings.Contains(got, want) {
			t.Errorf("kernel lacks %s: %s", want, got)
		}
	}
}
