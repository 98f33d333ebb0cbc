package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sysban/sysban"
)

// clock is an injectable, settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t testing.TB, c *clock) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", FileName)
	s, err := Open(path, Options{Now: c.Now, Logger: quietLogger(), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustRecord(t testing.TB, s *Store, recs ...Record) {
	t.Helper()
	if err := s.Record(recs); err != nil {
		t.Fatal(err)
	}
}

func rec(jail, addr string, start time.Time, d time.Duration) Record {
	return Record{Ban: sysban.Ban{Jail: jail, Addr: netip.MustParseAddr(addr), Start: start, Duration: d, Failures: 5}, Source: "pipeline"}
}

// key identifies a ban for comparisons.
func key(r Record) string { return r.Jail + " " + r.Addr.String() }

func keys(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = key(r)
	}
	slices.Sort(out)
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	start := c.Now().Add(-time.Minute)
	long := strings.Repeat("x", 3000)
	var lines []string
	for i := range 12 {
		lines = append(lines, fmt.Sprintf("line %d %s", i, long))
	}
	in := []Record{
		{Ban: sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("192.0.2.7"), Start: start, Duration: time.Hour, Failures: 5, Lines: []string{"Failed password for root from 192.0.2.7"}}, Source: "pipeline"},
		{Ban: sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("2001:db8::7"), Start: start, Duration: sysban.Permanent, Failures: 3, Lines: lines}, Source: "manual"},
		{Ban: sysban.Ban{Jail: "postfix", Addr: netip.MustParseAddr("::ffff:198.51.100.1"), Duration: 10 * time.Minute}, Source: strings.Repeat("s", 200)},
	}
	mustRecord(t, s, in...)

	due, err := s.Due(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 3 {
		t.Fatalf("Due returned %d bans, want 3: %v", len(due), keys(due))
	}
	got := map[string]Record{}
	for _, r := range due {
		got[key(r)] = r
	}

	r := got["sshd 192.0.2.7"]
	if !r.Start.Equal(start) || r.Duration != time.Hour || r.Failures != 5 || r.Offences != 1 || r.Source != "pipeline" ||
		!slices.Equal(r.Lines, in[0].Lines) {
		t.Errorf("sshd v4 round trip: got %+v", r)
	}
	r = got["sshd 2001:db8::7"]
	if !r.Permanent() || r.Source != "manual" || len(r.Lines) != MaxLines {
		t.Errorf("sshd v6 permanent: got permanent=%v source=%q %d lines", r.Permanent(), r.Source, len(r.Lines))
	}
	if len(r.Lines) == MaxLines && (!strings.HasPrefix(r.Lines[0], "line 2 ") || len(r.Lines[0]) != MaxLineBytes) {
		t.Errorf("lines must be the last %d cut at %d bytes; first kept is %.10q (%d bytes)", MaxLines, MaxLineBytes, r.Lines[0], len(r.Lines[0]))
	}
	// A mapped address is stored as the IPv4 address, and a zero start is now.
	r, ok := got["postfix 198.51.100.1"]
	if !ok {
		t.Fatalf("mapped address not stored as IPv4: %v", keys(due))
	}
	if !r.Start.Equal(c.Now()) || len(r.Source) != maxSource {
		t.Errorf("postfix: start %v (want %v), source %d bytes", r.Start, c.Now(), len(r.Source))
	}
}

