package pipeline

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/internal/sample"
)

func TestJailWindow(t *testing.T) {
	type step struct {
		after   time.Duration // clock advance before this failure
		wantBan bool
	}
	tests := []struct {
		name  string
		jail  JailSpec
		steps []step
	}{
		{"maxretry-th within findtime bans", sshJail, []step{{0, false}, {time.Minute, false}, {time.Minute, true}}},
		{"spread failures do not ban", sshJail, []step{{0, false}, {6 * time.Minute, false}, {6 * time.Minute, false}, {6 * time.Minute, false}}},
		{"window slides", sshJail, []step{{0, false}, {6 * time.Minute, false}, {6 * time.Minute, false}, {time.Minute, true}}},
		{"findtime boundary is inclusive", sshJail, []step{{0, false}, {5 * time.Minute, false}, {5 * time.Minute, true}}},
		{"just past findtime does not ban", sshJail, []step{{0, false}, {5 * time.Minute, false}, {5*time.Minute + 1, false}}},
		{"banned address does not ban again", sshJail, []step{{0, false}, {0, false}, {0, true}, {0, false}, {0, false}, {0, false}, {59 * time.Minute, false}}},
		{"expiry allows a new ban after a fresh count", sshJail, []step{
			{0, false}, {0, false}, {0, true}, {time.Hour, false}, {0, false}, {0, true},
		}},
		{"counter resets after ban", sshJail, []step{
			{0, false}, {0, false}, {0, true}, {time.Hour, false}, {0, false},
		}},
		{"maxretry 1", JailSpec{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Second, BanTime: time.Second}, []step{
			{0, true}, {time.Second, true},
		}},
		{"permanent never expires", JailSpec{Name: "j", Filter: "sshd", MaxRetry: 2, FindTime: time.Minute, BanTime: sysban.Permanent}, []step{
			{0, false}, {0, true}, {100 * 365 * 24 * time.Hour, false}, {0, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := newTestPipeline(t, Config{Jails: []JailSpec{tt.jail}}, Options{Now: clk.Now})
			bans := 0
			for i, s := range tt.steps {
				clk.Advance(s.after)
				p.Handle(sshMsg("192.0.2.7"))
				got := keptQueued(p)
				if (len(got) == 1) != s.wantBan || len(got) > 1 {
					t.Fatalf("step %d: %d bans, want ban=%v", i, len(got), s.wantBan)
				}
				if len(got) == 1 {
					bans++
					b := got[0]
					b.Lines = nil // the log lines are checked elsewhere, if at all
					want := sysban.Ban{Jail: tt.jail.Name, Prefix: netip.MustParsePrefix("192.0.2.7/32"), Addr: netip.MustParseAddr("192.0.2.7"), Start: clk.Now(), Duration: tt.jail.BanTime, Failures: tt.jail.MaxRetry}
					if !reflect.DeepEqual(b, want) {
						t.Fatalf("step %d: ban %+v, want %+v", i, b, want)
					}
				}
			}
			st := p.Stats().Jails[tt.jail.Name]
			if st.TotalBanned != uint64(bans) || st.TotalFailed != uint64(len(tt.steps)) {
				t.Errorf("stats %+v, want TotalBanned %d TotalFailed %d", st, bans, len(tt.steps))
			}
		})
	}
}

func TestNeverBanned(t *testing.T) {
	tests := []struct {
		name   string
		addr   string
		sender string
	}{
		{"protected prefix", "198.51.100.10", ""},
		{"protected v6", "2001:db8:1::5", ""},
		{"ignoreip", "203.0.113.77", ""},
		{"ignoreip mapped prefix", "192.0.2.200", ""},
		{"ignoreip via mapped address", "::ffff:203.0.113.5", ""},
		{"loopback", "127.0.0.1", ""},
		{"loopback v6", "::1", ""},
		{"mapped loopback", "::ffff:127.0.0.1", ""},
		{"unspecified", "0.0.0.0", ""},
		{"link-local", "169.254.1.1", ""},
		{"link-local v6 with zone", "fe80::1%eth0", ""},
		{"multicast", "224.0.0.1", ""},
		{"sender", "192.0.2.50", "192.0.2.50:514"},
		{"sender mapped", "192.0.2.51", "[::ffff:192.0.2.51]:514"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jail := JailSpec{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute,
				IgnoreIP: []netip.Prefix{
					netip.MustParsePrefix("203.0.113.0/24"),
					netip.MustParsePrefix("::ffff:192.0.2.128/121"),
				}}
			p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{Protected: []netip.Prefix{
				netip.MustParsePrefix("198.51.100.10/32"),
				netip.MustParsePrefix("2001:db8:1::/48"),
			}})
			m := sshMsg(tt.addr)
			if tt.sender != "" {
				m.Sender = netip.MustParseAddrPort(tt.sender)
			}
			for range 3 {
				p.Handle(m)
			}
			if got := queued(p); len(got) != 0 {
				t.Fatalf("banned %v", got)
			}
			if st := p.Stats().Jails["j"]; st.Ignored != 3 || st.TotalFailed != 0 {
				t.Fatalf("stats %+v, want 3 ignored, 0 failed", st)
			}
		})
	}
	// Control: the same setup bans an ordinary address.
	p := newTestPipeline(t, Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute}}}, Options{})
	m := sshMsg("192.0.2.9")
	m.Sender = netip.MustParseAddrPort("192.0.2.50:514")
	p.Handle(m)
	if got := queued(p); len(got) != 1 {
		t.Fatalf("control: %d bans, want 1", len(got))
	}
}

