package receiver

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// chunkConn is a net.Conn whose reads return the stream in the sizes given
// (cycling), so frames straddle reads at every offset. Deadlines are
// recorded, not enforced.
type chunkConn struct {
	net.Conn // nil: only Read and SetReadDeadline are called
	data     []byte
	sizes    []int
	i        int
	maxRead  int       // largest buffer a Read was offered
	deadline int       // SetReadDeadline calls
	dl       time.Time // the deadline last set
}

func (c *chunkConn) Read(b []byte) (int, error) {
	c.maxRead = max(c.maxRead, len(b))
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(c.data), c.sizes[c.i%len(c.sizes)])
	c.i++
	copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func (c *chunkConn) SetReadDeadline(dl time.Time) error { c.deadline++; c.dl = dl; return nil }

func collectFrames(t *testing.T, stream []byte, sizes []int, max int) ([]string, *chunkConn, error) {
	t.Helper()
	c := &chunkConn{data: stream, sizes: sizes}
	sp := NewSplitter(max, nil)
	fc := &frameClock{conn: c, sp: sp, idle: time.Minute, frame: time.Minute}
	var got []string
	err := readFrames(fc, sp.BufferSize(), nil, func(b []byte) { got = append(got, string(b)) })
	return got, c, err
}

// TestReadFrames checks that every frame comes out whole and in order
// whatever the read sizes, for both framings, with frames longer than the
// starting buffer, and that the read buffer grows for a sender that keeps
// it full but stays small for one that trickles.
func TestReadFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var want []string
	var lf, oc bytes.Buffer
	for i := range 3000 {
		n := 20 + rng.IntN(200)
		if i%500 == 0 {
			n = 20000 // longer than readBufMin
		}
		msg := fmt.Sprintf("<38>Nov 21 18:40:46 h sshd[%d]: %s", i, strings.Repeat("x", n))
		want = append(want, msg)
		lf.WriteString(msg + "\n")
		fmt.Fprintf(&oc, "%d %s", len(msg), msg)
	}
	// The first 400 frames (one of them longer than readBufMin).
	trickleEnd := 0
	for _, m := range want[:400] {
		trickleEnd += len(m) + 1
	}
	tests := []struct {
		name      string
		stream    []byte
		sizes     []int
		wantBig   bool // the buffer must have grown past the longest frame
		wantSmall bool // the buffer must never have exceeded what the frames needed
	}{
		{"lf_bulk", lf.Bytes(), []int{1 << 30}, true, false},
		{"octet_bulk", oc.Bytes(), []int{1 << 30}, true, false},
		{"lf_odd_reads", lf.Bytes(), []int{1, 7, 4095, 4096, 13, 65537, 3}, false, false},
		{"octet_odd_reads", oc.Bytes(), []int{3, 100, 1, 8191, 2}, false, false},
		{"lf_trickle", lf.Bytes()[:trickleEnd], []int{100}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, c, err := collectFrames(t, tt.stream, tt.sizes, 64<<10)
			if err != nil {
				t.Fatalf("readFrames: %v", err)
			}
			w := want
			if len(got) < len(w) {
				w = w[:len(got)]
			}
			if tt.wantSmall && len(got) != 400 {
				t.Fatalf("got %d frames, want 400", len(got))
			}
			if len(got) == 0 || !slicesEqual(got, w) {
				t.Fatalf("got %d frames, first mismatch at %d", len(got), firstDiff(got, w))
			}
			if !tt.wantSmall && len(got) != len(want) {
				t.Fatalf("got %d frames, want %d", len(got), len(want))
			}
			if tt.wantBig && c.maxRead < readBufMax/2 {
				t.Errorf("largest read offered %d bytes, want the buffer grown toward %d", c.maxRead, readBufMax)
			}
			if tt.wantSmall && c.maxRead > 32<<10 {
				t.Errorf("largest read offered %d bytes to a 100-byte trickle", c.maxRead)
			}
		})
	}
}

// TestReadFramesDeadlineSlack checks that a busy stream does not re-arm its
// idle deadline on every read (the slack), but still does so at first.
func TestReadFramesDeadlineSlack(t *testing.T) {
	stream := bytes.Repeat([]byte("<38>Nov 21 18:40:46 h sshd[1]: Failed password\n"), 20000)
	got, c, err := collectFrames(t, stream, []int{512}, 64<<10)
	if err != nil || len(got) != 20000 {
		t.Fatalf("readFrames: %d frames, %v", len(got), err)
	}
	if c.deadline == 0 || c.deadline > c.i/10 {
		t.Errorf("SetReadDeadline called %d times for %d reads, want at least once and far fewer", c.deadline, c.i)
	}
}