func TestDueFiltersExpired(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s,
		rec("sshd", "192.0.2.1", t0, time.Minute),
		rec("sshd", "192.0.2.2", t0, time.Hour),
		rec("sshd", "192.0.2.3", t0, sysban.Permanent),
		rec("sshd", "192.0.2.4", t0.Add(-2*time.Hour), time.Hour), // over before it was stored
	)
	cases := []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{"sshd 192.0.2.1", "sshd 192.0.2.2", "sshd 192.0.2.3"}},
		{time.Minute - time.Nanosecond, []string{"sshd 192.0.2.1", "sshd 192.0.2.2", "sshd 192.0.2.3"}},
		{time.Minute, []string{"sshd 192.0.2.2", "sshd 192.0.2.3"}}, // expiry is exclusive
		{time.Hour, []string{"sshd 192.0.2.3"}},
		{100 * 365 * 24 * time.Hour, []string{"sshd 192.0.2.3"}},
	}
	for _, tc := range cases {
		due, err := s.Due(t0.Add(tc.at))
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(due); !slices.Equal(got, tc.want) {
			t.Errorf("Due(t0+%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestOffencesCountAcrossBans(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	a := netip.MustParseAddr("203.0.113.9")
	for i := range 3 {
		mustRecord(t, s, rec("sshd", a.String(), c.Now(), time.Minute))
		c.Add(time.Hour)
		if n, err := s.Offences("sshd", pfx(a.String())); err != nil || n != i+1 {
			t.Fatalf("after ban %d: Offences = %d, %v; want %d", i+1, n, err, i+1)
		}
	}
	// Other jails and other addresses count separately.
	mustRecord(t, s, rec("postfix", a.String(), c.Now(), time.Minute), rec("sshd", "203.0.113.10", c.Now(), time.Minute))
	// Two bans of one address in one batch count as two offences.
	mustRecord(t, s, rec("dovecot", a.String(), c.Now(), time.Minute), rec("dovecot", a.String(), c.Now(), time.Hour))

	for _, tc := range []struct {
		jail, addr string
		want       int
	}{
		{"sshd", "203.0.113.9", 3},
		{"sshd", "::ffff:203.0.113.9", 3},
		{"postfix", "203.0.113.9", 1},
		{"dovecot", "203.0.113.9", 2},
		{"sshd", "203.0.113.10", 1},
		{"sshd", "203.0.113.11", 0},
		{"nginx", "203.0.113.9", 0},
	} {
		if n, err := s.Offences(tc.jail, pfx(tc.addr)); err != nil || n != tc.want {
			t.Errorf("Offences(%s, %s) = %d, %v; want %d", tc.jail, tc.addr, n, err, tc.want)
		}
	}
	// The current record carries the count it was banned with.
	got, err := s.Lookup(pfx(a.String()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"dovecot": 2, "postfix": 1, "sshd": 3}
	if len(got) != len(want) {
		t.Fatalf("Lookup = %v, want jails %v", keys(got), want)
	}
	for _, r := range got {
		if r.Offences != want[r.Jail] {
			t.Errorf("Lookup %s: Offences %d, want %d", r.Jail, r.Offences, want[r.Jail])
		}
		if r.Jail == "dovecot" && r.Duration != time.Hour {
			t.Errorf("the later ban of a batch must win: dovecot duration %v", r.Duration)
		}
	}
}

func TestLookup(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s,
		rec("a", "192.0.2.1", t0, time.Hour), rec("a", "192.0.2.2", t0, time.Hour),
		rec("b", "192.0.2.2", t0, time.Hour), rec("b", "192.0.2.3", t0, time.Hour),
		rec("b-c", "192.0.2.2", t0, time.Hour), rec("bc", "192.0.2.2", t0, time.Hour),
		rec("z", "2001:db8::2", t0, time.Hour),
	)
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"192.0.2.2", []string{"a 192.0.2.2", "b 192.0.2.2", "b-c 192.0.2.2", "bc 192.0.2.2"}},
		{"::ffff:192.0.2.1", []string{"a 192.0.2.1"}},
		{"2001:db8::2", []string{"z 2001:db8::2"}},
		{"192.0.2.9", nil},
	} {
		got, err := s.Lookup(pfx(tc.addr))
		if err != nil {
			t.Fatal(err)
		}
		if k := keys(got); !slices.Equal(k, tc.want) && !(len(k) == 0 && len(tc.want) == 0) {
			t.Errorf("Lookup(%s) = %v, want %v", tc.addr, k, tc.want)
		}
	}
	if _, err := s.Lookup(netip.Prefix{}); err == nil {
		t.Error("Lookup of an invalid address must fail")
	}
}

