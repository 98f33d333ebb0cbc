package pipeline

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// arenaGet reads one line back as linesOf does.
func arenaGet(a *lineArena, ref uint64) string {
	var b strings.Builder
	a.writeTo(&b, ref)
	if b.Len() != a.size(ref) {
		panic(fmt.Sprintf("size %d, wrote %d", a.size(ref), b.Len()))
	}
	return b.String()
}

func TestLineArena(t *testing.T) {
	line := func(i, n int) string {
		s := fmt.Sprintf("line %d ", i)
		return s + strings.Repeat(string(rune('a'+i%26)), max(0, n-len(s)))
	}
	tests := []struct {
		name    string
		max     int
		lens    []int // lines written in order
		intact  int   // how many of the newest must read back intact
		lostOld bool  // the oldest must read back as lostLine
	}{
		{"empty line", minLineArena, []int{0, 0}, 2, false},
		{"fits without wrapping", minLineArena, []int{70, 90, 512, 1}, 4, false},
		{"grows, keeping every offset", 4 * minLineArena, slices.Repeat([]int{300}, 40), 40, false},
		// 4096/70 = 58 lines fit; the 59th wraps over the first.
		{"wraps over the oldest", minLineArena, slices.Repeat([]int{70}, 59), 58, true},
		{"wraps many times", minLineArena, slices.Repeat([]int{512, 77, 3}, 200), 10, true},
		{"line across the end", minLineArena, append(slices.Repeat([]int{100}, 40), 500), 9, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := lineArena{max: tt.max}
			var refs []uint64
			var want []string
			for i, n := range tt.lens {
				want = append(want, line(i, n))
				refs = append(refs, a.put(want[i]))
			}
			if len(a.buf) > tt.max {
				t.Fatalf("arena of %d bytes, bound %d", len(a.buf), tt.max)
			}
			for k := len(refs) - tt.intact; k < len(refs); k++ {
				if got := arenaGet(&a, refs[k]); got != want[k] {
					t.Errorf("line %d = %.40q, want %.40q", k, got, want[k])
				}
			}
			if got := arenaGet(&a, refs[0]); tt.lostOld != (got == lostLine) || (!tt.lostOld && got != want[0]) {
				t.Errorf("oldest line = %.40q, want lost %v", got, tt.lostOld)
			}
		})
	}
}

// checkTable verifies the table's structures agree: every record indexed
// once under its own key, the LRU list a permutation of the records, rings
// used by exactly the records that point at them.
func checkTable(t *testing.T, s *addrTable) {
	t.Helper()
	if len(s.failing) > s.limit {
		t.Errorf("%d records, limit %d", len(s.failing), s.limit)
	}
	slots := 0
	for _, v := range s.table {
		if v != 0 {
			slots++
		}
	}
	if slots != len(s.failing) {
		t.Errorf("%d table slots used for %d records", slots, len(s.failing))
	}
	ringUsers := make(map[uint32]int)
	for i := range s.failing {
		r := &s.failing[i]
		k := r.key
		if got, ok := s.find(&k, hashKey(&k, s.seed)); !ok || got != uint32(i) {
			t.Errorf("record %d: find = %d, %v", i, got, ok)
		}
		if r.ref&ringFlag != 0 {
			ringUsers[uint32(r.ref&^ringFlag)]++
		}
	}
	for _, id := range s.freeRings {
		ringUsers[id]++
	}
	for id := range s.rings {
		if ringUsers[uint32(id)] != 1 {
			t.Errorf("ring %d used %d times", id, ringUsers[uint32(id)])
		}
	}
	seen := 0
	prev := uint32(none)
	for i := s.stalest; i != none; i = s.failing[i].next {
		if seen++; seen > len(s.failing) {
			t.Fatal("LRU list loops")
		}
		if s.failing[i].prev != prev {
			t.Errorf("record %d: prev %d, want %d", i, s.failing[i].prev, prev)
		}
		prev = i
	}
	if seen != len(s.failing) || s.newest != prev {
		t.Errorf("LRU list holds %d of %d records, ends at %d, newest %d", seen, len(s.failing), prev, s.newest)
	}
}

// TestRecordLayout holds the per-address record to the size the memory
// budget was worked out with (TestTrackedBytesPerAddress).
func TestRecordLayout(t *testing.T) {
	if got := unsafe.Sizeof(record{}); got != 40 {
		t.Errorf("record is %d bytes, want 40", got)
	}
}