func TestHostnameNotBanned(t *testing.T) {
	p := newTestPipeline(t, Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute, UseDNS: UseDNSNo}}}, Options{})
	m := &sysban.Message{AppName: "sshd", Text: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=jumbotrace.cmu.ac.th user=root"}
	p.Handle(m)
	if got := queued(p); len(got) != 0 {
		t.Fatalf("banned %v", got)
	}
	if st := p.Stats().Jails["j"]; st.Unresolved != 1 || st.TotalFailed != 0 {
		t.Fatalf("stats %+v, want 1 unresolved", st)
	}
}

func TestMappedAddressBannedAsIPv4(t *testing.T) {
	p := newTestPipeline(t, Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 2, FindTime: time.Minute, BanTime: time.Minute}}}, Options{})
	// One failure logged mapped, one plain: the same host, one ban.
	p.Handle(sshMsg("::ffff:192.0.2.7"))
	p.Handle(sshMsg("192.0.2.7"))
	got := queued(p)
	if len(got) != 1 || got[0].Addr != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("bans %v, want one of 192.0.2.7", got)
	}
}

func TestEvictionBound(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	const maxTracked = 64
	p := newTestPipeline(t, Config{MaxTracked: maxTracked}, Options{})
	j := p.tab.Load().jails[0]
	limits := 0
	for i := range j.shards {
		limits += j.shards[i].limit
	}
	if limits != maxTracked {
		t.Fatalf("shard limits sum to %d, want %d", limits, maxTracked)
	}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if i >= 1<<24 {
			t.Fatal("test generates too many addresses")
		}
		v := j.failure(a, 0, "")
		if v.evicted {
			j.evicted.Add(1)
		}
	}
	tracked := 0
	for i := range j.shards {
		s := &j.shards[i]
		if s.tracked.len() > s.limit {
			t.Fatalf("shard %d tracks %d, limit %d", i, s.tracked.len(), s.limit)
		}
		tracked += s.tracked.len()
	}
	if tracked > maxTracked {
		t.Fatalf("tracking %d addresses, bound %d", tracked, maxTracked)
	}
	if ev := j.evicted.Load(); ev != uint64(n-tracked) {
		t.Fatalf("evicted %d, want %d", ev, n-tracked)
	}
	st := p.Stats().Jails["sshd"]
	if st.CurrentlyFailed != tracked || st.Evicted != uint64(n-tracked) {
		t.Fatalf("stats %+v", st)
	}
}

