package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestRouting(t *testing.T) {
	cfg := Config{
		Filters: map[string]FilterSpec{
			"smtp": {Programs: []string{"postfix*/smtpd"}, FailRegex: []string{`^warning: unknown\[<HOST>\]: SASL LOGIN authentication failed`}},
			// Overrides the builtin: only "mysshd" is read now.
			"sshd": {Programs: []string{"mysshd"}, FailRegex: []string{`^Invalid user .* from <HOST> port \d+$`}},
		},
		Jails: []JailSpec{
			{Name: "smtp", Filter: "smtp", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute},
			{Name: "ssh", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute},
			{Name: "ssh-long", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Hour},
		},
	}
	p := newTestPipeline(t, cfg, Options{})
	msgs := []*sysban.Message{
		{AppName: "postfix/smtpd", Text: "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"},
		{AppName: "postfix-out/smtpd", Text: "warning: unknown[192.0.2.2]: SASL LOGIN authentication failed: x"},
		{AppName: "postfix/submission/smtpd", Text: "warning: unknown[192.0.2.3]: SASL LOGIN authentication failed: x"}, // * does not cross /
		{AppName: "mysshd", Text: "Invalid user a from 192.0.2.4 port 1"},
		{AppName: "sshd", Text: "Invalid user a from 192.0.2.5 port 1"}, // builtin overridden
		{AppName: "", Text: "Invalid user a from 192.0.2.6 port 1"},
	}
	for _, m := range msgs {
		p.Handle(m)
	}
	var got []string
	for _, b := range queued(p) {
		got = append(got, b.Jail+"/"+b.Addr.String())
	}
	want := "smtp/192.0.2.1 smtp/192.0.2.2 ssh/192.0.2.4 ssh-long/192.0.2.4"
	if strings.Join(got, " ") != want {
		t.Errorf("bans %v, want %s", got, want)
	}
	if st := p.Stats(); st.Unrouted != 3 {
		t.Errorf("unrouted %d, want 3", st.Unrouted)
	}
	// The glob cache stays bounded whatever app names arrive.
	for i := range 3 * maxAppCache {
		p.Handle(&sysban.Message{AppName: fmt.Sprintf("app%d", i), Text: "x"})
	}
	tab := p.tab.Load()
	tab.cacheMu.RLock()
	n := len(tab.cache)
	tab.cacheMu.RUnlock()
	if n > maxAppCache {
		t.Errorf("glob cache holds %d entries, bound %d", n, maxAppCache)
	}
}

func TestNewErrors(t *testing.T) {
	good := JailSpec{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown filter", Config{Jails: []JailSpec{{Name: "j", Filter: "nope", MaxRetry: 1, FindTime: 1, BanTime: 1}}}, `jail j: unknown filter "nope"`},
		{"maxretry", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 0, FindTime: 1, BanTime: 1}}}, "maxretry 0"},
		{"findtime", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 0, BanTime: 1}}}, "findtime"},
		{"bantime", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: -2}}}, "bantime"},
		{"no name", Config{Jails: []JailSpec{{Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: 1}}}, "without a name"},
		{"duplicate", Config{Jails: []JailSpec{good, good}}, "jail j: defined twice"},
		{"bad user filter", Config{Filters: map[string]FilterSpec{"x": {Programs: []string{"x"}, FailRegex: []string{"^x"}}}}, "filter x: failregex[0]: missing <HOST>"},
		{"filter name mismatch", Config{Filters: map[string]FilterSpec{"x": {Name: "y", Programs: []string{"x"}, FailRegex: []string{"^<HOST>"}}}}, `filter "x": spec is named "y"`},
		{"permanent ok", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: sysban.Permanent}}}, ""},
		{"unknown mode", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: 1, Mode: "extra"}}}, `jail j: mode "extra": filter sshd has modes normal, aggressive, ddos`},
		{"mode ddos ok", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: 1, Mode: "ddos"}}}, ""},
		{"mode normal ok", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: 1, Mode: "normal"}}}, ""},
		{"usedns bad", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: 1, UseDNS: "maybe"}}}, `jail j: usedns "maybe": want yes, warn or no`},
		{"usedns yes ok", Config{Jails: []JailSpec{{Name: "j", Filter: "sshd", MaxRetry: 1, FindTime: 1, BanTime: 1, UseDNS: "yes"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Jails == nil {
				tt.cfg.Jails = []JailSpec{good}
			}
			_, err := New(tt.cfg, &fakeBanner{}, Options{})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case err != nil && !strings.HasPrefix(err.Error(), "pipeline: "):
				t.Fatalf("error %q lacks the stage prefix", err)
			}
		})
	}
	if _, err := New(Config{}, nil, Options{}); err == nil {
		t.Error("nil banner accepted")
	}
}

// TestTableCompilesWhatJailsUse: a pipeline holds compiled only the
// filters its jails read with (the rest were most of an idle daemon's
// heap); Check still tries every filter, and a user filter no jail uses is
// still refused when it does not compile.
func TestTableCompilesWhatJailsUse(t *testing.T) {
	p := newTestPipeline(t, Config{}, Options{})
	var names []string
	for _, f := range p.tab.Load().filters {
		names = append(names, f.name)
	}
	if strings.Join(names, " ") != "sshd" {
		t.Errorf("compiled filters %v, want only sshd", names)
	}
	ms := p.Check(`[pid 1234] [admin] FAIL LOGIN: Client "192.0.2.7"`, "vsftpd")
	if len(ms) != 1 || ms[0].Filter != "vsftpd" || ms[0].Host != "192.0.2.7" {
		t.Errorf("Check through a filter no jail uses: %+v", ms)
	}
	if ms := p.Check(`[pid 1234] [admin] FAIL LOGIN: Client "192.0.2.7"`, ""); len(ms) != 1 || ms[0].Filter != "vsftpd" {
		t.Errorf("Check, every filter: %+v", ms)
	}

	bad := Config{
		Filters: map[string]FilterSpec{"unused": {Programs: []string{"x"}, FailRegex: []string{`^(<HOST>`}}},
		Jails:   []JailSpec{sshJail},
	}
	if _, err := New(bad, &fakeBanner{}, Options{}); err == nil || !strings.Contains(err.Error(), "unused") {
		t.Errorf("New with a broken unused user filter: %v, want its error", err)
	}
	if err := Validate(bad); err == nil {
		t.Error("Validate accepted a broken unused user filter")
	}
}
