package pipeline

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/internal/sample"
)

// TestPrematchConcurrentEqualsTest: every sample line of every built-in
// filter, run through one all-filter Tester with Test, and through another
// with Prematch on several goroutines at once then TestPrematched in order,
// gives the same matches (multi-line correlation included).
func TestPrematchConcurrentEqualsTest(t *testing.T) {
	var msgs []sysban.Message
	for _, path := range samplePaths(t) {
		fx, err := sample.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range fx.Lines {
			msgs = append(msgs, fl.Msg)
		}
	}
	var specs []FilterSpec
	for _, s := range BuiltinFilters() {
		specs = append(specs, s)
	}
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	serial, err := NewTester(specs, TesterOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	split, err := NewTester(specs, TesterOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}

	pre := make([]Prematched, len(msgs))
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(msgs); i += workers {
				split.Prematch(&msgs[i], &pre[i])
			}
		}()
	}
	wg.Wait()
	failures, pending := 0, 0
	for i := range msgs {
		want := fmt.Sprintf("%+v", serial.Test(&msgs[i]))
		gotMatches := split.TestPrematched(&msgs[i], &pre[i])
		if got := fmt.Sprintf("%+v", gotMatches); got != want {
			t.Fatalf("message %d %q: prematched %s, Test %s", i, msgs[i].Text, got, want)
		}
		for _, m := range gotMatches {
			switch {
			case m.Pending:
				pending++
			case !m.Ignored:
				failures++
			}
		}
	}
	// The comparison means something only if both kinds happened.
	if failures == 0 || pending == 0 {
		t.Fatalf("%d failures, %d pending over %d lines: the samples exercised too little", failures, pending, len(msgs))
	}
}
