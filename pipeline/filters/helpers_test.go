package filters_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// lineCase is one line through one built-in filter. host "" means the line
// must not count: no pattern matched, or an ignoreregex vetoed it.
type lineCase struct {
	name, prog, line, host string
}

// nopBanner discards bans: these tests only ask Check.
type nopBanner struct{}

func (nopBanner) Apply(context.Context, []sysban.Ban) error { return nil }

// checkPipeline builds a pipeline with one jail on the built-in filter, for
// Pipeline.Check (which answers in normal mode for every filter).
func checkPipeline(t testing.TB, filter string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New(pipeline.Config{Jails: []pipeline.JailSpec{{
		Name: "j", Filter: filter,
		MaxRetry: 5, FindTime: time.Minute, BanTime: time.Minute,
	}}}, nopBanner{}, pipeline.Options{})
	if err != nil {
		t.Fatalf("New(%s): %v", filter, err)
	}
	return p
}

// newTester runs the built-in filter alone in mode, as the daemon routes
// and matches.
func newTester(t testing.TB, filter, mode string) *pipeline.Tester {
	t.Helper()
	return newTesterOpts(t, filter, pipeline.TesterOptions{Mode: mode})
}

func newTesterOpts(t testing.TB, filter string, opts pipeline.TesterOptions) *pipeline.Tester {
	t.Helper()
	spec, ok := pipeline.BuiltinFilters()[filter]
	if !ok {
		t.Fatalf("no built-in filter %q", filter)
	}
	tester, err := pipeline.NewTester([]pipeline.FilterSpec{spec}, opts)
	if err != nil {
		t.Fatalf("NewTester(%s, mode %q): %v", filter, opts.Mode, err)
	}
	return tester
}

// countedHost is the host of the first match of filter in ms that counts
// as a failure, "" when none does.
func countedHost(ms []pipeline.Match, filter string) (string, netip.Addr) {
	for _, m := range ms {
		if m.Filter == filter && !m.Ignored && !m.Pending {
			return m.Host, m.Addr
		}
	}
	return "", netip.Addr{}
}

// runCases runs cases through the built-in filter in mode with a Tester,
// through Pipeline.Check in normal mode, and through a Tester without the
// literal prefilter, which must not change any verdict.
func runCases(t *testing.T, filter, mode string, cases []lineCase) {
	t.Helper()
	tester := newTester(t, filter, mode)
	slow := newTesterOpts(t, filter, pipeline.TesterOptions{Mode: mode, NoPrefilter: true})
	p := checkPipeline(t, filter)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			msg := &sysban.Message{AppName: tt.prog, Text: tt.line}
			got, _ := countedHost(tester.Test(msg), filter)
			if got != tt.host {
				t.Errorf("%s: %q: host %q, want %q", tt.prog, tt.line, got, tt.host)
			}
			if mode == "" {
				if viaCheck, _ := countedHost(p.Check(tt.line, tt.prog), filter); viaCheck != got {
					t.Errorf("%q: Pipeline.Check host %q, Tester %q", tt.line, viaCheck, got)
				}
			}
			if slowHost, _ := countedHost(slow.Test(msg), filter); slowHost != got {
				t.Errorf("%q: without prefilter host %q, with %q", tt.line, slowHost, got)
			}
		})
	}
}