// TestAddrTableModel runs random failures, untracks (as a ban does) and
// prunes against a plain model of the table (addresses in order of last
// failure, each with its last keep failures) and compares what note
// returns, the lines, the count and the invariants.
func TestAddrTableModel(t *testing.T) {
	tests := []struct {
		keep, limit, addrs int
		findTime           int64
		// outcomes that must occur, so that the run cannot pass by never
		// reaching the paths it is meant to compare
		want []string
	}{
		{1, 16, 40, 25, []string{"evicted", "stale", "full"}},
		{2, 16, 40, 25, []string{"evicted", "stale", "full"}},
		{3, 64, 300, 100, []string{"evicted", "stale", "full", "lost"}},
		{5, 1000, 3000, 1000, []string{"stale", "full", "lost"}},
		{20, 64, 100, 1000, []string{"evicted", "full", "lost"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("keep=%d,limit=%d", tt.keep, tt.limit), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.keep), uint64(tt.limit)))
			var tab addrTable
			tab.init(tt.limit, rng.Uint64(), shardLineBytes(tt.limit, 1))
			m := tableModel{fails: make(map[addrKey][]modelFailure)}
			now := int64(0)
			seen := make(map[string]int)
			for step := range 30_000 {
				now += int64(rng.IntN(3))
				n := hotOrAny(rng, tt.addrs)
				k := keyOf(netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)}), &singleAddrMask)
				h := hashKey(&k, tab.seed)
				switch op := rng.IntN(100); {
				case op < 90:
					line := fmt.Sprintf("failure %d ", step) + strings.Repeat("x", rng.IntN(200))
					before := len(m.order)
					i, kept, oldest, evicted := tab.note(&k, h, now, line, tt.keep, now-tt.findTime)
					mKept, mOldest, mEvicted := m.note(k, now, line, tt.keep, now-tt.findTime, tt.limit)
					if kept != mKept || oldest != mOldest || evicted != mEvicted || tab.failing[i].key != k {
						t.Fatalf("step %d: note = %d, %d, %v; model %d, %d, %v", step, kept, oldest, evicted, mKept, mOldest, mEvicted)
					}
					got, want := tab.linesOf(i), m.lines(k)
					lost := markLost(got, want)
					if !slices.Equal(got, want) {
						t.Fatalf("step %d: lines %q, model %q", step, got, want)
					}
					seen["evicted"] += b2i(evicted)
					seen["stale"] += b2i(len(m.order) < before)
					seen["full"] += b2i(kept == tt.keep)
					seen["lost"] += b2i(lost > 0)
				case op < 96:
					tab.untrackKey(&k, h)
					m.untrack(k)
				default:
					tab.prune(now - tt.findTime)
					m.dropStale(now - tt.findTime)
				}
				if tab.len() != len(m.order) {
					t.Fatalf("step %d: %d tracked, model %d", step, tab.len(), len(m.order))
				}
				if step%1000 == 0 {
					checkTable(t, &tab)
				}
			}
			t.Logf("outcomes: %v", seen)
			for _, k := range tt.want {
				if seen[k] == 0 {
					t.Errorf("no %s outcome in the run", k)
				}
			}
		})
	}
}

// hotOrAny picks one of addrs addresses for a model run: half the time one
// of a few hot ones (they fail again and again), else any (they evict).
func hotOrAny(rng *rand.Rand, addrs int) int {
	n := rng.IntN(addrs)
	if rng.IntN(2) == 0 {
		n = rng.IntN(max(1, addrs/10))
	}
	return n
}

// markLost marks in want, a model's lines, the lines got lost: the model
// keeps every line, the table loses an address's oldest to its bounded
// ring. It returns how many were lost.
func markLost(got, want []string) int {
	lost := 0
	for lost < len(got) && got[lost] == lostLine {
		lost++
	}
	copy(want, slices.Repeat([]string{lostLine}, min(lost, len(want))))
	return lost
}

// tableModel is the address table's contract written plainly.
type tableModel struct {
	order []addrKey // stalest first
	fails map[addrKey][]modelFailure
}

func (m *tableModel) untrack(k addrKey) {
	if _, ok := m.fails[k]; ok {
		delete(m.fails, k)
		m.order = slices.DeleteFunc(m.order, func(o addrKey) bool { return o == k })
	}
}

func (m *tableModel) dropStale(stale int64) {
	for len(m.order) > 0 && last(m.fails[m.order[0]]).at <= stale {
		m.untrack(m.order[0])
	}
}

func (m *tableModel) note(k addrKey, at int64, line string, keep int, stale int64, limit int) (kept int, oldest int64, evicted bool) {
	fs, ok := m.fails[k]
	if !ok {
		m.dropStale(stale)
		if len(m.order) >= limit {
			m.untrack(m.order[0])
			evicted = true
		}
	} else {
		m.order = slices.DeleteFunc(m.order, func(o addrKey) bool { return o == k })
	}
	m.order = append(m.order, k)
	fs = append(fs, modelFailure{at, line})
	if len(fs) > keep {
		fs = fs[1:]
	}
	m.fails[k] = fs
	return len(fs), fs[0].at, evicted
}

func (m *tableModel) lines(k addrKey) []string {
	var out []string
	for _, f := range m.fails[k] {
		out = append(out, f.line[:min(len(f.line), maxLineBytes)])
	}
	return out
}
