package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/control"
)

// fakeDaemon answers the control API with fixed data and records what the
// CLI asked for. Times are relative to start so remaining times are known.
type fakeDaemon struct {
	start     time.Time
	reloadErr error

	mu   sync.Mutex
	last string
}

func (f *fakeDaemon) record(format string, args ...any) {
	f.mu.Lock()
	f.last = fmt.Sprintf(format, args...)
	f.mu.Unlock()
}

func (f *fakeDaemon) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeDaemon) bans() []control.BanInfo {
	return []control.BanInfo{
		{Jail: "sshd", Prefix: netip.MustParsePrefix("203.0.113.5/32"), Addr: netip.MustParseAddr("203.0.113.5"), Start: f.start.Add(-30 * time.Second), Until: f.start.Add(59*time.Minute + 30*time.Second), Failures: 5, Offences: 1,
			BlockedPackets: 12, LastBlocked: f.start.Add(-10 * time.Second),
			Lines: []string{"Failed password for root from 203.0.113.5 port 4242 ssh2", "Failed password for admin from 203.0.113.5 port 4243 ssh2"}},
		{Jail: "sshd", Prefix: netip.MustParsePrefix("2001:db8::7/128"), Addr: netip.MustParseAddr("2001:db8::7"), Start: f.start, Permanent: true, Manual: true},
		{Jail: "sshd", Prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), Addr: netip.MustParseAddr("2001:db8:1:2::9"), Start: f.start, Until: f.start.Add(time.Hour), Failures: 5},
	}
}

func (f *fakeDaemon) Status(ctx context.Context) (control.Status, error) {
	f.record("Status")
	return control.Status{
		Version: "v0.3.0", Started: f.start.Add(-2*time.Hour - 5*time.Minute), UptimeSeconds: 7500,
		ConfigSources: []string{"built-in configs/sysban.yaml", "/etc/sysban/sysban.yaml"},
		LastReload:    control.ReloadResult{OK: true, Time: f.start.Add(-time.Hour)},
		Messages:      15234,
		Jails: []control.JailSummary{
			{Name: "postfix-sasl", Filter: "postfix-sasl", Enabled: true, CurrentlyFailed: 17, TotalFailed: 877, CurrentlyBanned: 24, TotalBanned: 24},
			{Name: "sshd", Filter: "sshd", Enabled: true, CurrentlyFailed: 8, TotalFailed: 26, CurrentlyBanned: 2, TotalBanned: 2},
			{Name: "vsftpd", Filter: "vsftpd"},
		},
		Listeners: []control.ListenerStatus{
			{Name: "udp:127.0.0.1:5514", Received: 15000},
			{Name: "tcp:127.0.0.1:5514", Received: 234, Connections: 1, ParseErrors: 2, Dropped: map[string]uint64{"too_large": 1, "garbage": 3}},
		},
	}, nil
}

func (f *fakeDaemon) JailStatus(ctx context.Context, jail string) (control.JailStatus, error) {
	f.record("JailStatus %s", jail)
	if jail != "sshd" {
		return control.JailStatus{}, fmt.Errorf("%w %q", control.ErrUnknownJail, jail)
	}
	return control.JailStatus{Name: "sshd", Filter: "sshd", Programs: []string{"sshd"}, MaxRetry: 5,
		FindTimeSeconds: 600, BanTimeSeconds: 3600, CurrentlyFailed: 8, TotalFailed: 26, CurrentlyBanned: 2, TotalBanned: 2,
		Banned: f.bans()}, nil
}

func (f *fakeDaemon) Ban(ctx context.Context, jail string, prefix netip.Prefix, d time.Duration) (control.BanInfo, error) {
	f.record("Ban %s %s %v", jail, ctlPrefixString(prefix), d)
	if jail != "sshd" {
		return control.BanInfo{}, fmt.Errorf("%w %q", control.ErrUnknownJail, jail)
	}
	bi := control.BanInfo{Jail: jail, Prefix: prefix, Start: f.start, Manual: true}
	if prefix.IsSingleIP() {
		bi.Addr = prefix.Addr()
	}
	switch d {
	case sysban.Permanent:
		bi.Permanent = true
	case 0:
		bi.Until = f.start.Add(time.Hour)
	default:
		bi.Until = f.start.Add(d)
	}
	return bi, nil
}

// covers reports whether ban b covers p.
func covers(b control.BanInfo, p netip.Prefix) bool {
	return b.Prefix.Bits() <= p.Bits() && b.Prefix.Contains(p.Addr())
}

func (f *fakeDaemon) Unban(ctx context.Context, addr netip.Prefix, jail string) ([]control.BanInfo, error) {
	f.record("Unban %s %q", ctlPrefixString(addr), jail)
	var out []control.BanInfo
	for _, b := range f.bans() {
		if covers(b, addr) && (jail == "" || jail == b.Jail) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", control.ErrNotBanned, addr)
	}
	return out, nil
}

