package pipeline

import (
	"math/bits"
	"strings"
)

// maxLineBytes bounds each failure line kept for a ban's record; longer
// lines are cut.
const maxLineBytes = 512

// lostLine stands in a ban's lines for a line the jail no longer kept:
// newer failures overwrote it in the bounded line ring (a flood from many
// addresses between this address's failures).
const lostLine = "(line not kept: overwritten by newer failures)"

// A lineRef locates a kept line: its position in the stream of all bytes a
// lineArena was given, modulo 2^53, above lineLenBits of length. The
// position doubles as the generation check: a line is intact while fewer
// than len(buf) bytes were written after its first byte. Zero is the empty
// line.
const (
	lineLenBits = 10
	linePosMask = 1<<(63-lineLenBits) - 1 // bit 63 stays free for ringFlag
	lineLenMask = 1<<lineLenBits - 1
)

// Fails to compile if maxLineBytes outgrows a lineRef's length field.
const _ = uint(lineLenMask - maxLineBytes)

// Kept lines: each jail keeps its failure lines in one byte ring per shard,
// maxTracked×lineBytesPerTracked bytes in all but at most maxLineArena, so
// what the lines cost is bounded by configuration, not by how many
// addresses an attacker uses. Under a flood the oldest lines are
// overwritten first; a ban whose line is gone carries lostLine instead.
const (
	lineBytesPerTracked = 32
	maxLineArena        = 16 << 20
)

// shardLineBytes is the line ring of each of a jail's shards: its share of
// the jail's, rounded up to a power of two (offsets are masks).
func shardLineBytes(maxTracked, shards int) int {
	arena := min(max(maxTracked/shards, 1), maxLineArena/lineBytesPerTracked/shards) * lineBytesPerTracked
	return max(1<<bits.Len(uint(arena-1)), minLineArena)
}

// minLineArena is where an arena starts (and its least bound): it must
// hold a line of maxLineBytes.
const minLineArena = 4 << 10

// lineArena is one shard's kept failure lines: a byte ring of at most max
// bytes (a power of two), allocated as it fills, so an idle jail costs
// nothing and an attacked one a bounded amount whatever the number of
// addresses. Lines are copied in, so none pins a receive buffer, and
// nothing is allocated per line once the ring has grown.
type lineArena struct {
	buf  []byte // a power of two long; stream position p is at buf[p&(len-1)]
	head uint64 // bytes written so far: the next line's position
	max  int
}

// put copies line (at most maxLineBytes) in and returns its lineRef.
func (a *lineArena) put(line string) uint64 {
	n := len(line)
	if n == 0 {
		return 0
	}
	if a.head+uint64(n) > uint64(len(a.buf)) && len(a.buf) < a.max {
		a.grow(n)
	}
	off := a.head & uint64(len(a.buf)-1)
	c := copy(a.buf[off:], line)
	copy(a.buf, line[c:])
	ref := (a.head&linePosMask)<<lineLenBits | uint64(n)
	a.head += uint64(n)
	return ref
}

// grow makes room for n more bytes, up to max. It runs only before the
// ring first wraps (head <= len(buf)), so every position keeps its offset.
func (a *lineArena) grow(n int) {
	size := max(2*len(a.buf), minLineArena)
	for uint64(size) < a.head+uint64(n) {
		size *= 2
	}
	buf := make([]byte, min(size, a.max))
	copy(buf, a.buf[:a.head])
	a.buf = buf
}

// intact reports whether the line at ref has not been overwritten.
func (a *lineArena) intact(ref uint64) bool {
	pos := ref >> lineLenBits
	return len(a.buf) > 0 && (a.head-pos)&linePosMask <= uint64(len(a.buf))
}

// size is how many bytes writeTo writes for ref.
func (a *lineArena) size(ref uint64) int {
	n := int(ref & lineLenMask)
	if n == 0 {
		return 0
	}
	if !a.intact(ref) {
		return len(lostLine)
	}
	return n
}

// writeTo appends the line at ref to b, or lostLine if it was overwritten.
func (a *lineArena) writeTo(b *strings.Builder, ref uint64) {
	n := int(ref & lineLenMask)
	if n == 0 {
		return
	}
	if !a.intact(ref) {
		b.WriteString(lostLine)
		return
	}
	off := int((ref >> lineLenBits) & uint64(len(a.buf)-1))
	end := min(off+n, len(a.buf))
	b.Write(a.buf[off:end])
	b.Write(a.buf[:n-(end-off)])
}
