package fleet

import (
	"fmt"
	"testing"
	"time"
)

// TestLiveLinger: an update that finds the enforcer idle is applied alone,
// at once; in a stream the batch takes what arrives meanwhile, up to
// liveBatch, and an empty wait ends with the batch as it was.
func TestLiveLinger(t *testing.T) {
	entries := func(n int) chan *bucketEntry {
		ch := make(chan *bucketEntry, n)
		for i := range n {
			ch <- &bucketEntry{key: fmt.Sprint("n.j.", i)}
		}
		return ch
	}
	first := []*bucketEntry{{key: "first"}}
	tests := []struct {
		name     string
		lastEnd  time.Time
		waiting  int
		want     int // batch length
		leftOver int // still in the channel
	}{
		{"first update ever", time.Time{}, 5, 1, 5},
		{"after a quiet spell", time.Now().Add(-time.Second), 5, 1, 5},
		{"streaming", time.Now().Add(time.Hour), 5, 6, 0},
		{"streaming, more than a batch", time.Now().Add(time.Hour), 2 * liveBatch, liveBatch, liveBatch + 1},
		{"streaming, nothing more comes", time.Now().Add(time.Hour), 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// lastEnd in the future: "just now", however slow the machine.
			l := liveLinger{lastEnd: tt.lastEnd}
			ch := entries(tt.waiting)
			got := l.collect(ch, append([]*bucketEntry(nil), first...))
			if len(got) != tt.want || len(ch) != tt.leftOver || got[0].key != "first" {
				t.Errorf("batch of %d (first %q), %d left; want %d, %d left", len(got), got[0].key, len(ch), tt.want, tt.leftOver)
			}
		})
	}
}