// TestReadFramesDeadlineNotStale checks, on a stepped clock, that a fast
// sender whose every read ends inside a frame is never left with a
// deadline that is already due (or due sooner than FrameTimeout less the
// slack and the time since the frame began): the slack must follow the
// frame timeout, not only the idle one.
func TestReadFramesDeadlineNotStale(t *testing.T) {
	tests := []struct {
		name        string
		idle, frame time.Duration
	}{
		{"short frame timeout", time.Hour, 10 * time.Millisecond},
		{"short idle timeout", 10 * time.Millisecond, time.Hour},
		{"defaults", 5 * time.Minute, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := bytes.Repeat([]byte("<38>Nov 21 18:40:46 h sshd[1]: Failed password\n"), 5000)
			now := time.Unix(1e9, 0)
			step := min(tt.idle, tt.frame) / 10
			// The slack allowed: 1/16 of the shorter timeout, at most 1s.
			slack := min(min(tt.idle, tt.frame)/16, time.Second)
			c := &chunkConn{data: stream, sizes: []int{1000}} // never a whole number of frames
			sp := NewSplitter(64<<10, nil)
			fc := &frameClock{conn: c, sp: sp, idle: tt.idle, frame: tt.frame, now: func() time.Time { return now }}
			reads := 0
			cr := &clockedReader{chunkConn: c, onRead: func() {
				// The deadline in force for this read. The frame it is
				// in started at the previous read, one step ago.
				want := min(tt.idle, tt.frame) - step - slack
				if left := c.dl.Sub(now); left < want {
					t.Fatalf("read %d: deadline %v away, want at least %v", reads, left, want)
				}
				reads++
				now = now.Add(step)
			}}
			fc.conn = cr
			n := 0
			if err := readFrames(fc, sp.BufferSize(), nil, func([]byte) { n++ }); err != nil || n != 5000 {
				t.Fatalf("readFrames: %d frames, %v", n, err)
			}
			if reads < 100 {
				t.Fatalf("only %d reads: the clock did not run long enough", reads)
			}
		})
	}
}

// clockedReader calls onRead before each read, after the deadline is set.
type clockedReader struct {
	*chunkConn
	onRead func()
}

func (c *clockedReader) Read(b []byte) (int, error) {
	c.onRead()
	return c.chunkConn.Read(b)
}

// TestReadFramesBudget checks that buffers above the frame bound need a
// slot of the listener's budget, that a connection without one still
// frames everything, and that slots are given back.
func TestReadFramesBudget(t *testing.T) {
	stream := bytes.Repeat([]byte("<38>Nov 21 18:40:46 h sshd[1]: Failed password\n"), 50000)
	const max = 8 << 10
	tests := []struct {
		name    string
		taken   int32 // slots already in use
		wantBig bool
	}{
		{"slot free", 0, true},
		{"budget spent", bigReadBufs, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bufBudget
			b.n.Store(tt.taken)
			c := &chunkConn{data: stream, sizes: []int{1 << 30}}
			sp := NewSplitter(max, nil)
			fc := &frameClock{conn: c, sp: sp, idle: time.Minute, frame: time.Minute}
			n := 0
			if err := readFrames(fc, sp.BufferSize(), &b, func([]byte) { n++ }); err != nil || n != 50000 {
				t.Fatalf("readFrames: %d frames, %v", n, err)
			}
			if big := c.maxRead > sp.BufferSize(); big != tt.wantBig {
				t.Errorf("largest read %d bytes (frame bound %d), want above the bound: %v", c.maxRead, sp.BufferSize(), tt.wantBig)
			}
			if got := b.n.Load(); got != tt.taken {
				t.Errorf("%d slots in use after the connection ended, want %d", got, tt.taken)
			}
		})
	}
}

func slicesEqual(a, b []string) bool {
	return firstDiff(a, b) < 0
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// BenchmarkStreamFraming is the receiver's own share of a TCP stream: real
// loopback reads through the frame clock and the splitter, no parsing, for
// each framing.
func BenchmarkStreamFraming(b *testing.B) {
	msg := benchShapes[0].in
	for _, fr := range []struct{ name, frame string }{
		{"lf", msg + "\n"},
		{"octet", fmt.Sprintf("%d %s", len(msg), msg)},
	} {
		b.Run(fr.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			const perWrite = 1000
			batch := bytes.Repeat([]byte(fr.frame), perWrite)
			writes := (b.N + perWrite - 1) / perWrite
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				defer c.Close()
				for range writes {
					if _, err := c.Write(batch); err != nil {
						return
					}
				}
			}()
			conn, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			sp := NewSplitter(64<<10, nil)
			fc := &frameClock{conn: conn, sp: sp, idle: time.Minute, frame: time.Minute}
			n := 0
			b.SetBytes(int64(len(fr.frame)))
			b.ReportAllocs()
			b.ResetTimer()
			if err := readFrames(fc, sp.BufferSize(), nil, func([]byte) { n++ }); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n != writes*perWrite {
				b.Fatalf("framed %d, sent %d", n, writes*perWrite)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// FuzzReadFrames checks the stream read loop against the splitter run by
// bufio.Scanner over the whole input: the same frames, in the same order,
// whatever the read sizes. The frames are large relative to max so that
// buffer growth, shrinking and oversized-frame skipping all happen.
func FuzzReadFrames(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in+"\n"), uint16(3), uint16(5000))
		f.Add([]byte("9 "+tc.in), uint16(1), uint16(2))
	}
	f.Add([]byte("5 <13>a<14>b\n7 <15>c d<16>e\x00junk<13>x"), uint16(2), uint16(9000))
	f.Add([]byte("99999999999 <13>a\n"), uint16(1), uint16(1))
	f.Add(bytes.Repeat([]byte("<13>"+strings.Repeat("y", 300)+"\n"), 100), uint16(4096), uint16(8192))
	f.Fuzz(func(t *testing.T, b []byte, r1, r2 uint16) {
		const max = 5000 // above readBufMin, so long frames grow the buffer
		want, _ := frames(t, string(b), 0, max)
		got, _, err := collectFrames(t, b, []int{int(r1)%20000 + 1, int(r2)%20000 + 1}, max)
		if err != nil {
			t.Fatalf("readFrames: %v", err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !slicesEqual(got, want) {
			i := firstDiff(got, want)
			t.Fatalf("frame %d differs (got %d frames, want %d)", i, len(got), len(want))
		}
	})
}
