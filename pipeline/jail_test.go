package pipeline

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArenaCut(t *testing.T) {
	j := newJail(JailSpec{Name: "j", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute}, 16, 1)
	long := strings.Repeat("x", 3*maxLineBytes)
	v := j.failure(netip.MustParseAddr("192.0.2.1"), 0, long)
	if !v.ban || len(v.lines) != 1 || v.lines[0] != long[:maxLineBytes] {
		t.Fatalf("verdict %+v, want a ban with the line cut to %d bytes", v, maxLineBytes)
	}
}

// TestLinesAfterWrap: an address whose earlier lines were overwritten by a
// flood of other failures is still banned on its count, its lost lines
// standing as lostLine, its recent ones intact.
func TestLinesAfterWrap(t *testing.T) {
	spec := JailSpec{Name: "j", MaxRetry: 4, FindTime: time.Hour, BanTime: time.Hour}
	j := newJail(spec, 16, 1) // one shard, one ring of minLineArena bytes
	if len(j.shards) != 1 || j.shards[0].tracked.lines.max != minLineArena {
		t.Fatalf("%d shards, line ring %d: the test assumes one of %d", len(j.shards), j.shards[0].tracked.lines.max, minLineArena)
	}
	target := netip.MustParseAddr("203.0.113.7")
	msg := func(i int) string {
		return fmt.Sprintf("Failed password for invalid user admin%d from 203.0.113.7 port 52211 ssh2", i)
	}
	now := int64(0)
	for i := range 2 {
		now++
		if v := j.failure(target, now, msg(i)); v.ban {
			t.Fatalf("banned after %d failures", i+1)
		}
	}
	// Fill the ring and more, from 10 other addresses failing twice each
	// (never enough to ban or evict).
	for i := range 20 {
		now++
		other := netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 10)})
		if v := j.failure(other, now, strings.Repeat("z", 300)); v.ban || v.evicted {
			t.Fatalf("other %d: %+v", i, v)
		}
	}
	now++
	j.failure(target, now, msg(2))
	now++
	v := j.failure(target, now, msg(3))
	want := []string{lostLine, lostLine, msg(2), msg(3)}
	if !v.ban || v.failures != 4 || !slices.Equal(v.lines, want) {
		t.Fatalf("verdict %+v, want a ban with lines %q", v, want)
	}
}

// TestEvictionCounted fills a jail past its bound from distinct addresses:
// it tracks exactly its bound and counts every other address as evicted.
func TestEvictionCounted(t *testing.T) {
	for _, maxTracked := range []int{1, 16, 1000, 100_000} {
		t.Run(fmt.Sprint(maxTracked), func(t *testing.T) {
			j := newJail(JailSpec{Name: "j", MaxRetry: 3, FindTime: time.Hour, BanTime: time.Hour}, maxTracked, 7)
			n := 3*maxTracked + 1000
			evicted := 0
			for i := range n {
				if j.failure(distinctAddr(i), int64(i), "x").evicted {
					evicted++
				}
			}
			tracked, _ := j.counts(int64(n))
			// Every shard saw far more than its limit, so all are full.
			if tracked != maxTracked || evicted != n-maxTracked {
				t.Errorf("tracking %d, evicted %d; want %d and %d", tracked, evicted, maxTracked, n-maxTracked)
			}
			for i := range j.shards {
				checkShard(t, &j.shards[i])
			}
		})
	}
}

// checkShard checks the invariants of a shard's address table.
func checkShard(t *testing.T, s *shard) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	checkTable(t, &s.tracked)
}