func TestEvictionViaHandle(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{MaxTracked: 100}, Options{Now: clk.Now})
	for i := range 5000 {
		p.Handle(sshMsg(fmt.Sprintf("2001:db8::%x", i)))
	}
	st := p.Stats().Jails["sshd"]
	if st.CurrentlyFailed > 100 || st.Evicted != 5000-uint64(st.CurrentlyFailed) || st.TotalFailed != 5000 {
		t.Fatalf("stats %+v", st)
	}
	// Once findtime has passed nothing is currently failing.
	clk.Advance(sshJail.FindTime + 1)
	if st := p.Stats().Jails["sshd"]; st.CurrentlyFailed != 0 {
		t.Fatalf("after findtime: CurrentlyFailed %d, want 0", st.CurrentlyFailed)
	}
}

// TestStaleEntriesMakeRoom: entries whose failures left the window are
// dropped before anything live is evicted.
func TestStaleEntriesMakeRoom(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{MaxTracked: 1}, Options{Now: clk.Now})
	p.Handle(sshMsg("192.0.2.1"))
	clk.Advance(sshJail.FindTime + 1)
	p.Handle(sshMsg("192.0.2.2"))
	if st := p.Stats().Jails["sshd"]; st.Evicted != 0 || st.CurrentlyFailed != 1 {
		t.Fatalf("stats %+v, want no eviction", st)
	}
	p.Handle(sshMsg("192.0.2.3"))
	if st := p.Stats().Jails["sshd"]; st.Evicted != 1 {
		t.Fatalf("stats %+v, want 1 eviction", st)
	}
}

func TestStatsBanExpiry(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{}, Options{Now: clk.Now})
	for _, a := range []string{"192.0.2.1", "192.0.2.2"} {
		for range 3 {
			p.Handle(sshMsg(a))
		}
	}
	p.Handle(sshMsg("192.0.2.3"))
	// Decided, not kept: queued, not yet counted as banned.
	st := p.Stats()
	if js := st.Jails["sshd"]; js.CurrentlyBanned != 0 || js.TotalBanned != 0 || js.CurrentlyFailed != 1 || st.Queued != 2 {
		t.Fatalf("before apply: stats %+v", st)
	}
	keptQueued(p)
	st = p.Stats()
	if js := st.Jails["sshd"]; js.CurrentlyBanned != 2 || js.TotalBanned != 2 || js.CurrentlyFailed != 1 || st.Queued != 0 {
		t.Fatalf("after apply: stats %+v", st)
	}
	clk.Advance(time.Hour)
	if js := p.Stats().Jails["sshd"]; js.CurrentlyBanned != 0 || js.TotalBanned != 2 || js.CurrentlyFailed != 0 {
		t.Fatalf("after bantime: %+v", js)
	}
}

func TestAlreadyBannedNoticeRateLimited(t *testing.T) {
	clk := newFakeClock()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	p := newTestPipeline(t, Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: 24 * time.Hour}}}, Options{Now: clk.Now, Logger: log})
	for range 5 {
		p.Handle(sshMsg("192.0.2.7"))
	}
	keptQueued(p)
	clk.Advance(noticeInterval)
	for range 5 {
		p.Handle(sshMsg("192.0.2.7"))
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, `msg="already banned"`); n != 2 {
		t.Errorf("%d already-banned notices, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "msg=ban "); n != 1 || !strings.Contains(out, "addr=192.0.2.7 failures=1") {
		t.Errorf("want one ban line with addr and failures:\n%s", out)
	}
	if st := p.Stats().Jails["j"]; st.AlreadyBanned != 9 || st.TotalFailed != 10 {
		t.Errorf("stats %+v", st)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestConcurrentHandleBansOnce(t *testing.T) {
	p := newTestPipeline(t, Config{}, Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				p.Handle(sshMsg("192.0.2.7"))
				p.Handle(sshMsg("2001:db8::7"))
				p.Handle(&sysban.Message{AppName: "cron", Text: "x"})
			}
		})
	}
	wg.Wait()
	got := queued(p)
	if len(got) != 2 {
		t.Fatalf("%d bans, want 2: %v", len(got), got)
	}
	st := p.Stats()
	if st.Messages != 8*200*3 || st.Unrouted != 8*200 || st.Jails["sshd"].TotalFailed != 8*200*2 || st.Jails["sshd"].AlreadyBanned != 8*200*2-6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSampleLogBans replays filters/testdata/sshd.log through Handle with the
