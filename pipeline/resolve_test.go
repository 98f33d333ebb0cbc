package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// fakeDNS answers from a table and counts lookups.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	calls   map[string]int
}

func (d *fakeDNS) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.calls == nil {
		d.calls = map[string]int{}
	}
	d.calls[host]++
	if a, ok := d.answers[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func (d *fakeDNS) count(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[host]
}

func pamMsg(rhost string) *sysban.Message {
	return &sysban.Message{AppName: "sshd", Text: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=" + rhost + "  user=root"}
}

func TestUseDNS(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	tests := []struct {
		name       string
		usedns     string
		host       string
		answers    map[string][]netip.Addr
		wantBans   string // "addr addr" in order
		unresolved uint64
		ignored    uint64
		lookups    int
		warn       bool
	}{
		{"no: never resolved", UseDNSNo, "bad.example", map[string][]netip.Addr{"bad.example": addrs("192.0.2.9")}, "", 2, 0, 0, false},
		{"warn: resolved and logged", "", "bad.example", map[string][]netip.Addr{"bad.example": addrs("192.0.2.9")}, "192.0.2.9", 0, 0, 1, true},
		{"yes: every address, no warning", UseDNSYes, "multi.example", map[string][]netip.Addr{"multi.example": addrs("192.0.2.10", "::ffff:192.0.2.11")}, "192.0.2.10 192.0.2.11", 0, 0, 1, false},
		{"yes: does not resolve", UseDNSYes, "nx.example", nil, "", 2, 0, 1, false},
		{"yes: protected results", UseDNSYes, "lo.example", map[string][]netip.Addr{"lo.example": addrs("127.0.0.1", "203.0.113.1")}, "", 0, 4, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dns := &fakeDNS{answers: tt.answers}
			var logs bytes.Buffer
			mu := &sync.Mutex{}
			jail := JailSpec{Name: "j", Filter: "sshd", MaxRetry: 2, FindTime: time.Hour, BanTime: time.Hour, UseDNS: tt.usedns}
			p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{
				LookupHost: dns.lookup,
				Protected:  []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
				Logger:     slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: mu}, nil)),
			})
			fb := p.banner.(*fakeBanner)
			stop := startRun(t, p)
			defer stop()
			// Two failures: the first resolves, the second is a cache hit.
			p.Handle(pamMsg(tt.host))
			waitFor(t, "first failure handled", func() bool {
				st := p.Stats()
				j := st.Jails["j"]
				return j.Unresolved+j.Resolved > 0
			})
			p.Handle(pamMsg(tt.host))
			waitFor(t, "second failure handled", func() bool {
				j := p.Stats().Jails["j"]
				return j.Unresolved+j.Resolved == 2
			})
			want := strings.Fields(tt.wantBans)
			waitFor(t, "bans applied", func() bool { return len(fb.bans()) == len(want) })
			var got []string
			for _, b := range fb.bans() {
				got = append(got, b.Addr.String())
			}
			if strings.Join(got, " ") != tt.wantBans {
				t.Errorf("bans %v, want %q", got, tt.wantBans)
			}
			st := p.Stats()
			if j := st.Jails["j"]; j.Unresolved != tt.unresolved || j.Ignored != tt.ignored {
				t.Errorf("jail stats %+v, want %d unresolved, %d ignored", j, tt.unresolved, tt.ignored)
			}
			if n := dns.count(tt.host); n != tt.lookups {
				t.Errorf("%d lookups, want %d (the second failure is a cache hit)", n, tt.lookups)
			}
			mu.Lock()
			text := logs.String()
			mu.Unlock()
			if strings.Contains(text, "hostname="+tt.host) != tt.warn {
				t.Errorf("warning logged = %v, want %v; logs:\n%s", !tt.warn, tt.warn, text)
			}
		})
	}
}

// TestDNSNeverBlocksHandle: with every lookup stuck, Handle still returns
// at once; requests beyond the queue are dropped and counted; Run stops.
func TestDNSNeverBlocksHandle(t *testing.T) {
	var started atomic.Int64
	stuck := func(ctx context.Context, host string) ([]netip.Addr, error) {
		started.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	jail := JailSpec{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Hour, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{LookupHost: stuck})
	p.dns.timeout = time.Hour // only the shutdown may unstick them
	stop := startRun(t, p)
	waitFor(t, "workers busy", func() bool {
		p.Handle(pamMsg(fmt.Sprintf("w%d.example", started.Load())))
		return started.Load() == dnsWorkers
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2 * dnsQueueSize {
			p.Handle(pamMsg(fmt.Sprintf("h%d.example", i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Handle blocked on DNS")
	}
	if st := p.Stats(); st.DNS.Dropped < dnsQueueSize-dnsWorkers {
		t.Errorf("dropped %d, want at least %d", st.DNS.Dropped, dnsQueueSize-dnsWorkers)
	}
	stop() // must return although lookups hang
}

// TestDNSTimeout: a lookup that never answers fails after the timeout and
// its host is not banned.
func TestDNSTimeout(t *testing.T) {
	hang := func(ctx context.Context, host string) ([]netip.Addr, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	jail := JailSpec{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Hour, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{LookupHost: hang})
	p.dns.timeout = 10 * time.Millisecond
	stop := startRun(t, p)
	defer stop()
	p.Handle(pamMsg("slow.example"))
	waitFor(t, "lookup timed out", func() bool { return p.Stats().DNS.Failures == 1 })
	waitFor(t, "counted unresolved", func() bool { return p.Stats().Jails["j"].Unresolved == 1 })
	if st := p.Stats().Jails["j"]; st.TotalBanned != 0 {
		t.Errorf("banned after a timeout: %+v", st)
	}
}

func TestDNSCacheBounded(t *testing.T) {
	clk := newFakeClock()
	r := newResolver(func(context.Context, string) ([]netip.Addr, error) { return nil, nil }, clk.Now)
	for i := range 3 * dnsCacheSize {
		r.store(fmt.Sprintf("h%d", i), nil)
	}
	if n := r.stats().Cached; n > dnsCacheSize {
		t.Errorf("cache holds %d, bound %d", n, dnsCacheSize)
	}
	r.store("x", []netip.Addr{netip.MustParseAddr("192.0.2.1")})
	if _, ok := r.cached("x"); !ok {
		t.Fatal("fresh entry missing")
	}
	clk.Advance(dnsTTL)
	if _, ok := r.cached("x"); ok {
		t.Error("entry outlived its TTL")
	}
}
