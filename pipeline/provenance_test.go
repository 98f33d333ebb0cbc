package pipeline

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/sysban/sysban"
)

// Users of a test host: lookups never depend on the machine's passwd.
func testUsers(name string) (uint32, bool) {
	uid, ok := map[string]uint32{"root": 0, "sshd": 105, "postfix": 110}[name]
	return uid, ok
}

// One case per rule of trustSet.check.
func TestTrustRules(t *testing.T) {
	sshd, err := compileTrust(Trust{Users: []string{"root", "sshd", "_sshd"}, Exes: []string{"sshd", "sshd-session"},
		Units: []string{"ssh.service", "ssh@*.service"}}, testUsers)
	if err != nil {
		t.Fatal(err)
	}
	vouched := func(uid int64, exe, comm, unit string) sysban.Origin {
		return sysban.Origin{Vouched: sysban.VouchForwarder, UID: uid, GID: -1, PID: -1, Exe: exe, Comm: comm, Unit: unit}
	}
	for _, tc := range []struct {
		name string
		o    sysban.Origin
		want trustVerdict
	}{
		{"nobody vouches", sysban.Origin{UID: 0}, trustNoOrigin},
		{"root, nothing else said", vouched(0, "", "", ""), trustMatch},
		{"privsep user", vouched(105, "", "", ""), trustMatch},
		{"user not in the list", vouched(65534, "/usr/sbin/sshd", "sshd", "ssh.service"), trustMismatch},
		{"unknown name skipped, not a wildcard", vouched(4242, "", "", ""), trustMismatch},
		{"exe matches by base name", vouched(0, "/usr/lib/openssh/sshd-session", "", ""), trustMatch},
		{"comm matches when exe is gone", vouched(0, "", "sshd", ""), trustMatch},
		{"root's other program", vouched(0, "/usr/bin/logger", "logger", ""), trustMismatch},
		{"unit glob", vouched(0, "/usr/sbin/sshd", "sshd", "ssh@3-192.0.2.1:22-198.51.100.7:4444.service"), trustMatch},
		{"wrong unit", vouched(0, "/usr/sbin/sshd", "sshd", "cron.service"), trustMismatch},
		{"socket creds alone", sysban.Origin{Vouched: sysban.VouchSocket, UID: 0, GID: 0, PID: 1}, trustMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sshd.check(&tc.o); got != tc.want {
				t.Errorf("check(%+v) = %d, want %d", tc.o, got, tc.want)
			}
		})
	}
	if _, err := compileTrust(Trust{Users: []string{"root"}, Units: []string{"["}}, testUsers); err == nil {
		t.Error("a bad unit glob compiled")
	}
}