// TestJailModel runs random failures, remembered bans, forgotten bans and
// time against a plain model of the jail's rules (per shard: addresses in
// order of last failure, their last MaxRetry failures) and compares every
// verdict, the counts and the shard invariants.
func TestJailModel(t *testing.T) {
	tests := []struct {
		maxRetry, maxTracked, addrs int
		findTime                    int64
		// verdicts that must occur, so that the run cannot pass by
		// never reaching the paths it is meant to compare
		want []string
	}{
		{1, 16, 40, 100, []string{"ban", "banned", "forgotBan", "intact"}},
		{2, 16, 40, 100, []string{"ban", "banned", "evicted", "forgotBan", "intact", "lost"}},
		{3, 64, 300, 100, []string{"ban", "banned", "evicted", "intact", "lost"}},
		{5, 1000, 3000, 1000, []string{"ban", "banned", "evicted", "intact", "lost"}},
		{20, 64, 100, 1000, []string{"ban", "evicted", "lost"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("maxretry=%d,maxtracked=%d", tt.maxRetry, tt.maxTracked), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.maxRetry), uint64(tt.maxTracked)))
			spec := JailSpec{Name: "j", MaxRetry: tt.maxRetry, FindTime: time.Duration(tt.findTime), BanTime: 300}
			j := newJail(spec, tt.maxTracked, rng.Uint64())
			m := newJailModel(j)
			now := int64(0)
			seen := make(map[string]int)
			for step := range 30_000 {
				now += int64(rng.IntN(3))
				n := hotOrAny(rng, tt.addrs)
				a := netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)})
				switch rng.IntN(16) { // v4-mapped and v6 too
				case 0:
					a = netip.AddrFrom16(a.As16())
				case 1:
					a = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", n))
				}
				switch op := rng.IntN(100); {
				case op < 90:
					line := fmt.Sprintf("failure %d from %s ", step, a) + strings.Repeat("x", rng.IntN(200))
					got := j.failure(a, now, line)
					want := m.failure(a, now, line)
					lost := markLost(got.lines, want.lines)
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("step %d: failure(%s, %d) = %+v, model %+v", step, a, now, got, want)
					}
					seen["ban"] += b2i(got.ban)
					seen["banned"] += b2i(got.banned)
					seen["evicted"] += b2i(got.evicted)
					seen["forgotBan"] += b2i(got.forgotBan)
					seen["lost"] += b2i(lost > 0)
					seen["intact"] += b2i(got.ban && lost == 0)
				case op < 94:
					// Restored or manual bans are kept; a jail's own
					// longer bantime is not yet.
					j.remember(single(a), now+50, op < 92)
					m.remember(a, now+50, op < 92)
				case op < 95:
					j.keep(single(a))
					m.keep(a)
				case op < 97:
					j.forget(single(a))
					m.forget(a)
				default:
					f, b := j.counts(now)
					mf, mb := m.counts(now)
					if f != mf || b != mb {
						t.Fatalf("step %d: counts %d, %d; model %d, %d", step, f, b, mf, mb)
					}
				}
				if step%1000 == 0 {
					for i := range j.shards {
						checkShard(t, &j.shards[i])
					}
				}
			}
			t.Logf("verdicts: %v", seen)
			for _, k := range tt.want {
				if seen[k] == 0 {
					t.Errorf("no %s verdict in the run", k)
				}
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// jailModel is the jail's contract written plainly: per shard, the
// tracked addresses in order of last failure with their last MaxRetry
// failures, and the remembered bans.
type jailModel struct {
	j      *jail
	shards []modelShard
}

type modelShard struct {
	tableModel
	banned  map[addrKey]banState
	pruneAt int
}

type modelFailure struct {
	at   int64
	line string
}

func newJailModel(j *jail) *jailModel {
	m := &jailModel{j: j, shards: make([]modelShard, len(j.shards))}
	for i := range m.shards {
		m.shards[i] = modelShard{tableModel: tableModel{fails: make(map[addrKey][]modelFailure)}, banned: make(map[addrKey]banState), pruneAt: 64}
	}
	return m
}

func (m *jailModel) shard(k addrKey) (*modelShard, int) {
	i := int(hashKey(&k, m.j.seed) & m.j.shardMask)
	return &m.shards[i], m.j.shards[i].limit
}

func (m *jailModel) failure(a netip.Addr, now int64, line string) verdict {
	var v verdict
	k := keyOf(a, &singleAddrMask)
	s, limit := m.shard(k)
	maxRetry := m.j.spec.MaxRetry
	if b, ok := s.banned[k]; ok {
		if now < b.expiry {
			v.banned = true
			if !b.noticed || now-b.lastNotice >= int64(noticeInterval) {
				v.notice = true
				b.noticed, b.lastNotice = true, now
				s.banned[k] = b
			}
			return v
		}
		delete(s.banned, k)
	}
	kept, oldest, evicted := s.note(k, now, line, maxRetry, now-m.j.findTime, limit)
	v.evicted = evicted
	if kept == maxRetry && now-oldest <= m.j.findTime {
		fs := s.fails[k]
		v.ban, v.failures = true, maxRetry
		for _, f := range fs {
			v.lines = append(v.lines, f.line)
		}
		s.untrack(k)
		s.banned[k] = banState{expiry: now + m.j.banTime}
		if len(s.banned) >= s.pruneAt {
			s.pruneBans(now)
		}
		if len(s.banned) > limit {
			// The jail forgets an arbitrary other ban (map order): forget
			// the one it did.
			js := m.j.shardOf(&k)
			for old := range s.banned {
				if _, kept := js.banned[old]; !kept && old != k {
					delete(s.banned, old)
					v.forgotBan = true
					break
				}
			}
		}
	}
	return v
}

func (s *modelShard) pruneBans(now int64) {
	for k, b := range s.banned {
		if now >= b.expiry {
			delete(s.banned, k)
		}
	}
	s.pruneAt = max(64, 2*len(s.banned))
}

func last(fs []modelFailure) modelFailure { return fs[len(fs)-1] }

func (m *jailModel) remember(a netip.Addr, expiry int64, kept bool) {
	k := keyOf(a, &singleAddrMask)
	s, limit := m.shard(k)
	b, ok := s.banned[k]
	switch {
	case ok && b.expiry < expiry:
		s.banned[k] = banState{expiry: expiry, kept: kept || b.kept}
	case ok:
		b.kept = b.kept || kept
		s.banned[k] = b
	case len(s.banned) < limit:
		s.banned[k] = banState{expiry: expiry, kept: kept}
	}
	s.untrack(k)
}

func (m *jailModel) keep(a netip.Addr) {
	k := keyOf(a, &singleAddrMask)
	s, _ := m.shard(k)
	if b, ok := s.banned[k]; ok {
		b.kept = true
		s.banned[k] = b
	}
}

func (m *jailModel) forget(a netip.Addr) {
	k := keyOf(a, &singleAddrMask)
	s, _ := m.shard(k)
	delete(s.banned, k)
}

func (m *jailModel) counts(now int64) (failing, banned int) {
	for i := range m.shards {
		s := &m.shards[i]
		s.dropStale(now - m.j.findTime)
		s.pruneBans(now)
		failing += len(s.order)
		for _, b := range s.banned {
			banned += b2i(b.kept)
		}
	}
	return failing, banned
}

// TestJailGivesMemoryBack: once an attack's addresses age out of findtime
// the shards drop their slabs, tables, rings and lines (or shrink them when
// a few addresses remain), and tracking works as before afterwards.
func TestJailGivesMemoryBack(t *testing.T) {
	const n = 20_000
	spec := JailSpec{Name: "j", MaxRetry: 3, FindTime: 1000, BanTime: 1000}
	j := newJail(spec, n, 1)
	held := func() (records, slots, rings, lines int) {
		for i := range j.shards {
			s := &j.shards[i].tracked
			records += cap(s.failing)
			slots += len(s.table)
			rings += len(s.rings)
			lines += len(s.lines.buf)
		}
		return
	}
	for i := range n {
		j.failure(distinctAddr(i), 0, "first")
		if i%2 == 0 {
			j.failure(distinctAddr(i), 0, "second") // a ring
		}
	}
	// A few addresses fail again later and stay inside findtime.
	for i := range n / 100 {
		j.failure(distinctAddr(i*100+1), 500, "later")
	}
	if r, s, g, l := held(); r < n || s < n || g < n/2 || l == 0 {
		t.Fatalf("after the attack: %d records, %d slots, %d rings, %d line bytes", r, s, g, l)
	}
	if failing, _ := j.counts(1000); failing != n/100 {
		t.Fatalf("%d failing at 1000, want %d", failing, n/100)
	}
	if r, s, _, _ := held(); r > n/10 || s > n/10 {
		t.Errorf("with %d left: %d records and %d table slots held", n/100, r, s)
	}
	for i := range j.shards {
		checkShard(t, &j.shards[i])
	}
	if failing, _ := j.counts(1500); failing != 0 {
		t.Fatalf("%d failing at 1500, want 0", failing)
	}
	if r, s, g, l := held(); r+s+g+l != 0 {
		t.Errorf("all aged out: %d records, %d slots, %d rings, %d line bytes held", r, s, g, l)
	}
	// Tracking, lines and bans after the release.
	a := distinctAddr(7)
	var v verdict
	for k := range 3 {
		v = j.failure(a, 2000+int64(k), fmt.Sprint("again ", k))
	}
	if want := []string{"again 0", "again 1", "again 2"}; !v.ban || !slices.Equal(v.lines, want) {
		t.Errorf("after release: %+v, want a ban with %q", v, want)
	}
}
