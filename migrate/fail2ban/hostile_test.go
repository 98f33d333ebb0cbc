package fail2ban

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestHostileInput: malformed files, loops and huge values give clear
// errors or report entries, never a hang or a crash.
func TestHostileInput(t *testing.T) {
	huge := strings.Repeat("a", 10<<20)
	bomb := "[DEFAULT]\naa = xxxxxxxx\n"
	for i := 1; i <= 6; i++ {
		bomb += "a" + string(rune('a'+i)) + " = " + strings.Repeat("%(a"+prev(i)+")s", 64) + "\n"
	}
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string // error of Import; "" when the report must say it
		report  string // text the report must contain
	}{
		{"no section", map[string]string{"jail.conf": "enabled = true\n"}, "before any [section]", ""},
		{"garbage line", map[string]string{"jail.conf": "[sshd]\nthis is not a key\n"}, "want \"key = value\"", ""},
		{"key twice", map[string]string{"jail.conf": "[sshd]\nport = ssh\nport = 22\n"}, "set twice", ""},
		{"10 MB value", map[string]string{"jail.conf": "[sshd]\nport = " + huge + "\n"}, "larger than", ""},
		{"10 MB continuation", map[string]string{"jail.conf": "[sshd]\nport = x\n" + strings.Repeat("  "+strings.Repeat("b", 1000)+"\n", 1100)}, "value longer than", ""},
		{"interpolation loop", map[string]string{"jail.conf": "[DEFAULT]\na = %(b)s\nb = %(a)s\n[sshd]\nenabled = true\nport = %(a)s\n"}, "", "interpolation loop: port -> a -> b -> a"},
		{"interpolation bomb", map[string]string{"jail.conf": bomb + "[sshd]\nenabled = true\nport = %(ag)s\n"}, "", "longer than"},
		{"missing reference", map[string]string{"jail.conf": "[sshd]\nenabled = true\nlogpath = %(nowhere)s\n"}, "", "%(nowhere)s: no such key"},
		{"include loop", map[string]string{"jail.conf": "[INCLUDES]\nbefore = a.conf\n[sshd]\nenabled = true\n", "a.conf": "[INCLUDES]\nbefore = jail.conf\n"}, "", "[sshd] enabled"},
		{"backtracking pattern", map[string]string{
			"jail.conf":          "[evil]\nenabled = true\nfilter = evil\n",
			"filter.d/evil.conf": "[Definition]\nfailregex = ^(?:(a+)+)+(?=b) from <HOST>$\n             ^(\\w+)\\1 from <HOST>$\n",
		}, "", "look-around"},
		{"catastrophic but RE2", map[string]string{
			"jail.conf":          "[evil]\nenabled = true\nfilter = evil\n",
			"filter.d/evil.conf": "[Definition]\nfailregex = ^(a+)+$ <HOST>\n",
		}, "", "changed failregex ^(a+)+$ <HOST>"},
		{"inline flags", map[string]string{
			"jail.conf":        "[fl]\nenabled = true\nfilter = fl\n",
			"filter.d/fl.conf": "[Definition]\nfailregex = (?i)^login FAILED from <HOST>$\n            (?x)^spaced <HOST>$\n",
		}, "", "-> ^(?i)(?:"},
		{"host twice", map[string]string{
			"jail.conf":         "[two]\nenabled = true\nfilter = two\n",
			"filter.d/two.conf": "[Definition]\nfailregex = ^from <HOST> to <HOST>$\n",
		}, "", "more than once"},
		{"no jail file", map[string]string{"fail2ban.conf": "[Definition]\n"}, "jail.conf", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for n, c := range tc.files {
				fsys[n] = &fstest.MapFile{Data: []byte(c)}
			}
			done := make(chan struct{})
			var res *Result
			var err error
			go func() { res, err = Import(fsys, tc.name); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("import did not return within 30s")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := res.Report.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tc.report) {
				t.Errorf("report lacks %q:\n%s", tc.report, b.String())
			}
		})
	}
}

func prev(i int) string { return string(rune('a' + i - 1)) }

// TestLayeringAndInterpolation: the order fail2ban reads files in, known/,
// default/, section/ references, comments and continuation lines.
func TestLayeringAndInterpolation(t *testing.T) {
	fsys := fstest.MapFS{
		"jail.conf":      {Data: []byte("[INCLUDES]\nbefore = paths.conf\n[DEFAULT]\nbantime = 10m ; one\nport = 1\n[x]\nport = 2\nlogpath = %(log_x)s\n")},
		"paths.conf":     {Data: []byte("[DEFAULT]\nlog_x = /var/log/a\n# a comment\n; another\n")},
		"paths.local":    {Data: []byte("[DEFAULT]\nlog_x = /var/log/b\n")},
		"jail.d/b.conf":  {Data: []byte("[x]\nport = 3\n")},
		"jail.d/a.conf":  {Data: []byte("[x]\nport = 4\n")},
		"jail.local":     {Data: []byte("[x]\nport = %(known/port)s,5\nmulti = one\n  two\n\n  three\nd = %(default/port)s\ns = %(y/v)s\n[y]\nv = vy\n")},
		"jail.d/z.local": {Data: []byte("[x]\nname = %(__name__)s\n")},
	}
	l, err := readLayers(fsys, "jail")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"paths.conf", "paths.local", "jail.conf", "jail.d/a.conf", "jail.d/b.conf", "jail.local", "jail.d/z.local"}
	if got := strings.Join(l.Files(), " "); got != strings.Join(want, " ") {
		t.Errorf("files %s, want %s", got, strings.Join(want, " "))
	}
	for _, tc := range []struct{ sec, key, want string }{
		{"x", "port", "3,5"}, // b.conf after a.conf, then known/ in jail.local
		{"x", "logpath", "/var/log/b"},
		{"x", "multi", "one\ntwo\n\nthree"},
		{"x", "d", "1"},
		{"x", "s", "vy"},
		{"x", "name", "x"},
		{"x", "bantime", "10m"},
	} {
		got, err := l.Get(tc.sec, tc.key, nil)
		if err != nil || got != tc.want {
			t.Errorf("[%s] %s = %q, %v; want %q", tc.sec, tc.key, got, err, tc.want)
		}
	}
	if _, err := l.Get("x", "nope", nil); !errors.Is(err, ErrNoOption) {
		t.Errorf("unset key: %v", err)
	}
}

// TestTimes covers fail2ban's time forms.
func TestTimes(t *testing.T) {
	for in, want := range map[string]string{
		"600": "10m", "10m": "10m", "1h": "1h", "1d": "1d", "1w": "1w", "-1": "-1",
		"1h30m": "1h30m", "1d 12h": "1d12h", "3600*24": "1d", "86400": "1d", "12000": "3h20m",
		"2 days": "2d", "1mo": "4w2d",
	} {
		got, err := duration(in)
		if err != nil || got != want {
			t.Errorf("duration(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "10 parsecs", "1e400", "0"} {
		if got, err := duration(bad); err == nil {
			t.Errorf("duration(%q) = %q, want an error", bad, got)
		}
	}
}
