package fleet

import (
	"fmt"
	"testing"
	"time"
)

// TestLiveLinger: an update that finds the enforcer idle is applied alone,
// at once, and so is a lone update right behind a lone one; in a stream
// (the last batch, or this one, of more than one) the batch takes what
// arrives meanwhile, up to liveBatch, and an empty wait ends with the
// batch as it was.
func TestLiveLinger(t *testing.T) {
	entries := func(n int) chan *bucketEntry {
		ch := make(chan *bucketEntry, n)
		for i := range n {
			ch <- &bucketEntry{key: fmt.Sprint("n.j.", i)}
		}
		return ch
	}
	first := []*bucketEntry{{key: "first"}}
	two := []*bucketEntry{{key: "first"}, {key: "second"}}
	tests := []struct {
		name     string
		lastEnd  time.Time
		lastSize int
		batch    []*bucketEntry
		waiting  int
		want     int // batch length
		leftOver int // still in the channel
	}{
		{"first update ever", time.Time{}, 0, first, 5, 1, 5},
		{"after a quiet spell", time.Now().Add(-time.Second), 3, first, 5, 1, 5},
		{"a lone update right behind a lone one", time.Now().Add(time.Hour), 1, first, 5, 1, 5},
		{"streaming", time.Now().Add(time.Hour), 3, first, 5, 6, 0},
		{"streaming: two came behind a lone one", time.Now().Add(time.Hour), 1, two, 5, 7, 0},
		{"streaming, more than a batch", time.Now().Add(time.Hour), 3, first, 2 * liveBatch, liveBatch, liveBatch + 1},
		{"streaming, nothing more comes", time.Now().Add(time.Hour), 3, first, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// lastEnd in the future: "just now", however slow the machine.
			l := liveLinger{lastEnd: tt.lastEnd, lastSize: tt.lastSize}
			ch := entries(tt.waiting)
			got := l.collect(ch, append([]*bucketEntry(nil), tt.batch...))
			if len(got) != tt.want || len(ch) != tt.leftOver || got[0].key != "first" {
				t.Errorf("batch of %d (first %q), %d left; want %d, %d left", len(got), got[0].key, len(ch), tt.want, tt.leftOver)
			}
		})
	}
}
