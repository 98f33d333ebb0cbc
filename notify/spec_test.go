package notify

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestValidate(t *testing.T) {
	mail := func(f func(*MailSpec)) *MailSpec {
		m := &MailSpec{Server: "smtp.example.org:587", From: "sysban@example.org", To: []string{"root@example.org"}}
		f(m)
		return m
	}
	tests := []struct {
		name string
		spec ActionSpec
		want string // substring of the error; "" means valid
	}{
		{"mail ok", ActionSpec{Name: "mail-admin", Mail: mail(func(*MailSpec) {})}, ""},
		{"mail without port", ActionSpec{Name: "m", Mail: mail(func(m *MailSpec) { m.Server = "smtp.example.org"; m.TLS = TLSImplicit })}, ""},
		{"webhook ok", ActionSpec{Name: "hook", On: []string{"ban"}, Webhook: &WebhookSpec{URL: "https://hooks.example/x"}}, ""},
		{"exec ok", ActionSpec{Name: "run", Exec: &ExecSpec{Argv: []string{"/usr/local/bin/report", "{addr}", "{jail}"}}}, ""},

		{"bad name", ActionSpec{Name: "Mail Admin", Mail: mail(func(*MailSpec) {})}, `action "Mail Admin": name: want 1-32 characters`},
		{"no type", ActionSpec{Name: "x"}, "want exactly one of mail, webhook, exec; have 0"},
		{"two types", ActionSpec{Name: "x", Mail: mail(func(*MailSpec) {}), Exec: &ExecSpec{Argv: []string{"/bin/true"}}}, "have 2"},
		{"bad on", ActionSpec{Name: "x", On: []string{"start"}, Webhook: &WebhookSpec{URL: "https://h/"}}, `on: "start": want "ban" or "unban"`},
		{"no server", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.Server = "" })}, "mail.server: required"},
		{"bad port", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.Server = "h:99999" })}, `mail.server: "h:99999": bad port`},
		{"bad tls", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.TLS = "ssl" })}, `mail.tls: "ssl": want starttls, opportunistic, implicit or off`},
		{"bad auth", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.Auth = "cram-md5" })}, `mail.auth: "cram-md5"`},
		{"password in clear", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.TLS = TLSOff; m.Username = "u"; m.Password = "p" })}, "clear text"},
		{"password without user", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.Password = "p" })}, "mail.username: required"},
		{"both passwords", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.Username = "u"; m.Password = "p"; m.PasswordFile = "/f" })}, "set one, not both"},
		{"bad from", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.From = "root" })}, `mail.from: "root"`},
		{"no to", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.To = nil })}, "mail.to: at least one"},
		{"bad to", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.To = []string{"a@b", "x\r\nBcc: y@z"} })}, "mail.to[1]"},
		{"negative timeout", ActionSpec{Name: "x", Mail: mail(func(m *MailSpec) { m.Timeout = -time.Second })}, "mail.timeout"},
		{"too many retries", ActionSpec{Name: "x", Webhook: &WebhookSpec{URL: "https://h/", Retries: 100}}, "webhook.retries: 100"},
		{"webhook scheme", ActionSpec{Name: "x", Webhook: &WebhookSpec{URL: "ftp://h/"}}, "want an http:// or https:// URL"},
		{"webhook header name", ActionSpec{Name: "x", Webhook: &WebhookSpec{URL: "https://h/", Headers: map[string]string{"X Bad": "v"}}}, `webhook.headers: "X Bad"`},
		{"webhook header value", ActionSpec{Name: "x", Webhook: &WebhookSpec{URL: "https://h/", Headers: map[string]string{"X-Ok": "v\r\nX-Evil: 1"}}}, "contains CR, LF or NUL"},
		{"exec empty", ActionSpec{Name: "x", Exec: &ExecSpec{}}, "exec.argv: required"},
		{"exec relative", ActionSpec{Name: "x", Exec: &ExecSpec{Argv: []string{"notify-send"}}}, "want an absolute path"},
		{"exec placeholder", ActionSpec{Name: "x", Exec: &ExecSpec{Argv: []string{"/bin/echo", "{ip}"}}}, "exec.argv[1]: unknown placeholder {ip}"},
		{"exec braces ok", ActionSpec{Name: "x", Exec: &ExecSpec{Argv: []string{"/bin/echo", `{"addr": "{addr}"}`}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestBuildOnlyKinds(t *testing.T) {
	act, err := ActionSpec{Name: "x", On: []string{KindBan}, Exec: &ExecSpec{Argv: []string{"/bin/true"}}}.Build(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := act.(kindFilter)
	if !ok || !f.Wants(KindBan) || f.Wants(KindUnban) {
		t.Errorf("on: [ban] action does not filter kinds: %T", act)
	}
	if err := act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}); err != nil {
		t.Error(err)
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\r\nb", `a\x0d\x0ab`},
		{"tab\there", "tab here"},
		{"bad \xff", "bad \uFFFD"},
		{"c1 \u0085 ls \u2028", `c1 \x85 ls \u2028`},
		{"日本語テキスト", "日本語…"}, // 12-byte bound, cut on a rune boundary
	}
	for _, tt := range tests {
		max := 1000
		if strings.HasPrefix(tt.in, "日本") {
			max = 12
		}
		if got := cleanText(tt.in, max); got != tt.want {
			t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzCleanText(f *testing.F) {
	f.Add("Failed password for root from 198.51.100.7\r\nBcc: x@y", 40)
	f.Add("\xff\xfe日本\u2028", 5)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		got := cleanText(s, max)
		if len(got) > max {
			t.Fatalf("len %d > max %d", len(got), max)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("control %U survived in %q", r, got)
			}
		}
	})
}
