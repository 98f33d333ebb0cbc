package nft

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	sysban "github.com/sysban/sysban"
)

var testNFLOG = &NFLOG{
	Group: 7422, Rate: 200, Snaplen: 128, Banned: true,
	TrapTCP: []sysban.PortRange{pr(23, 23), pr(3389, 3389), pr(5900, 5900)},
	TrapUDP: []sysban.PortRange{pr(161, 161)},
}

func TestNFLOGValidate(t *testing.T) {
	long := sysban.JailRule{Name: strings.Repeat("j", 53), Protocol: sysban.TCP, Verdict: sysban.Drop}
	fits := sysban.JailRule{Name: strings.Repeat("j", 52), Protocol: sysban.TCP, Verdict: sysban.Drop}
	tests := []struct {
		name  string
		n     *NFLOG
		rules []sysban.JailRule
		want  string // "" = valid
	}{
		{"nil", nil, []sysban.JailRule{long}, ""},
		{"default", testNFLOG, []sysban.JailRule{sshRule, fits}, ""},
		{"prefix too long", testNFLOG, []sysban.JailRule{long}, "name too long for the NFLOG prefix"},
		{"long name without banned logging", &NFLOG{Rate: 1, Snaplen: 1, TrapTCP: []sysban.PortRange{pr(23, 23)}}, []sysban.JailRule{long}, ""},
		{"rate 0", &NFLOG{Snaplen: 128}, nil, "rate must be at least 1"},
		{"snaplen 0", &NFLOG{Rate: 1}, nil, "snaplen must be at least 1"},
		{"port 0", &NFLOG{Rate: 1, Snaplen: 1, TrapUDP: []sysban.PortRange{pr(0, 5)}}, nil, "trap port range 0-5 is invalid"},
		{"reversed", &NFLOG{Rate: 1, Snaplen: 1, TrapTCP: []sysban.PortRange{pr(9, 5)}}, nil, "trap port range 9-5 is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.validate(tt.rules)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNFLOGDiffer(t *testing.T) {
	reject := sysban.JailRule{Name: "web", Protocol: sysban.All, Verdict: sysban.Reject} // 2 parts per family
	rules := []sysban.JailRule{sshRule, reject}
	c := func(n int, s string) []string { return slices.Repeat([]string{s}, n) }
	join := slices.Concat[[]string]
	intact := join(c(4, "sysban log ssh"), c(4, "sysban jail ssh"), c(8, "sysban log web"), c(8, "sysban jail web"), c(2, "sysban probe"))
	tests := []struct {
		name     string
		n        *NFLOG
		comments []string
		want     string // reasons joined by |
		rest     int    // comments passed on to rulesDiffer
	}{
		{"intact", testNFLOG, intact, "", 12},
		{"no logging, none there", nil, join(c(4, "sysban jail ssh"), c(8, "sysban jail web")), "", 12},
		{"log rule gone", testNFLOG, intact[1:], "jail ssh has 3 of its 4 log rules", 12},
		{"probe rule gone", testNFLOG, intact[:len(intact)-1], "1 of 2 probe log rules", 12},
		{"only tcp traps", &NFLOG{Banned: true, TrapTCP: []sysban.PortRange{pr(23, 23)}}, intact, "2 of 1 probe log rules", 12},
		{"chain flushed", testNFLOG, nil, "jail ssh has 0 of its 4 log rules|jail web has 0 of its 8 log rules|0 of 2 probe log rules", 0},
		// Left over when logging was turned off: rulesDiffer calls them foreign.
		{"logging off, rules left", nil, intact, "2 of 0 probe log rules", 24},
		{"log rules of a removed jail", testNFLOG, join(intact, c(2, "sysban log old")), "", 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest := nflogDiffer(tt.n, rules, tt.comments)
			if strings.Join(got, "|") != tt.want {
				t.Errorf("reasons %q, want %q", got, tt.want)
			}
			if len(rest) != tt.rest {
				t.Errorf("rest %q: %d comments, want %d", rest, len(rest), tt.rest)
			}
		})
	}
}

// TestNFLOGRulesKernel installs jails with NFLOG in a namespace and checks
// the rules the kernel holds: a log rule before each verdict rule with the
// same match, the probe rules last, and verdicts unchanged. Then Guard
// must put back a deleted log rule and a deleted probe rule, and a Setup
// without NFLOG must remove them all.
func TestNFLOGRulesKernel(t *testing.T) {
	ns := newNetNS(t, "l")
	b := openIn(t, ns, Options{})
	if err := b.SetupNFLOG(testCtx(t), []sysban.JailRule{sshRule, webRule}, testNFLOG); err != nil {
		t.Fatalf("SetupNFLOG: %v", err)
	}
	got := ruleLines(t, ns, DefaultTable)
	logStmt := `limit rate 200/second log prefix "sysban:ban:%s" group 7422 snaplen 128 queue-threshold 32`
	want := withNetRules(
		// The gates let trap ports through to the probe rules.
		"tcp dport != { 22-23, 80, 443, 3389, 5900, 8000-8100 } accept",
		"udp dport != 161 accept",
		"tcp dport 22 ip saddr @ssh_v4 "+sprintf(logStmt, "ssh"),
		"tcp dport 22 ip saddr @ssh_v4 drop",
		"tcp dport 22 ip6 saddr @ssh_v6 "+sprintf(logStmt, "ssh"),
		"tcp dport 22 ip6 saddr @ssh_v6 drop",
		"tcp dport { 80, 443, 8000-8100 } ip saddr @web_v4 "+sprintf(logStmt, "web"),
		"tcp dport { 80, 443, 8000-8100 } ip saddr @web_v4 reject with tcp reset",
		"tcp dport { 80, 443, 8000-8100 } ip6 saddr @web_v6 "+sprintf(logStmt, "web"),
		"tcp dport { 80, 443, 8000-8100 } ip6 saddr @web_v6 reject with tcp reset",
		`meta iiftype != loopback tcp dport { 23, 3389, 5900 } tcp flags syn / syn,ack limit rate 200/second log prefix "sysban:probe" group 7422 snaplen 128 queue-threshold 32`,
		`meta iiftype != loopback udp dport 161 limit rate 200/second log prefix "sysban:probe" group 7422 snaplen 128 queue-threshold 32`,
	)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	rg := startGuard(t, b, &memSource{}, GuardOptions{Interval: 200 * time.Millisecond, NFLOG: testNFLOG})
	for _, victim := range []string{`"sysban:ban:web"`, `"sysban:probe"`} {
		h := ruleHandle(t, ns, victim)
		ns.exec(t, "nft", "delete", "rule", "inet", DefaultTable, ChainName, "handle", h)
		select {
		case hl := <-rg.heals:
			if !strings.Contains(hl.reason, "log rules") {
				t.Errorf("heal reason %q, want the log rules named", hl.reason)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("deleted rule %s not restored within 30s", victim)
		}
		if now := ruleLines(t, ns, DefaultTable); strings.Join(now, "\n") != strings.Join(want, "\n") {
			t.Fatalf("after the repair:\n%s", strings.Join(now, "\n"))
		}
	}

	rg.cancel() // the next Setup removes logging: this Guard would restore it
	if err := b.Setup(testCtx(t), []sysban.JailRule{sshRule}); err != nil {
		t.Fatal(err)
	}
	for _, l := range ruleLines(t, ns, DefaultTable) {
		if strings.Contains(l, " log ") {
			t.Errorf("log rule left after a Setup without NFLOG: %s", l)
		}
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