func TestRemove(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s,
		rec("sshd", "192.0.2.1", t0, time.Hour), rec("postfix", "192.0.2.1", t0, time.Hour),
		rec("sshd", "192.0.2.2", t0, time.Hour), rec("postfix", "192.0.2.3", t0, time.Hour),
	)
	c.Add(time.Minute)

	removed, err := s.Remove("sshd", []netip.Prefix{pfx("192.0.2.1"), pfx("192.0.2.99")}, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if k := keys(removed); !slices.Equal(k, []string{"sshd 192.0.2.1"}) {
		t.Errorf("Remove(sshd) removed %v", k)
	}
	removed, err = s.Remove("", []netip.Prefix{pfx("::ffff:192.0.2.2"), pfx("192.0.2.3")}, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if k := keys(removed); !slices.Equal(k, []string{"postfix 192.0.2.3", "sshd 192.0.2.2"}) {
		t.Errorf("Remove(every jail) removed %v", k)
	}
	due, _ := s.Due(c.Now())
	if k := keys(due); !slices.Equal(k, []string{"postfix 192.0.2.1"}) {
		t.Errorf("after removes Due = %v", k)
	}
	hist, err := s.History(netip.MustParseAddr("192.0.2.1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Kind != EventUnban || hist[0].Jail != "sshd" || hist[0].Reason != "manual" || !hist[0].Time.Equal(c.Now()) {
		t.Errorf("history after unban: %+v", hist)
	}
	// An unban is not an offence.
	if n, _ := s.Offences("sshd", pfx("192.0.2.1")); n != 1 {
		t.Errorf("Offences after unban = %d, want 1", n)
	}
}

func TestRemoveJail(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	var recs []Record
	for i := range 50 {
		recs = append(recs, rec("sshd", fmt.Sprintf("192.0.2.%d", i), t0, time.Hour), rec("sshd2", fmt.Sprintf("192.0.2.%d", i), t0, time.Hour))
	}
	mustRecord(t, s, recs...)
	removed, err := s.RemoveJail("sshd", "reload")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 50 {
		t.Errorf("RemoveJail removed %d, want 50", len(removed))
	}
	due, _ := s.Due(t0)
	if len(due) != 50 || due[0].Jail != "sshd2" {
		t.Errorf("after RemoveJail(sshd): %d due, first %v", len(due), key(due[0]))
	}
	if removed, _ = s.RemoveJail("", "unban all"); len(removed) != 50 {
		t.Errorf("RemoveJail(all) removed %d, want 50", len(removed))
	}
	if due, _ = s.Due(t0); len(due) != 0 {
		t.Errorf("after RemoveJail(all): %d due", len(due))
	}
	h, _ := s.History(netip.MustParseAddr("192.0.2.7"), 1)
	if len(h) != 1 || h[0].Kind != EventUnban {
		t.Errorf("last event of 192.0.2.7: %+v", h)
	}
}

func TestHistory(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	addrs := []string{"192.0.2.1", "192.0.2.2", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::"}
	for i := range 4 {
		for _, a := range addrs {
			mustRecord(t, s, rec("sshd", a, c.Now(), time.Minute))
		}
		c.Add(time.Hour)
		_ = i
	}
	for _, a := range addrs {
		h, err := s.History(netip.MustParseAddr(a), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 4 {
			t.Errorf("History(%s): %d events, want 4", a, len(h))
			continue
		}
		for i, e := range h {
			if e.Addr.String() != a || e.Kind != EventBan || e.Offences != 4-i || e.Source != "pipeline" || e.Failures != 5 || e.Duration != time.Minute {
				t.Errorf("History(%s)[%d] = %+v", a, i, e)
			}
			if i > 0 && !e.Time.Before(h[i-1].Time) {
				t.Errorf("History(%s) not newest first: %v then %v", a, h[i-1].Time, e.Time)
			}
		}
		if h2, _ := s.History(netip.MustParseAddr(a), 2); len(h2) != 2 || !h2[0].Time.Equal(h[0].Time) {
			t.Errorf("History(%s, 2) = %d events", a, len(h2))
		}
	}
	if h, _ := s.History(netip.MustParseAddr("192.0.2.3"), 0); len(h) != 0 {
		t.Errorf("History of a never banned address: %+v", h)
	}
}

func TestPurge(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	a := netip.MustParseAddr("192.0.2.1")
	mustRecord(t, s, rec("sshd", "192.0.2.1", t0, time.Hour), rec("sshd", "192.0.2.2", t0, sysban.Permanent))
	c.Add(2 * time.Hour)
	mustRecord(t, s, rec("sshd", "192.0.2.1", c.Now(), 24*time.Hour), rec("sshd", "192.0.2.3", c.Now(), time.Minute))
	c.Add(time.Hour) // 192.0.2.3's ban is over

	n, err := s.Purge(t0.Add(time.Hour)) // forget the first round
	if err != nil {
		t.Fatal(err)
	}
	// Deleted: two history events of t0 and the expired current ban of .3.
	if n != 3 {
		t.Errorf("Purge deleted %d entries, want 3", n)
	}
	if k, _ := s.Offences("sshd", pfx(a.String())); k != 1 {
		t.Errorf("Offences after purge = %d, want 1", k)
	}
	due, _ := s.Due(c.Now())
	if k := keys(due); !slices.Equal(k, []string{"sshd 192.0.2.1", "sshd 192.0.2.2"}) {
		t.Errorf("Due after purge = %v", k)
	}
	if got, _ := s.Lookup(pfx("192.0.2.3")); len(got) != 0 {
		t.Errorf("expired ban still current after purge: %v", keys(got))
	}
	if h, _ := s.History(netip.MustParseAddr("192.0.2.3"), 0); len(h) != 1 {
		t.Errorf("recent history of an expired ban must stay: %+v", h)
	}
	if n, _ := s.Purge(t0.Add(time.Hour)); n != 0 {
		t.Errorf("second Purge deleted %d", n)
	}
}

func TestPurgeLarge(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	s.purgeChunk = 7
	const n = 7*2*3 + 5 // several chunks, the last one partial
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Ban: sysban.Ban{Jail: "sshd", Addr: addrN(i), Start: c.Now(), Duration: time.Minute}}
	}
	mustRecord(t, s, recs...)
	c.Add(time.Hour)
	got, err := s.Purge(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got != 2*n {
		t.Errorf("Purge deleted %d, want %d (bans and history)", got, 2*n)
	}
}

// addrN returns a distinct address for each i, IPv4 and IPv6 alternately.
func addrN(i int) netip.Addr {
	if i%2 == 0 {
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	var b [16]byte
	b[0], b[1], b[12], b[13], b[14], b[15] = 0x20, 0x01, byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.AddrFrom16(b)
}

func TestReopenKeepsEverything(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("2001:db8::5")
	mustRecord(t, s, rec("sshd", a.String(), c.Now(), time.Hour), rec("sshd", "192.0.2.5", c.Now(), sysban.Permanent))
	if _, err := s.Remove("sshd", []netip.Prefix{pfx(a.String())}, "manual"); err != nil {
		t.Fatal(err)
	}
	mustRecord(t, s, rec("sshd", a.String(), c.Now(), time.Hour))
	before, _ := s.Due(c.Now())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.Due(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || len(before) != 2 {
		t.Fatalf("Due before close %v, after reopen %v", keys(before), keys(after))
	}
	for i := range after {
		b, a := before[i], after[i]
		if key(a) != key(b) || !a.Start.Equal(b.Start) || a.Duration != b.Duration || a.Offences != b.Offences {
			t.Errorf("after reopen %+v, before %+v", a, b)
		}
	}
	if h, _ := s.History(a, 0); len(h) != 3 {
		t.Errorf("history after reopen: %d events, want 3", len(h))
	}
	mustRecord(t, s, rec("sshd", a.String(), c.Now(), time.Hour))
	if n, _ := s.Offences("sshd", pfx(a.String())); n != 3 {
		t.Errorf("offences continue after reopen: %d, want 3", n)
	}
}

func TestOpenPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "sysban")
	s, err := Open(filepath.Join(dir, FileName), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask can only take bits away.
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s: mode %v, want at most %v", path, got, want)
		}
	}
}

func TestOpenBadFile(t *testing.T) {
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7 + i>>8)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"garbage", func(t *testing.T, path string) { write(t, path, garbage) }, "not a sysban state file, or damaged"},
		{"short text", func(t *testing.T, path string) { write(t, path, []byte("hello\n")) }, "not a sysban state file, or damaged"},
		{"zeros", func(t *testing.T, path string) { write(t, path, make([]byte, 16<<10)) }, "not a sysban state file, or damaged"},
		{"truncated store", func(t *testing.T, path string) {
			s, err := Open(path, Options{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := os.Truncate(path, 4096); err != nil {
				t.Fatal(err)
			}
		}, "damaged"},
		{"foreign bbolt", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
			db.Close()
		}, "not a sysban state file"},
		{"newer schema", func(t *testing.T, path string) {
			s, err := Open(path, Options{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte{99}) })
			s.Close()
		}, "schema version 99"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			tc.setup(t, path)
			s, err := Open(path, Options{Logger: quietLogger(), Timeout: 100 * time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a bad file")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "store: open "+path) {
				t.Errorf("error %q, want it to start with %q and contain %q", err, "store: open "+path, tc.want)
			}
		})
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenTimesOut(t *testing.T) {
	c := newClock()
	s, path := openTest(t, c)
	_ = s
	// The lock stays held for the whole test: Open returning at all is
	// its timeout at work (30 s only turns a hang into a failure).
	start := time.Now()
	var (
		s2   *Store
		err  error
		took time.Duration
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s2, err = Open(path, Options{Logger: quietLogger(), Timeout: 200 * time.Millisecond})
		took = time.Since(start)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a second Open of a locked file still waits after 30s: its 200ms timeout did not apply")
	}
	if err == nil {
		s2.Close()
		t.Fatal("a second Open of a file in use succeeded")
	}
	if !strings.Contains(err.Error(), "locked by another process") || !errors.Is(err, bolt.ErrTimeout) {
		t.Errorf("error %q does not say the file is locked", err)
	}
	if took < 100*time.Millisecond { // bbolt polls the lock every 50ms, giving up a poll early
		t.Errorf("second Open gave up after %v, before its 200ms timeout", took)
	}
}

func TestRecordRejectsInvalid(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	for _, r := range []Record{
		{Ban: sysban.Ban{Jail: "", Addr: netip.MustParseAddr("192.0.2.1")}},
		{Ban: sysban.Ban{Jail: "a\x00b", Addr: netip.MustParseAddr("192.0.2.1")}},
		{Ban: sysban.Ban{Jail: strings.Repeat("j", 300), Addr: netip.MustParseAddr("192.0.2.1")}},
		{Ban: sysban.Ban{Jail: "sshd"}},
	} {
		err := s.Record([]Record{rec("sshd", "192.0.2.50", c.Now(), time.Hour), r})
		if err == nil || !strings.HasPrefix(err.Error(), "store: record: ban 1: ") {
			t.Errorf("Record(%q, %v): error %v", r.Jail, r.Addr, err)
		}
	}
	if due, _ := s.Due(c.Now()); len(due) != 0 {
		t.Errorf("a rejected batch stored %v", keys(due))
	}
}

func TestDueSkipsDamagedRecord(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	mustRecord(t, s, rec("sshd", "192.0.2.1", c.Now(), time.Hour), rec("sshd", "192.0.2.2", c.Now(), time.Hour))
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBans).Put(banKey("sshd", pfx("192.0.2.1")), []byte{valueVersion, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if k := keys(due); !slices.Equal(k, []string{"sshd 192.0.2.2"}) {
		t.Errorf("Due with one damaged record = %v", k)
	}
	if _, err := s.Lookup(pfx("192.0.2.1")); err == nil {
		t.Error("Lookup of a damaged record must say so")
	}
	if removed, err := s.Remove("sshd", []netip.Prefix{pfx("192.0.2.1")}, "manual"); err != nil || len(removed) != 1 {
		t.Errorf("Remove of a damaged record: %v, %v", removed, err)
	}
}

// TestBansSince: ban events at or after the cut, of every address and
// jail, oldest first; older bans and unbans are left out.
func TestBansSince(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	mustRecord(t, s, rec("sshd", "192.0.2.1", t0.Add(-2*time.Hour), time.Minute)) // before the cut
	mustRecord(t, s, rec("sshd", "2001:db8::1", t0.Add(-time.Hour), time.Minute)) // exactly at it
	mustRecord(t, s, rec("postfix", "192.0.2.9", t0.Add(-30*time.Minute), time.Hour))
	mustRecord(t, s, rec("sshd", "192.0.2.1", t0.Add(-40*time.Minute), time.Minute))
	if _, err := s.Remove("postfix", []netip.Prefix{pfx("192.0.2.9")}, "manual"); err != nil {
		t.Fatal(err)
	}
	got, err := s.BansSince(t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, e := range got {
		desc = append(desc, fmt.Sprintf("%s %s %s %d", e.Time.Sub(t0), e.Jail, e.Addr, e.Failures))
	}
	want := []string{"-1h0m0s sshd 2001:db8::1 5", "-40m0s sshd 192.0.2.1 5", "-30m0s postfix 192.0.2.9 5"}
	if !slices.Equal(desc, want) {
		t.Errorf("BansSince = %q, want %q", desc, want)
	}
}

// pfx parses an address (a single-address prefix) or a prefix.
func pfx(s string) netip.Prefix {
	p, err := sysban.ParsePrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}

// EachDue lists what Due lists, without the lines.
func TestEachDueIsDueWithoutLines(t *testing.T) {
	now := time.Now()
	s, err := Open(filepath.Join(t.TempDir(), FileName), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Record([]Record{
		{Ban: sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("203.0.113.7"), Start: now, Duration: time.Hour, Lines: []string{"a", "b"}}, Source: "fleet:hosta:web1"},
		{Ban: sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("2001:db8::7"), Start: now, Duration: sysban.Permanent}},
		{Ban: sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("203.0.113.8"), Start: now.Add(-2 * time.Hour), Duration: time.Hour, Lines: []string{"c"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(now)
	if err != nil {
		t.Fatal(err)
	}
	var each []Record
	if err := s.EachDue(now, func(r Record) { each = append(each, r) }); err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 || len(each) != len(due) {
		t.Fatalf("Due %d bans, EachDue %d; want 2 each", len(due), len(each))
	}
	for i := range due {
		want := due[i]
		want.Lines = nil
		if !reflect.DeepEqual(each[i], want) {
			t.Errorf("EachDue[%d] = %+v, want %+v", i, each[i], want)
		}
	}
}
