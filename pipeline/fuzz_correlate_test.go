package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// FuzzCorrelation feeds arbitrary line sequences through the correlating
// filters. Each input line is "P N text": P picks the program, N the pid,
// the rest is the message. It checks what must hold whatever arrives: one
// match per filter and line, hosts are clean substrings of lines already
// seen, a line completes a multi-line failure only after some line opened
// one for that filter, and the pending sets stay within their bound.
func FuzzCorrelation(f *testing.F) {
	// Seeds: short interleavings of the sample logs' correlated lines (the
	// fuzzer mutates short inputs far faster than whole files).
	for _, seed := range []string{
		"0 920 Connection from 198.51.100.40 port 40100 on 192.0.2.1 port 22\n0 921 Failed password for root from 198.51.100.41 port 2 ssh2\n0 920 Disconnecting: Too many authentication failures [preauth]\n",
		"1 2370 s0QBU1Ir002370: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed\n0 1 noise\n1 2370 s0QBU1Ir002370: host.example [218.18.59.223] (may be forged) did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA\n",
		"1 3 s0QC00aa003001: AUTH failure (PLAIN): x\n1 3 s0QC01bb003002: AUTH failure (LOGIN): y\n1 3 s0QC01bb003002: lost input channel from [192.0.2.22] to MTA after auth\n1 3 s0QC00aa003001: from=<a>, size=0, relay=[IPv6:2001:db8::25]\n",
		"2 5 badlogin: [192.0.2.41] plaintext bob SASL(-13): authentication failure: checkpass failed\n",
	} {
		f.Add(seed)
	}
	f.Add("3 1 q1: auth failed\n3 1 q1: client 192.0.2.1 gone\n3 7 connect from 10.0.0.1\n3 7 too many failures\n")
	programs := []string{"sshd", "sendmail", "imap", "app"}
	specs := []FilterSpec{corrSpec}
	for _, name := range []string{"sshd", "sendmail-auth", "saslauthd"} {
		specs = append(specs, BuiltinFilters()[name])
	}
	// Compiled once; each input gets a fresh clock and fresh state.
	var clk *fakeClock
	tester, err := NewTester(specs, TesterOptions{Now: func() time.Time { return clk.Now() }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input string) {
		clk = newFakeClock()
		for i := range tester.filters {
			tester.filters[i].st = newCorrState(tester.filters[i].f, DefaultMaxPending)
		}
		var seen strings.Builder
		opened := map[string]int{}
		lines := strings.Split(input, "\n")
		if len(lines) > 64 {
			lines = lines[:64] // enough to interleave; keeps each run short
		}
		for _, line := range lines {
			prog, rest, _ := strings.Cut(line, " ")
			pid, text, _ := strings.Cut(rest, " ")
			m := &sysban.Message{AppName: "app", ProcID: pid, Text: text}
			if len(prog) == 1 && prog[0] >= '0' && int(prog[0]-'0') < len(programs) {
				m.AppName = programs[prog[0]-'0']
			}
			seen.WriteString(text + "\n")
			clk.Advance(time.Duration(len(text)) * time.Second)
			ms := tester.Test(m)
			filters := map[string]bool{}
			for _, mt := range ms {
				if filters[mt.Filter] {
					t.Fatalf("%q: two matches from %s", line, mt.Filter)
				}
				filters[mt.Filter] = true
				if mt.Pattern < 0 || mt.Pattern >= len(tester.Patterns(mt.Filter)) || mt.Regex != tester.Patterns(mt.Filter)[mt.Pattern] {
					t.Fatalf("%q: bad pattern index %+v", line, mt)
				}
				if mt.Pending && mt.Correlated {
					t.Fatalf("%q: pending and correlated", line)
				}
				if mt.Pending {
					if !mt.Ignored {
						opened[mt.Filter]++
					}
					continue
				}
				if mt.Correlated {
					if opened[mt.Filter] == 0 {
						t.Fatalf("%q: completed a failure nothing opened", line)
					}
					opened[mt.Filter]--
				}
				if mt.Host == "" || strings.ContainsAny(mt.Host, " \t\n[]'\"") || !strings.Contains(seen.String(), mt.Host) {
					t.Fatalf("%q: bad host %q", line, mt.Host)
				}
			}
		}
		for _, tf := range tester.filters {
			if n, _ := tf.st.stats(clk.Now()); n > DefaultMaxPending {
				t.Fatalf("%s: %d pending", tf.f.name, n)
			}
		}
	})
}