func (f *fakeDaemon) UnbanAll(ctx context.Context) (int, error) {
	f.record("UnbanAll")
	return 26, nil
}

func (f *fakeDaemon) Banned(ctx context.Context, addr netip.Prefix) ([]control.BanInfo, error) {
	f.record("Banned %s", ctlPrefixString(addr))
	var out []control.BanInfo
	for _, b := range f.bans() {
		if !addr.IsValid() || covers(b, addr) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeDaemon) Reload(ctx context.Context) (control.ReloadResult, error) {
	f.record("Reload")
	if f.reloadErr != nil {
		return control.ReloadResult{}, f.reloadErr
	}
	return control.ReloadResult{OK: true, Time: f.start, Sources: []string{"built-in configs/sysban.yaml"},
		Jails: []string{"sshd"}, Removed: []string{"vsftpd"}, Unbanned: 3}, nil
}

// serveFake serves d on a fresh socket for the test's lifetime.
func serveFake(t *testing.T, d control.Daemon) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	s, err := control.NewServer(path, d, nil)
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

// TestCtlOutput pins the human output, with a fixed clock and zone.
func TestCtlOutput(t *testing.T) {
	start := time.Date(2026, 11, 21, 19, 0, 0, 0, time.UTC)
	f := &fakeDaemon{start: start}
	sock := serveFake(t, f)
	c := ctl{now: func() time.Time { return start }, loc: time.UTC}

	tests := []struct {
		name string
		verb func(ctl, []string, io.Writer, io.Writer) int
		args []string
		want string
		code int
	}{
		{"status", ctl.status, nil, `sysban v0.3.0, up 2h05m (since 2026-11-21T16:55:00Z)
config:       built-in configs/sysban.yaml + /etc/sysban/sysban.yaml
last reload:  ok at 2026-11-21T18:00:00Z
messages:     15234 handled, 0 bans waiting to be stored

JAIL          FILTER        STATE    FAILED NOW  FAILED TOTAL  BANNED NOW  BANNED TOTAL
postfix-sasl  postfix-sasl  enabled  17          877           24          24
sshd          sshd          enabled  8           26            2           2
(1 disabled jail not shown; --all lists every jail)

LISTENER            RECEIVED  PARSE ERRORS  CONNECTIONS  DROPPED
udp:127.0.0.1:5514  15000     0             0            -
tcp:127.0.0.1:5514  234       2             1            garbage=3 too_large=1
`, 0},
		{"status all", ctl.status, []string{"--all"}, `sysban v0.3.0, up 2h05m (since 2026-11-21T16:55:00Z)
config:       built-in configs/sysban.yaml + /etc/sysban/sysban.yaml
last reload:  ok at 2026-11-21T18:00:00Z
messages:     15234 handled, 0 bans waiting to be stored

JAIL          FILTER        STATE     FAILED NOW  FAILED TOTAL  BANNED NOW  BANNED TOTAL
postfix-sasl  postfix-sasl  enabled   17          877           24          24
sshd          sshd          enabled   8           26            2           2
vsftpd        vsftpd        disabled  0           0             0           0

LISTENER            RECEIVED  PARSE ERRORS  CONNECTIONS  DROPPED
udp:127.0.0.1:5514  15000     0             0            -
tcp:127.0.0.1:5514  234       2             1            garbage=3 too_large=1
`, 0},
		{"status jail", ctl.status, []string{"sshd"}, `Status for jail sshd
  Filter:            sshd (programs: sshd)
  Rule:              5 failures within 10m, ban 1h00m
  Currently failed:  8
  Total failed:      26
  Currently banned:  2
  Total banned:      2
  Banned IP list:    3 addresses
    ADDRESS                                   UNTIL                 REMAINING  FAILURES
    203.0.113.5                               2026-11-21T19:59:30Z  in 59m     5
    2001:db8::7                               permanent             -          manual
    2001:db8:1:2::/64 (last 2001:db8:1:2::9)  2026-11-21T20:00:00Z  in 1h00m   5
`, 0},
		{"banned addr", ctl.banned, []string{"203.0.113.5"}, `JAIL  ADDRESS      SINCE                 UNTIL                 REMAINING  FAILURES  OFFENCES  BLOCKED  LAST BLOCKED
sshd  203.0.113.5  2026-11-21T18:59:30Z  2026-11-21T19:59:30Z  in 59m     5         1         12       2026-11-21T18:59:50Z

why (sshd):
  Failed password for root from 203.0.113.5 port 4242 ssh2
  Failed password for admin from 203.0.113.5 port 4243 ssh2
`, 0},
		{"banned none", ctl.banned, []string{"198.51.100.1"}, "198.51.100.1 is not banned\n", 1},
		{"ban", ctl.ban, []string{"sshd", "198.51.100.1", "--for", "1d"}, "banned 198.51.100.1 in sshd until 2026-11-22T19:00:00Z (in 1d0h)\n", 0},
		{"ban permanent", ctl.ban, []string{"--for", "-1", "sshd", "198.51.100.1"}, "banned 198.51.100.1 in sshd permanently\n", 0},
		{"unban", ctl.unban, []string{"2001:db8::7"}, "unbanned 2001:db8::7 from sshd\n", 0},
		{"ban prefix", ctl.ban, []string{"sshd", "2001:db8:5::/48"}, "banned 2001:db8:5::/48 in sshd until 2026-11-21T20:00:00Z (in 1h00m)\n", 0},
		{"unban inside a prefix", ctl.unban, []string{"2001:db8:1:2::77"}, "unbanned 2001:db8:1:2::/64 from sshd (the ban covering 2001:db8:1:2::77)\n", 0},
		{"unban all", ctl.unban, []string{"--all"}, "unbanned 26 bans\n", 0},
		{"reload", ctl.reload, nil, `configuration reloaded at 2026-11-21T19:00:00Z
  sources:  built-in configs/sysban.yaml
  jails:    sshd
  removed:  vsftpd (3 bans lifted)
`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := tt.verb(c, append(tt.args, "--socket", sock), &stdout, &stderr)
			if code != tt.code || stdout.String() != tt.want {
				t.Errorf("exit %d, stderr %q\ngot:\n%s\nwant:\n%s", code, stderr.String(), stdout.String(), tt.want)
			}
		})
	}
}

