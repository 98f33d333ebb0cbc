package pipeline

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNeedleAsContains holds needle.in to strings.Contains: table cases at
// the edges (the match at either end, the rare byte first or last, text
// shorter than the needle, repeats), then random texts and needles over a
// small alphabet, where partial matches are frequent.
func TestNeedleAsContains(t *testing.T) {
	tests := []struct{ text, lit string }{
		{"", ""}, {"abc", ""}, {"", "a"}, {"a", "a"}, {"b", "a"},
		{"ab", "abc"}, {"abc", "abc"}, {"xabc", "abc"}, {"abcx", "abc"},
		{"user=<u>, rip=192.0.2.1, lip=10.0.0.1", " rip="},
		{"user=<u>, rip=192.0.2.1, lip=10.0.0.1", ", lip="},
		{"user=<u>,rip=192.0.2.1", " rip="},
		{"q  q  qz", "qz"}, {"zq", "qz"}, {"qzq", "zq"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "aab"},
		{"port 22 port", " port "}, {"x port ", " port "}, {" port", " port "},
	}
	for _, tt := range tests {
		nd := newNeedle(tt.lit)
		if got, want := nd.in(tt.text), strings.Contains(tt.text, tt.lit); got != want {
			t.Errorf("needle %q (rare byte %d) in %q = %v, want %v", tt.lit, nd.off, tt.text, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab =q"
	word := func(max int) string {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 100000 {
		text, lit := word(40), word(5)
		nd := newNeedle(lit)
		if got, want := nd.in(text), strings.Contains(text, lit); got != want {
			t.Fatalf("needle %q (rare byte %d) in %q = %v, want %v", lit, nd.off, text, got, want)
		}
	}
}

// FuzzNeedle holds needle.in to strings.Contains on arbitrary bytes.
func FuzzNeedle(f *testing.F) {
	f.Add("user=<u>, rip=192.0.2.1, lip=10.0.0.1", " rip=")
	f.Add("Failed password for root from 192.0.2.1 port 22 ssh2", " port ")
	f.Add("qzq", "zq")
	f.Fuzz(func(t *testing.T, text, lit string) {
		nd := newNeedle(lit)
		if got, want := nd.in(text), strings.Contains(text, lit); got != want {
			t.Fatalf("needle %q (rare byte %d) in %q = %v, want %v", lit, nd.off, text, got, want)
		}
	})
}

// BenchmarkNeedle compares a needle with strings.Contains on a log line,
// for a literal that starts with a blank and is not in it (the common
// case: the prefilter rejecting a line).
func BenchmarkNeedle(b *testing.B) {
	const text = "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<user>, method=PLAIN, rip=192.0.2.1, lip=198.51.100.1, TLS, session=<abc>"
	const lit = " mpid="
	nd := newNeedle(lit)
	b.Run("needle", func(b *testing.B) {
		for b.Loop() {
			nd.in(text)
		}
	})
	b.Run("Contains", func(b *testing.B) {
		for b.Loop() {
			strings.Contains(text, lit)
		}
	})
}