// What each jail mode makes of each verdict, through Handle.
func TestProvenanceModes(t *testing.T) {
	nobody := sysban.Origin{Vouched: sysban.VouchSocket, UID: 65534, GID: 65534, PID: 9}
	root := sysban.Origin{Vouched: sysban.VouchForwarder, UID: 0, GID: 0, PID: 1, Exe: "/usr/sbin/sshd", Unit: "ssh.service"}
	none := sysban.Origin{UID: -1, GID: -1, PID: -1}
	for _, tc := range []struct {
		mode          string
		origin        sysban.Origin
		wantBan       bool
		wantUntrusted uint64
	}{
		{ProvenanceOff, nobody, true, 0},
		{"", nobody, false, 3}, // prefer
		{ProvenancePrefer, none, true, 0},
		{ProvenancePrefer, root, true, 0},
		{ProvenanceRequire, none, false, 3},
		{ProvenanceRequire, nobody, false, 3},
		{ProvenanceRequire, root, true, 0},
	} {
		t.Run(tc.mode+"/"+tc.origin.Vouched.String()+"/"+strings.TrimPrefix(tc.origin.Exe, "/usr/sbin/"), func(t *testing.T) {
			var logs bytes.Buffer
			js := sshJail
			js.Provenance = tc.mode
			p := newTestPipeline(t, Config{Jails: []JailSpec{js}}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			for range 3 {
				m := sshMsg("198.18.0.99")
				m.Origin = tc.origin
				p.Handle(m)
			}
			if got := len(queued(p)) == 1; got != tc.wantBan {
				t.Errorf("banned = %v, want %v", got, tc.wantBan)
			}
			st := p.Stats().Jails["sshd"]
			if st.Untrusted != tc.wantUntrusted {
				t.Errorf("untrusted = %d, want %d", st.Untrusted, tc.wantUntrusted)
			}
			if n := strings.Count(logs.String(), "failure dropped"); tc.wantUntrusted > 0 && n != 1 {
				t.Errorf("%d log lines for %d untrusted failures, want 1 (rate-limited):\n%s", n, tc.wantUntrusted, logs.String())
			}
			if tc.wantUntrusted > 0 && !strings.Contains(logs.String(), "uid=") || tc.wantUntrusted > 0 && !strings.Contains(logs.String(), "program=sshd") {
				t.Errorf("log line does not name uid and program:\n%s", logs.String())
			}
		})
	}
}

func TestProvenanceConfigErrors(t *testing.T) {
	bad := sshJail
	bad.Provenance = "maybe"
	if _, err := New(Config{Jails: []JailSpec{bad}}, &fakeBanner{}, Options{}); err == nil || !strings.Contains(err.Error(), `provenance "maybe"`) {
		t.Errorf("unknown mode: %v", err)
	}
	custom := JailSpec{Name: "app", Filter: "app", MaxRetry: 1, FindTime: 60e9, BanTime: 60e9, Provenance: ProvenanceRequire}
	filters := map[string]FilterSpec{"app": {Name: "app", Programs: []string{"app"}, FailRegex: []string{`^bad login from <HOST>$`}}}
	if _, err := New(Config{Jails: []JailSpec{custom}, Filters: filters}, &fakeBanner{}, Options{}); err == nil || !strings.Contains(err.Error(), "trusts no user") {
		t.Errorf("require on a filter without trust: %v", err)
	}
}

// Every built-in filter declares whom it trusts; root is in every list.
func TestEveryBuiltinDeclaresTrust(t *testing.T) {
	for name, spec := range BuiltinFilters() {
		if spec.Trust.Internal {
			continue
		}
		if len(spec.Trust.Users) == 0 || spec.Trust.Users[0] != "root" {
			t.Errorf("filter %s: trust %+v, want users starting with root", name, spec.Trust)
		}
	}
}

// BenchmarkTrustCheck is the cost the provenance check adds to a failure
// (lines that are not failures are never checked).
func BenchmarkTrustCheck(b *testing.B) {
	ts, err := compileTrust(BuiltinFilters()["sshd"].Trust, testUsers)
	if err != nil {
		b.Fatal(err)
	}
	o := sysban.Origin{Vouched: sysban.VouchForwarder, UID: 0, GID: 0, PID: 812, Exe: "/usr/lib/openssh/sshd-session", Comm: "sshd-session", Unit: "ssh.service"}
	for b.Loop() {
		if ts.check(&o) != trustMatch {
			b.Fatal("no match")
		}
	}
}

// A multi-line failure takes its host from the open line: a forged open
// completed by the daemon's genuine close must accuse nobody.
func TestProvenanceOfOpens(t *testing.T) {
	nobody := sysban.Origin{Vouched: sysban.VouchSocket, UID: 65534, GID: 65534, PID: 9}
	root := sysban.Origin{Vouched: sysban.VouchSocket, UID: 0, GID: 0, PID: 1}
	none := sysban.Origin{UID: -1, GID: -1, PID: -1}
	for _, tc := range []struct {
		mode       string
		open       sysban.Origin
		wantFailed uint64
	}{
		{ProvenancePrefer, nobody, 0},
		{ProvenancePrefer, none, 1},
		{ProvenancePrefer, root, 1},
		{ProvenanceRequire, none, 0},
		{ProvenanceRequire, root, 1},
		{ProvenanceOff, nobody, 1},
	} {
		t.Run(tc.mode+"/"+tc.open.Vouched.String(), func(t *testing.T) {
			js := sshJail
			js.Provenance = tc.mode
			p := newTestPipeline(t, Config{Jails: []JailSpec{js}}, Options{})
			open := &sysban.Message{AppName: "sshd", ProcID: "4242", Text: "Connection from 198.18.0.7 port 4444 on 192.0.2.1 port 22", Origin: tc.open}
			closing := &sysban.Message{AppName: "sshd", ProcID: "4242", Text: "Disconnecting: Too many authentication failures [preauth]", Origin: root}
			p.Handle(open)
			p.Handle(closing)
			if got := p.Stats().Jails["sshd"].TotalFailed; got != tc.wantFailed {
				t.Errorf("failures = %d, want %d", got, tc.wantFailed)
			}
		})
	}
}