// TestCtlRun drives the verbs through run, as the binary does: exit codes,
// the calls the daemon gets, errors and --json.
func TestCtlRun(t *testing.T) {
	f := &fakeDaemon{start: time.Now().Truncate(time.Second), reloadErr: nil}
	sock := serveFake(t, f)
	refusing := &fakeDaemon{start: time.Now(), reloadErr: fmt.Errorf("%w: /etc/sysban/sysban.yaml: jails.sshd.bantime: duration \"10 minutes\"", control.ErrConfigRefused)}
	refusingSock := serveFake(t, refusing)
	missing := filepath.Join(t.TempDir(), "none.sock")

	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
		call   string
	}{
		{[]string{"status", "--socket", sock}, 0, "sshd          sshd          enabled  8           26", "", "Status"},
		{[]string{"status", "sshd", "--socket", sock}, 0, "  Currently failed:  8\n", "", "JailStatus sshd"},
		{[]string{"status", "--socket", sock, "nope"}, 1, "", `sysban: unknown jail "nope"`, "JailStatus nope"},
		{[]string{"status", "a", "b", "--socket", sock}, 2, "", `unexpected argument "b"`, ""},
		{[]string{"ban", "sshd", "192.0.2.1", "--for", "10m", "--socket", sock}, 0, "banned 192.0.2.1 in sshd until", "", "Ban sshd 192.0.2.1 10m0s"},
		{[]string{"ban", "--socket", sock, "sshd", "::ffff:192.0.2.2"}, 0, "(in 59m)", "", "Ban sshd 192.0.2.2 0s"},
		{[]string{"ban", "sshd", "[2001:db8::9]", "--for", "-1", "--socket", sock}, 0, "permanently", "", "Ban sshd 2001:db8::9 -1ns"},
		{[]string{"ban", "sshd", "192.0.2.1", "--for", "10 minutes", "--socket", sock}, 2, "", `--for: duration "10 minutes": want e.g.`, ""},
		{[]string{"ban", "sshd", "192.0.2.300", "--socket", sock}, 2, "", `address "192.0.2.300": want an IPv4 or IPv6 address`, ""},
		{[]string{"ban", "sshd", "--socket", sock}, 2, "", "want JAIL and ADDR", ""},
		{[]string{"ban", "nope", "192.0.2.1", "--socket", sock}, 1, "", `sysban: unknown jail "nope"`, "Ban nope 192.0.2.1 0s"},
		{[]string{"unban", "203.0.113.5", "--jail", "sshd", "--socket", sock}, 0, "unbanned 203.0.113.5 from sshd\n", "", `Unban 203.0.113.5 "sshd"`},
		{[]string{"unban", "198.51.100.4", "--socket", sock}, 1, "", "sysban: not banned: 198.51.100.4", `Unban 198.51.100.4 ""`},
		{[]string{"unban", "--all", "--socket", sock}, 0, "unbanned 26 bans\n", "", "UnbanAll"},
		{[]string{"unban", "--all", "192.0.2.1", "--socket", sock}, 2, "", "--all takes no address", ""},
		{[]string{"unban", "--socket", sock}, 2, "", "want one ADDR (or --all)", ""},
		{[]string{"banned", "--socket", sock}, 0, "sshd  2001:db8::7", "", "Banned invalid Prefix"},
		{[]string{"banned", "2001:db8::7", "--socket", sock}, 0, "permanent", "", "Banned 2001:db8::7"},
		{[]string{"banned", "2001:db8:1:2::5", "--socket", sock}, 0, "sshd  2001:db8:1:2::/64 (last 2001:db8:1:2::9)", "", "Banned 2001:db8:1:2::5"},
		{[]string{"banned", "2001:db8:1:2::5", "--json", "--socket", sock}, 0, `"prefix": "2001:db8:1:2::/64"`, "", "Banned 2001:db8:1:2::5"},
		{[]string{"ban", "sshd", "2001:db8::1/64", "--socket", sock}, 2, "", `host bits set (the network is 2001:db8::/64)`, ""},
		{[]string{"reload", "--socket", sock}, 0, "configuration reloaded at", "", "Reload"},
		{[]string{"reload", "--socket", refusingSock}, 1, "", `sysban: reload refused, the running configuration is unchanged: config refused: /etc/sysban/sysban.yaml: jails.sshd.bantime`, ""},
		{[]string{"status", "--socket", missing}, 1, "", "sysban: cannot reach the daemon at " + missing + ": is `sysban run` running? (connect: no such file or directory)\n", ""},
		{[]string{"status", "--bogus"}, 2, "", "flag provided but not defined: -bogus", ""},
		{[]string{"help"}, 0, "unban ADDR [--jail J]", "", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f.record("")
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q",
					code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
			if got := f.lastCall(); got != tt.call {
				t.Errorf("daemon call %q, want %q", got, tt.call)
			}
		})
	}
}

