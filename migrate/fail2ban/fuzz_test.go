package fail2ban

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzINI feeds arbitrary bytes to the INI reader and, as jail.conf, to the
// whole import: errors are fine, panics, hangs and output that `sysban
// check` refuses are not.
func FuzzINI(f *testing.F) {
	f.Add("[DEFAULT]\nbantime = 10m\n[sshd]\nenabled = true\nport = ssh\naction = iptables[port=\"ssh\"]\n  sendmail-whois[dest=root]\n")
	f.Add("[INCLUDES]\nbefore = jail.conf\n[x]\na = %(b)s\nb = %(known/a)s %(default/c)s %(x/a)s %%\n")
	f.Add("  [x]\n  a = 1\n    b\n; c\n# d\ne: f ; g\n")
	f.Add("[x]\nfailregex = ^%(__prefix_line)sfail from <HOST>$\n  <F-USER>.*</F-USER> \\[\\] <ADDR>\nprefregex = ^<F-MLFID>x</F-MLFID><F-CONTENT>.+</F-CONTENT>$\n[Init]\nmaxlines = 2\n")
	f.Add("[x]\nfilter = f[mode=\"a,b\"]\nenabled = yes\nignoreip = 10.0.0.0/8 host.example /etc/x\nbantime = 1d 2h\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseINI("fuzz.conf", []byte(s))
		fsys := fstest.MapFS{
			"jail.conf":       {Data: []byte(s)},
			"filter.d/f.conf": {Data: []byte(strings.ReplaceAll(s, "[x]", "[Definition]"))},
			// A jail that always reaches the filter translation.
			"jail.d/z.conf": {Data: []byte("[fz]\nenabled = true\nfilter = f[mode=x]\naction = iptables[port=ssh]\n")},
		}
		res, err := Import(fsys, "fuzz")
		switch {
		case err != nil && errors.Is(err, errOutputInvalid):
			t.Fatalf("the translation does not pass check: %v", err) // an importer bug
		case err == nil && res.Report == nil:
			t.Fatal("no report")
		}
	})
}
