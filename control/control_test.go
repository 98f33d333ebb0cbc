package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// fakeDaemon is the seam: a Daemon with a fixed jail "sshd" that records
// the calls it gets.
type fakeDaemon struct {
	mu        sync.Mutex
	bans      []BanInfo
	reloadErr error
	calls     []string
}

var t0 = time.Date(2026, 11, 21, 19, 0, 0, 0, time.UTC)

func (f *fakeDaemon) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeDaemon) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeDaemon) Status(ctx context.Context) (Status, error) {
	f.record("Status")
	return Status{
		Version: "test", Started: t0, UptimeSeconds: 3600, ConfigSources: []string{"built-in"},
		LastReload: ReloadResult{OK: true, Time: t0},
		Jails:      []JailSummary{{Name: "sshd", Filter: "sshd", Enabled: true, CurrentlyFailed: 3, TotalFailed: 40, CurrentlyBanned: 1, TotalBanned: 2}},
		Listeners:  []ListenerStatus{{Name: "udp:127.0.0.1:5514", Received: 100, Dropped: map[string]uint64{"too_large": 2}}},
	}, nil
}

func (f *fakeDaemon) JailStatus(ctx context.Context, jail string) (JailStatus, error) {
	f.record("JailStatus %s", jail)
	if jail != "sshd" {
		return JailStatus{}, fmt.Errorf("%w %q", ErrUnknownJail, jail)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return JailStatus{Name: "sshd", Filter: "sshd", Programs: []string{"sshd"}, MaxRetry: 5,
		CurrentlyBanned: len(f.bans), Banned: append([]BanInfo(nil), f.bans...)}, nil
}

func (f *fakeDaemon) Ban(ctx context.Context, jail string, prefix netip.Prefix, d time.Duration) (BanInfo, error) {
	f.record("Ban %s %s %s", jail, prefixString(prefix), d)
	addr := prefix.Addr()
	if jail != "sshd" {
		return BanInfo{}, fmt.Errorf("%w %q", ErrUnknownJail, jail)
	}
	if addr.IsLoopback() {
		return BanInfo{}, fmt.Errorf("%w: %s is protected", ErrBadRequest, addr)
	}
	if d == 0 {
		d = time.Hour
	}
	bi := BanInfo{Jail: jail, Prefix: prefix, Start: t0, Manual: true}
	if prefix.IsSingleIP() {
		bi.Addr = addr
	}
	if d == sysban.Permanent {
		bi.Permanent = true
	} else {
		bi.Until = t0.Add(d)
	}
	f.mu.Lock()
	f.bans = append(f.bans, bi)
	f.mu.Unlock()
	return bi, nil
}

func (f *fakeDaemon) Unban(ctx context.Context, prefix netip.Prefix, jail string) ([]BanInfo, error) {
	f.record("Unban %s %q", prefixString(prefix), jail)
	f.mu.Lock()
	defer f.mu.Unlock()
	var lifted, kept []BanInfo
	for _, b := range f.bans {
		if b.Prefix.Contains(prefix.Addr()) && b.Prefix.Bits() <= prefix.Bits() && (jail == "" || b.Jail == jail) {
			lifted = append(lifted, b)
		} else {
			kept = append(kept, b)
		}
	}
	f.bans = kept
	if len(lifted) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotBanned, prefix)
	}
	return lifted, nil
}

func (f *fakeDaemon) UnbanAll(ctx context.Context) (int, error) {
	f.record("UnbanAll")
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.bans)
	f.bans = nil
	return n, nil
}

