package main

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// builtinTester runs every built-in filter as `sysban test all` does.
func builtinTester(t *testing.T, now time.Time) *pipeline.Tester {
	t.Helper()
	var specs []pipeline.FilterSpec
	for _, f := range pipeline.BuiltinFilters() {
		specs = append(specs, f)
	}
	tst, err := pipeline.NewTester(specs, pipeline.TesterOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return tst
}

// TestGeneratorDetections checks that every line the generator calls a
// failure is one for the built-in filters, with the address it wrote, and
// that no benign line is: otherwise the bench's detection check means nothing.
func TestGeneratorDetections(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tst := builtinTester(t, now)
	g := NewGenerator(7, 500)
	lines := make([]Line, 0, 20100)
	for range 20000 {
		lines = append(lines, g.Next())
	}
	lines = append(lines, g.Flush()...)
	var m sysban.Message
	var fails, pending int
	for i, l := range lines {
		m = sysban.Message{}
		if err := receiver.ParseFileLine(bytes.TrimSuffix(AppendFile(nil, now, l), []byte("\n")), now, &m); err != nil {
			t.Fatalf("line %d %q: %v", i, l.Text, err)
		}
		ms := tst.Test(&m)
		matched := slices.ContainsFunc(ms, func(x pipeline.Match) bool { return !x.Pending && !x.Ignored && x.Addr.IsValid() })
		open := slices.ContainsFunc(ms, func(x pipeline.Match) bool { return x.Pending })
		if matched != l.Fail {
			t.Errorf("line %d %s: %q: matched %v, generator says failure %v (%+v)", i, l.Prog, l.Text, matched, l.Fail, ms)
		}
		if open != l.Pending {
			t.Errorf("line %d %s: %q: pending %v, generator says %v", i, l.Prog, l.Text, open, l.Pending)
		}
		if matched {
			fails++
		}
		if open {
			pending++
		}
	}
	c := g.Counts()
	if fails != c.Failures+c.Same || pending != c.Pending || c.Lines != len(lines) {
		t.Errorf("tester saw %d failures, %d pending over %d lines; generator counted %+v", fails, pending, len(lines), c)
	}
	if share := float64(c.Failures) / float64(c.Lines); share < 0.15 || share > 0.25 {
		t.Errorf("failure share %.2f, want about 0.2", share)
	}
	for _, kind := range []string{"sshd", "postfix", "postfix-sasl", "dovecot", "sendmail", "named", "openvpn", "apache"} {
		if c.ByKind[kind] == 0 {
			t.Errorf("no %s failures generated", kind)
		}
	}
}

// TestGeneratorDeterministic: the same seed gives the same stream, another
// seed another one.
func TestGeneratorDeterministic(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	gen := func(seed uint64) []byte {
		var b bytes.Buffer
		if _, err := WriteLog(&b, NewGenerator(seed, 100), 2000, now); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if !bytes.Equal(gen(1), gen(1)) {
		t.Error("seed 1 gave two different logs")
	}
	if bytes.Equal(gen(1), gen(2)) {
		t.Error("seeds 1 and 2 gave the same log")
	}
}

func TestAppendWire(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 5, 0, time.UTC)
	got := string(AppendWire(nil, now, Line{Prog: "sshd", PID: 42, Text: "hello"}))
	if want := "<38>Jun  1 12:00:05 bench sshd[42]: hello"; got != want {
		t.Errorf("AppendWire = %q, want %q", got, want)
	}
}