// TestCtlJSON checks that --json prints the API's JSON on every verb,
// and errors as JSON too.
func TestCtlJSON(t *testing.T) {
	f := &fakeDaemon{start: time.Date(2026, 11, 21, 19, 0, 0, 0, time.UTC)}
	sock := serveFake(t, f)
	tests := []struct {
		args []string
		code int
		keys []string // top-level keys (of the first element for lists)
		list bool
	}{
		{[]string{"status"}, 0, []string{"version", "started", "uptime_seconds", "config_sources", "last_reload", "jails", "listeners"}, false},
		{[]string{"status", "sshd"}, 0, []string{"name", "filter", "programs", "currently_failed", "total_failed", "currently_banned", "total_banned", "banned"}, false},
		{[]string{"ban", "sshd", "192.0.2.1", "--for", "1h"}, 0, []string{"jail", "addr", "start", "until", "permanent"}, false},
		{[]string{"unban", "203.0.113.5"}, 0, []string{"jail", "addr", "until", "failures", "lines"}, true},
		{[]string{"unban", "--all"}, 0, []string{"unbanned"}, false},
		{[]string{"banned"}, 0, []string{"jail", "addr"}, true},
		{[]string{"banned", "198.51.100.1"}, 1, nil, true}, // [], and "no"
		{[]string{"reload"}, 0, []string{"ok", "time", "jails", "removed", "unbanned"}, false},
		{[]string{"status", "nope"}, 1, []string{"error", "code"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append(tt.args, "--json", "--socket", sock), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, stderr.String())
			}
			var obj map[string]any
			if tt.list {
				var list []map[string]any
				if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
					t.Fatalf("not a JSON list: %v\n%s", err, stdout.String())
				}
				if len(list) == 0 {
					if tt.keys != nil {
						t.Fatalf("empty list, want entries")
					}
					if strings.TrimSpace(stdout.String()) != "[]" {
						t.Errorf("empty answer %q, want []", stdout.String())
					}
					return
				}
				obj = list[0]
			} else if err := json.Unmarshal(stdout.Bytes(), &obj); err != nil {
				t.Fatalf("not a JSON object: %v\n%s", err, stdout.String())
			}
			for _, k := range tt.keys {
				if _, ok := obj[k]; !ok {
					t.Errorf("JSON lacks %q: %s", k, stdout.String())
				}
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{59 * time.Second, "59s"},
		{59*time.Minute + 59*time.Second, "59m"},
		{time.Hour, "1h00m"},
		{2*time.Hour + 5*time.Minute, "2h05m"},
		{49 * time.Hour, "2d1h"},
		{-time.Second, "-"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	c := ctl{now: func() time.Time { return time.Unix(100, 0) }, loc: time.UTC}
	if got := c.remaining(time.Unix(99, 0)); got != "expired" {
		t.Errorf("remaining(past) = %q", got)
	}
}
