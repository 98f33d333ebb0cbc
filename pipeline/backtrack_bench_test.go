package pipeline

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkBacktrackMatch compares one pattern on both engines, on a line
// it matches and on one that passes the prefilter but does not match; and
// measures a catastrophic line, whose ns/op is the timeout bound
// (matchtimeout 1ms plus the engine's clock).
func BenchmarkBacktrackMatch(b *testing.B) {
	const src = `^login failed for \S+ from <HOST>(?: port \d+)?$`
	lines := map[string]string{
		"hit":  "login failed for alice from 198.51.100.4 port 52011",
		"miss": "login failed for alice from 198.51.100.4 after 3 tries",
	}
	for _, engine := range []string{EngineRE2, EngineBacktrack} {
		spec := FilterSpec{Name: "bench", Programs: []string{"app"}, Engine: engine, FailRegex: []string{src}}
		f, err := CompileFilter(spec)
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range []string{"hit", "miss"} {
			line := lines[name]
			b.Run(engine+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					f.match(line, true)
				}
			})
		}
	}
	spec := FilterSpec{Name: "slow", Programs: []string{"app"}, Engine: EngineBacktrack, MatchTimeout: time.Millisecond,
		FailRegex: []string{`^bad (a+)+! from <HOST>$`}}
	f, err := CompileFilter(spec)
	if err != nil {
		b.Fatal(err)
	}
	evil := "bad " + strings.Repeat("a", 60) + "? from 203.0.113.50"
	b.Run("backtrack/catastrophic-1ms", func(b *testing.B) {
		for b.Loop() {
			f.match(evil, true)
		}
		if f.Timeouts() == 0 {
			b.Fatal("the catastrophic line never timed out")
		}
	})
}
