package filters_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

func TestPortprobeFilter(t *testing.T) {
	runCases(t, "portprobe", "", []lineCase{
		{"tcp v4", "sysban-nflog", "probe from 203.0.113.9 to tcp port 23", "203.0.113.9"},
		{"udp v6", "sysban-nflog", "probe from 2001:db8::9 to udp port 5060", "2001:db8::9"},
		{"v4-mapped", "sysban-nflog", "probe from ::ffff:203.0.113.9 to tcp port 3389", "::ffff:203.0.113.9"},
		{"other program", "sshd", "probe from 203.0.113.9 to tcp port 23", ""},
		{"trailing text", "sysban-nflog", "probe from 203.0.113.9 to tcp port 23 x", ""},
		{"two hosts", "sysban-nflog", "probe from 192.0.2.1 to tcp port 1 probe from 203.0.113.9 to tcp port 23", ""},
		{"other protocol", "sysban-nflog", "probe from 203.0.113.9 to sctp port 23", ""},
		{"no port", "sysban-nflog", "probe from 203.0.113.9 to tcp port ", ""},
		{"a name is forged", "sysban-nflog", "probe from evil.example to tcp port 23", ""},
		{"a hex-only name is forged", "sysban-nflog", "probe from bad.cafe to tcp port 23", ""},
	})
}

// FuzzPortprobeInjection: the messages are sysban's, but a syslog sender
// allowed by listen.allow can forge the program name. Whatever text lands
// in the line, a failure is counted only for a line of exactly the shape
// sysban writes, and its host is the address in it, never a name.
func FuzzPortprobeInjection(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "192.0.2.7 to tcp port 23", "x", "", "2001:db8::1", "\n"} {
		f.Add(s)
	}
	tester, err := pipeline.NewTester([]pipeline.FilterSpec{pipeline.BuiltinFilters()["portprobe"]}, pipeline.TesterOptions{})
	if err != nil {
		f.Fatal(err)
	}
	templates := []string{
		"probe from 192.0.2.7 to tcp port 23%s",
		"probe from 192.0.2.7 to %s port 23",
		"probe from 192.0.2.7%s to udp port 161",
		"%s probe from 192.0.2.7 to tcp port 23",
	}
	f.Fuzz(func(t *testing.T, evil string) {
		for _, tmpl := range templates {
			line := strings.ReplaceAll(tmpl, "%s", evil)
			for _, m := range tester.Test(&sysban.Message{AppName: "sysban-nflog", Text: line}) {
				if m.Pending || m.Ignored {
					continue
				}
				// The pipeline trims trailing blanks before matching.
				f := strings.Split(strings.TrimRight(line, " \t\r\n"), " ")
				if len(f) != 7 || f[0] != "probe" || f[1] != "from" || f[2] != m.Host || f[3] != "to" ||
					(f[4] != "tcp" && f[4] != "udp") || f[5] != "port" {
					t.Fatalf("%q: host %q from a line sysban never writes", line, m.Host)
				}
				// Not an address is fine only when it cannot be a name
				// to resolve: with ':' (no name has one) or only digits
				// and dots (no top-level domain is numeric).
				if _, err := netip.ParseAddr(m.Host); err != nil && !strings.Contains(m.Host, ":") &&
					strings.Trim(m.Host, "0123456789.") != "" {
					t.Fatalf("%q: host %q is a name, not an address", line, m.Host)
				}
			}
		}
	})
}
