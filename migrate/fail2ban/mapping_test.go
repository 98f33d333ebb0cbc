package fail2ban

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
)

// importMap imports files given in memory and loads the result.
func importMap(t *testing.T, files map[string]string) (*config.Config, *Report) {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, c := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(c)}
	}
	res, err := Import(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test", res.YAML, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	return cfg, res.Report
}

// TestFilterMapping: fail2ban filter names and modes to sysban's built-in
// filters, and a user's .local taking precedence over the built-in.
func TestFilterMapping(t *testing.T) {
	tests := []struct {
		filter, wantFilter, wantMode string
	}{
		{"sshd", "sshd", ""},
		{"sshd[mode=aggressive]", "sshd", "aggressive"},
		{"sshd[mode=ddos]", "sshd", "ddos"},
		{"sshd[mode=extra]", "sshd", ""},
		{"sshd-ddos", "sshd", "ddos"},
		{"postfix[mode=auth]", "postfix-sasl", ""},
		{"postfix[mode=aggressive]", "postfix", "aggressive"},
		{"postfix", "postfix", ""},
		{"dovecot", "dovecot", ""},
		{"named-refused", "named", ""},
		{"apache-auth", "apache", ""},
		{"sendmail-auth", "sendmail-auth", ""},
		{"sendmail-reject[mode=extra]", "sendmail-reject", "aggressive"},
		{"recidive", "recidive", ""},
	}
	for _, tc := range tests {
		cfg, _ := importMap(t, map[string]string{"jail.conf": "[j]\nenabled = true\nfilter = " + tc.filter + "\n"})
		j := jailOf(t, cfg, "j")
		if j.Filter != tc.wantFilter || j.Mode != tc.wantMode {
			t.Errorf("filter = %s: sysban %s mode %q, want %s mode %q", tc.filter, j.Filter, j.Mode, tc.wantFilter, tc.wantMode)
		}
	}
	// A .local of the user's own is translated, not replaced.
	cfg, _ := importMap(t, map[string]string{
		"jail.conf":            "[sshd]\nenabled = true\n",
		"filter.d/common.conf": "[DEFAULT]\n__prefix_line = \\s*(?:\\S+ )?(?:%(_daemon)s(?:\\[\\d+\\])?: )?\n",
		"filter.d/sshd.conf":   "[INCLUDES]\nbefore = common.conf\n[Definition]\n_daemon = sshd\nfailregex = ^%(__prefix_line)sstock from <HOST>$\n",
		"filter.d/sshd.local":  "[Definition]\nfailregex = %(known/failregex)s\n            ^%(__prefix_line)smine from <ADDR> port \\d+$\n",
	})
	j := jailOf(t, cfg, "sshd")
	spec := cfg.Filters[j.Filter]
	if j.Filter != "sshd-local" || len(spec.FailRegex) != 2 || !strings.HasSuffix(spec.FailRegex[1], "mine from <HOST> port \\d+$") || spec.Programs[0] != "sshd" {
		t.Errorf("sshd.local: jail filter %s, spec %+v", j.Filter, spec)
	}
}

// TestBanActions: action names and arguments to ports, protocol and
// verdict.
func TestBanActions(t *testing.T) {
	tests := []struct {
		name, jail        string
		ports             string // as sysban prints them
		protocol, verdict string
	}{
		{"multiport", "port = ssh,2222\naction = iptables-multiport[port=\"ssh,2222\"]", "22,2222", "tcp", "reject"},
		{"allports", "port = ssh\naction = iptables-allports", "", "tcp", "reject"},
		{"blocktype argument", "port = ssh\naction = iptables[blocktype=DROP]", "22", "tcp", "drop"},
		{"udp and tcp", "port = domain\naction = iptables-multiport[protocol=udp]\n         iptables-multiport[protocol=tcp]", "53", "all", "reject"},
		{"range", "port = 1000:2000\naction = nftables-multiport", "1000-2000", "tcp", "reject"},
		{"pf drops", "port = http\naction = pf", "80", "tcp", "drop"},
		{"mail only", "port = ssh\naction = sendmail-whois[dest=admin@example.org]", "", "all", "drop"},
		{"banaction", "port = smtp\nbanaction = firewallcmd-ipset[blocktype=DROP]\naction = %(banaction)s[port=\"%(port)s\"]", "25", "tcp", "drop"},
	}
	for _, tc := range tests {
		cfg, _ := importMap(t, map[string]string{"jail.conf": "[j]\nenabled = true\nfilter = sshd\n" + tc.jail + "\n"})
		j := jailOf(t, cfg, "j")
		rule := j.Rule()
		slices.SortFunc(rule.Ports, func(a, b sysban.PortRange) int { return int(a.First) - int(b.First) })
		var ports []string
		for _, p := range rule.Ports {
			if p.First == p.Last {
				ports = append(ports, strconv.Itoa(int(p.First)))
			} else {
				ports = append(ports, strconv.Itoa(int(p.First))+"-"+strconv.Itoa(int(p.Last)))
			}
		}
		if got := strings.Join(ports, ","); got != tc.ports || string(rule.Protocol) != tc.protocol || string(rule.Verdict) != tc.verdict {
			t.Errorf("%s: ports %q protocol %s verdict %s, want %q %s %s", tc.name, got, rule.Protocol, rule.Verdict, tc.ports, tc.protocol, tc.verdict)
		}
	}
}

// TestBanTimeIncrement: fail2ban's bantime.* keys.
func TestBanTimeIncrement(t *testing.T) {
	cfg, rep := importMap(t, map[string]string{"jail.conf": `[DEFAULT]
bantime = 1h
bantime.increment = true
bantime.maxtime = 5w
bantime.rndtime = 10m
bantime.factor = 2
bantime.overalljails = true
[j]
enabled = true
filter = sshd
bantime.multipliers = 1 3 9 27
[k]
enabled = true
filter = sshd
bantime.increment = false
`})
	j, k := jailOf(t, cfg, "j"), jailOf(t, cfg, "k")
	if inc := j.BanTimeIncrement; !inc.Enabled || inc.Multiplier != 3 || inc.MaxTime != 5*7*24*time.Hour || inc.RndTime != 10*time.Minute {
		t.Errorf("j: %+v", inc)
	}
	if k.BanTimeIncrement.Enabled {
		t.Errorf("k: %+v", k.BanTimeIncrement)
	}
	var b strings.Builder
	rep.WriteText(&b)
	for _, want := range []string{"dropped bantime.factor = 2 (sysban has no factor", "dropped bantime.overalljails = true", "changed bantime.multipliers = 1 3 9 27 -> bantimeincrement.multiplier: 3"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