func (f *fakeDaemon) Banned(ctx context.Context, prefix netip.Prefix) ([]BanInfo, error) {
	f.record("Banned %s", prefixString(prefix))
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []BanInfo
	for _, b := range f.bans {
		if !prefix.IsValid() || (b.Prefix.Contains(prefix.Addr()) && b.Prefix.Bits() <= prefix.Bits()) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeDaemon) Reload(ctx context.Context) (ReloadResult, error) {
	f.record("Reload")
	if f.reloadErr != nil {
		return ReloadResult{}, f.reloadErr
	}
	return ReloadResult{OK: true, Time: t0, Jails: []string{"sshd"}}, nil
}

// serve starts a server on a fresh socket and stops it when the test ends.
func serve(t *testing.T, d Daemon) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	s, err := NewServer(path, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

// rawClient talks HTTP over the socket without the Client, to check the
// wire format itself.
func rawClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func TestWire(t *testing.T) {
	f := &fakeDaemon{}
	path := serve(t, f)
	hc := rawClient(path)

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     []string // substrings of the answer
		call                     string   // the Daemon call it must make; "" = none
	}{
		{"status", "GET", "/v1/status", "", 200, []string{`"version":"test"`, `"currently_failed":3`, `"dropped":{"too_large":2}`, `"uptime_seconds":3600`}, "Status"},
		{"jail", "GET", "/v1/jails/sshd", "", 200, []string{`"name":"sshd"`, `"maxretry":5`, `"banned":`}, "JailStatus sshd"},
		{"unknown jail", "GET", "/v1/jails/nope", "", 404, []string{`"error":"unknown jail \"nope\""`, `"code":"unknown_jail"`}, "JailStatus nope"},
		{"ban", "POST", "/v1/jails/sshd/ban", `{"addr":"192.0.2.7","duration_seconds":600}`, 200, []string{`"addr":"192.0.2.7"`, `"until":"2026-11-21T19:10:00Z"`, `"permanent":false`}, "Ban sshd 192.0.2.7 10m0s"},
		{"ban permanent", "POST", "/v1/jails/sshd/ban", `{"addr":"2001:db8::1","duration_seconds":-1}`, 200, []string{`"permanent":true`}, "Ban sshd 2001:db8::1 -1ns"},
		{"ban mapped", "POST", "/v1/jails/sshd/ban", `{"addr":"::ffff:192.0.2.8"}`, 200, []string{`"addr":"192.0.2.8"`}, "Ban sshd 192.0.2.8 0s"},
		{"ban bad addr", "POST", "/v1/jails/sshd/ban", `{"addr":"300.1.1.1"}`, 400, []string{`"code":"bad_request"`, `address \"300.1.1.1\"`}, ""},
		{"ban bad duration", "POST", "/v1/jails/sshd/ban", `{"addr":"192.0.2.7","duration_seconds":-5}`, 400, []string{`duration_seconds -5`}, ""},
		{"ban unknown field", "POST", "/v1/jails/sshd/ban", `{"addr":"192.0.2.7","for":"1h"}`, 400, []string{`unknown field \"for\"`}, ""},
		{"ban not json", "POST", "/v1/jails/sshd/ban", `addr=1`, 400, []string{`"code":"bad_request"`}, ""},
		{"ban trailing", "POST", "/v1/jails/sshd/ban", `{"addr":"192.0.2.7"}{}`, 400, []string{`trailing data`}, ""},
		{"ban unknown jail", "POST", "/v1/jails/nope/ban", `{"addr":"192.0.2.7"}`, 404, []string{`"code":"unknown_jail"`}, "Ban nope 192.0.2.7 0s"},
		{"ban prefix", "POST", "/v1/jails/sshd/ban", `{"addr":"2001:db8:1:2::/64"}`, 200, []string{`"prefix":"2001:db8:1:2::/64"`}, "Ban sshd 2001:db8:1:2::/64 0s"},
		{"ban mapped prefix", "POST", "/v1/jails/sshd/ban", `{"addr":"::ffff:198.51.100.0/120"}`, 200, []string{`"prefix":"198.51.100.0/24"`}, "Ban sshd 198.51.100.0/24 0s"},
		{"ban prefix with host bits", "POST", "/v1/jails/sshd/ban", `{"addr":"2001:db8::1/64"}`, 400, []string{`host bits set (the network is 2001:db8::/64)`}, ""},
		{"ban refused by daemon", "POST", "/v1/jails/sshd/ban", `{"addr":"127.0.0.1"}`, 400, []string{`127.0.0.1 is protected`}, "Ban sshd 127.0.0.1 0s"},
		{"banned one", "GET", "/v1/banned?addr=192.0.2.7", "", 200, []string{`[{"jail":"sshd","prefix":"192.0.2.7/32","addr":"192.0.2.7"`}, "Banned 192.0.2.7"},
		{"banned bad", "GET", "/v1/banned?addr=x", "", 400, []string{`"code":"bad_request"`}, ""},
		{"unban", "POST", "/v1/unban", `{"addr":"192.0.2.7","jail":"sshd"}`, 200, []string{`"addr":"192.0.2.7"`}, `Unban 192.0.2.7 "sshd"`},
		{"unban again", "POST", "/v1/unban", `{"addr":"192.0.2.7"}`, 404, []string{`"code":"not_banned"`}, `Unban 192.0.2.7 ""`},
		{"banned none", "GET", "/v1/banned?addr=192.0.2.7", "", 200, []string{`[]`}, "Banned 192.0.2.7"},
		{"unban all", "POST", "/v1/unban-all", "", 200, []string{`{"unbanned":4}`}, "UnbanAll"},
		{"reload", "POST", "/v1/reload", "", 200, []string{`"ok":true`}, "Reload"},
		{"wrong method", "GET", "/v1/reload", "", 405, []string{`"code":"method_not_allowed"`}, ""},
		{"no endpoint", "GET", "/v2/x", "", 404, []string{`"code":"no_endpoint"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.calls)
			req, _ := http.NewRequest(tt.method, "http://x"+tt.path, strings.NewReader(tt.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if !json.Valid(b) {
				t.Errorf("answer is not JSON: %s", b)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("answer %s\nlacks %s", b, w)
				}
			}
			f.mu.Lock()
			made := len(f.calls) > before
			f.mu.Unlock()
			switch {
			case tt.call == "" && made:
				t.Errorf("daemon was called: %s", f.lastCall())
			case tt.call != "" && f.lastCall() != tt.call:
				t.Errorf("daemon call %q, want %q", f.lastCall(), tt.call)
			}
		})
	}
}

func TestReloadRefused(t *testing.T) {
	f := &fakeDaemon{reloadErr: fmt.Errorf("%w: /etc/sysban/sysban.yaml: jails.sshd.bantime: bad", ErrConfigRefused)}
	c, err := Dial(serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Reload(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || !errors.Is(err, ErrConfigRefused) || errors.Is(err, ErrUnknownJail) {
		t.Fatalf("Reload error %#v, want a 409 matching ErrConfigRefused only", err)
	}
	if !strings.Contains(err.Error(), "jails.sshd.bantime") {
		t.Errorf("error %q lost the daemon's reason", err)
	}
}

func TestClient(t *testing.T) {
	f := &fakeDaemon{}
	c, err := Dial(serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	a := netip.MustParsePrefix("198.51.100.9/32")

	bi, err := c.Ban(ctx, "sshd", a, 90*time.Minute)
	if err != nil || bi.Prefix != a || bi.Addr != a.Addr() || !bi.Until.Equal(t0.Add(90*time.Minute)) || !bi.Manual {
		t.Fatalf("Ban = %+v, %v", bi, err)
	}
	if bi, err := c.Ban(ctx, "sshd", netip.MustParsePrefix("2001:db8::2/128"), sysban.Permanent); err != nil || !bi.Permanent || !bi.Until.IsZero() {
		t.Fatalf("permanent Ban = %+v, %v", bi, err)
	}
	// A sub-second duration must not turn into 0 (the jail's bantime).
	if _, err := c.Ban(ctx, "sshd", netip.MustParsePrefix("192.0.2.99/32"), time.Millisecond); err != nil || f.lastCall() != "Ban sshd 192.0.2.99 1s" {
		t.Fatalf("Ban 1ms: %v, call %q", err, f.lastCall())
	}
	if _, err := c.Ban(ctx, "nope", a, 0); !errors.Is(err, ErrUnknownJail) {
		t.Fatalf("Ban in unknown jail: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil || len(st.Jails) != 1 || st.Jails[0].TotalFailed != 40 || st.Listeners[0].Dropped["too_large"] != 2 || !st.Started.Equal(t0) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	js, err := c.JailStatus(ctx, "sshd")
	if err != nil || len(js.Banned) != 3 || js.Programs[0] != "sshd" {
		t.Fatalf("JailStatus = %+v, %v", js, err)
	}
	if _, err := c.JailStatus(ctx, "a/b"); !errors.Is(err, ErrUnknownJail) || f.lastCall() != "JailStatus a/b" {
		t.Fatalf("JailStatus(a/b): %v, call %q (path escaping)", err, f.lastCall())
	}
	got, err := c.Banned(ctx, a)
	if err != nil || len(got) != 1 || got[0].Jail != "sshd" {
		t.Fatalf("Banned(a) = %+v, %v", got, err)
	}
	if got, err := c.Banned(ctx, netip.Prefix{}); err != nil || len(got) != 3 {
		t.Fatalf("Banned(all) = %+v, %v", got, err)
	}
	lifted, err := c.Unban(ctx, a, "")
	if err != nil || len(lifted) != 1 {
		t.Fatalf("Unban = %+v, %v", lifted, err)
	}
	if _, err := c.Unban(ctx, a, ""); !errors.Is(err, ErrNotBanned) {
		t.Fatalf("second Unban: %v", err)
	}
	// A prefix ban: shown and lifted by any address inside it.
	p64 := netip.MustParsePrefix("2001:db8:1:2::/64")
	if bi, err := c.Ban(ctx, "sshd", p64, 0); err != nil || bi.Prefix != p64 || bi.Addr.IsValid() || f.lastCall() != "Ban sshd 2001:db8:1:2::/64 0s" {
		t.Fatalf("prefix Ban = %+v, %v, call %q", bi, err, f.lastCall())
	}
	inside := netip.MustParsePrefix("2001:db8:1:2::5/128")
	if got, err := c.Banned(ctx, inside); err != nil || len(got) != 1 || got[0].Prefix != p64 {
		t.Fatalf("Banned(inside) = %+v, %v", got, err)
	}
	if lifted, err := c.Unban(ctx, inside, ""); err != nil || len(lifted) != 1 || lifted[0].Prefix != p64 {
		t.Fatalf("Unban(inside) = %+v, %v", lifted, err)
	}
	if n, err := c.UnbanAll(ctx); err != nil || n != 2 {
		t.Fatalf("UnbanAll = %d, %v", n, err)
	}
	if res, err := c.Reload(ctx); err != nil || !res.OK {
		t.Fatalf("Reload = %+v, %v", res, err)
	}
}

func TestSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	path := filepath.Join(dir, "control.sock")
	s, err := NewServer(path, &fakeDaemon{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode %v (%v), want 0700", di.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the socket (temporary bind directory left?)", len(entries))
	}

	// A second daemon must not steal a socket that is being served.
	if _, err := NewServer(path, &fakeDaemon{}, nil); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second NewServer on a live socket: %v", err)
	}
	// Close leaves nothing behind.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}

	// A stale socket (its daemon died) is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s, err = NewServer(path, &fakeDaemon{}, nil)
	if err != nil {
		t.Fatalf("NewServer over a stale socket: %v", err)
	}
	s.Close()

	// A regular file is never replaced.
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(path, &fakeDaemon{}, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("NewServer over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("regular file was touched: %q", b)
	}
}

func TestOversizeBody(t *testing.T) {
	f := &fakeDaemon{}
	hc := rawClient(serve(t, f))
	body := `{"addr":"192.0.2.7","jail":"` + strings.Repeat("a", MaxBodySize) + `"}`
	resp, err := hc.Post("http://x/v1/unban", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"code":"too_large"`) {
		t.Errorf("oversize body: %d %s, want 413 too_large", resp.StatusCode, b)
	}
	if len(f.calls) != 0 {
		t.Errorf("daemon called with an oversize body: %v", f.calls)
	}
}

func TestUnreachable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "control.sock")
	_, err := Dial(missing)
	want := "cannot reach the daemon at " + missing + ": is `sysban run` running? (connect: no such file or directory)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrUnreachable) {
		t.Errorf("Dial(missing) = %v\nwant %s", err, want)
	}

	// A socket left by a dead daemon: refused.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Dial(stale); err == nil || !strings.Contains(err.Error(), "(connect: connection refused)") || !errors.Is(err, ErrUnreachable) {
		t.Errorf("Dial(stale) = %v", err)
	}

	// The daemon stops between Dial and a call.
	path := filepath.Join(dir, "s", "control.sock")
	s, err := NewServer(path, &fakeDaemon{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "is `sysban run` running?") {
		t.Errorf("Status after the daemon stopped: %v", err)
	}
}

func TestPermissionDenied(t *testing.T) {
	// Root bypasses file permissions, so a real connect cannot show this
	// under `go test` as root; check the wording on the error a non-root
	// connect gets.
	err := (&Client{path: "/run/sysban/control.sock"}).unreachable(&net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)})
	want := "cannot reach the daemon at /run/sysban/control.sock: permission denied: the control socket is root's, run this as root (connect: permission denied)"
	if err.Error() != want || !errors.Is(err, ErrUnreachable) {
		t.Errorf("permission error:\n%v\nwant\n%s", err, want)
	}
}
