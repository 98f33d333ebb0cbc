package pipeline

import (
	"testing"
)

// BenchmarkFastMatchSamples runs the fast program of every built-in
// pattern over every sample line that its prefilter passes (the runs
// matching does: on the bench log every such run is a match), one op per
// run. It is what the interpreter costs per match, whatever the pattern
// list holds; ns/op is the mean over all pairs.
func BenchmarkFastMatchSamples(b *testing.B) {
	type pair struct {
		prog *fastProg
		text string
	}
	var pairs []pair
	texts := sampleTexts(b)
	for _, p := range builtinPatterns(b) {
		if p.fast == nil {
			continue
		}
		for _, s := range texts {
			if p.pre.mayMatch(s) {
				pairs = append(pairs, pair{p.fast, s})
			}
		}
	}
	if len(pairs) == 0 {
		b.Fatal("no pattern passes its prefilter on any sample line")
	}
	var loc [fastMaxSlots]int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := &pairs[i%len(pairs)]
		p.prog.run(p.text, loc[:])
		i++
	}
}