// syslog timestamps as the clock and a maxretry-5 jail: only the CentOS
// attacker with eight pam_unix failures in 21 seconds is banned (at the
// fifth; the other three hit an existing ban); the hostnames are counted as
// unresolved; nobody else reaches five inside findtime (the repeated line
// counts 4).
func TestSampleLogBans(t *testing.T) {
	clk := newFakeClock()
	jail := JailSpec{Name: "sshd", Filter: "sshd", MaxRetry: 5, FindTime: 10 * time.Minute, BanTime: time.Hour, UseDNS: UseDNSNo}
	p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{Now: clk.Now})
	fx, err := sample.Read(filepath.Join(samplesDir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range fx.Lines {
		ts := fl.Msg.Timestamp
		for ts.Before(clk.Now()) { // syslog timestamps have no year
			ts = ts.AddDate(1, 0, 0)
		}
		clk.Advance(ts.Sub(clk.Now()))
		p.Handle(&fl.Msg)
	}
	// 58.83.131.67 failed in eight sessions (one pam_unix line each);
	// 116.10.191.188 in one session of six attempts: pam_unix's line for
	// the first, "PAM 5 more authentication failures" for the rest
	// (attempt accounting: one attempt, one failure).
	bans := keptQueued(p)
	if len(bans) != 2 || bans[0].Addr != netip.MustParseAddr("58.83.131.67") || bans[0].Failures != 5 ||
		bans[1].Addr != netip.MustParseAddr("116.10.191.188") || bans[1].Failures != 5 {
		t.Fatalf("bans %+v, want 58.83.131.67 and 116.10.191.188 after 5 failures", bans)
	}
	st := p.Stats().Jails["sshd"]
	if st.Unresolved != 7 || st.AlreadyBanned != 4 || st.TotalBanned != 2 {
		t.Errorf("stats %+v, want 7 unresolved, 4 already banned (the sixth attempt), 2 banned", st)
	}
}

func TestRememberedBansBounded(t *testing.T) {
	p := newTestPipeline(t, Config{MaxTracked: 16, Jails: []JailSpec{banOnce}}, Options{})
	for i := range 1000 {
		p.Handle(sshMsg(addrN(i)))
	}
	if got := len(keptQueued(p)); got != 1000 {
		t.Fatalf("%d bans decided, want 1000: the bound must not suppress bans", got)
	}
	st := p.Stats().Jails["j"]
	if st.CurrentlyBanned > 16 || st.BansForgotten != 1000-uint64(st.CurrentlyBanned) {
		t.Fatalf("stats %+v", st)
	}
}

// TestAlreadyBannedNoticeBurst: many banned addresses failing in the same
// second log at most noticeBurst notices per jail; the next second's first
// notice says how many were held back.
func TestAlreadyBannedNoticeBurst(t *testing.T) {
	clk := newFakeClock()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	p := newTestPipeline(t, Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: 24 * time.Hour}}}, Options{Now: clk.Now, Logger: log})
	const n = noticeBurst + 30
	for i := range n { // ban n addresses
		p.Handle(sshMsg(addrN(i)))
	}
	for i := range n { // each fails again while banned, all in one second
		p.Handle(sshMsg(addrN(i)))
	}
	clk.Advance(time.Second)
	p.Handle(sshMsg(addrN(n))) // a new address: banned
	p.Handle(sshMsg(addrN(n)))
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if got := strings.Count(out, `msg="already banned"`); got != noticeBurst+1 {
		t.Errorf("%d already-banned notices, want %d", got, noticeBurst+1)
	}
	if !strings.Contains(out, "notices_held_back=30") {
		t.Errorf("no notice says 30 were held back:\n%s", out)
	}
	if st := p.Stats().Jails["j"]; st.AlreadyBanned != n+1 {
		t.Errorf("already banned = %d, want %d: held-back notices still count", st.AlreadyBanned, n+1)
	}
}
