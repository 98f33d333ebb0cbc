package receiver

import (
	"bufio"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// frames runs the splitter over in as a stream delivered in chunks of the
// given size and returns the frames and the drop reasons it reported.
func frames(t testing.TB, in string, chunk, max int) ([]string, []string) {
	var drops []string
	sp := NewSplitter(max, func(reason string, n int) { drops = append(drops, reason) })
	var r io.Reader = strings.NewReader(in)
	if chunk > 0 {
		r = iotest.OneByteReader(r)
		if chunk > 1 {
			r = &chunkReader{s: in, n: chunk}
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 16), sp.BufferSize())
	sc.Split(sp.Split)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scanner error: %v", err)
	}
	return got, drops
}

type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.s) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

func TestSplitter(t *testing.T) {
	big := "<13>" + strings.Repeat("a", 200)
	tests := []struct {
		name      string
		in        string
		max       int
		want      []string
		wantDrops []string
	}{
		{name: "LF frames", in: "<13>a\n<14>b\n", want: []string{"<13>a", "<14>b"}},
		{name: "NUL frames", in: "<13>a\x00<14>b\x00", want: []string{"<13>a", "<14>b"}},
		{name: "CRLF", in: "<13>a\r\n<14>b\r\n", want: []string{"<13>a", "<14>b"}},
		{name: "last frame without terminator", in: "<13>a\n<14>b", want: []string{"<13>a", "<14>b"}},
		{name: "octet counted", in: "5 <13>a5 <14>b", want: []string{"<13>a", "<14>b"}},
		{name: "octet count including trailing LF (rsyslog)", in: "6 <13>a\n6 <14>b\n", want: []string{"<13>a", "<14>b"}},
		{name: "octet count then uncounted LF", in: "5 <13>a\n5 <14>b\n", want: []string{"<13>a", "<14>b"}},
		{name: "mixed octet and LF", in: "5 <13>a<14>b\n7 <15>c d<16>e\x00", want: []string{"<13>a", "<14>b", "<15>c d", "<16>e"}},
		{name: "octet frame may hold LF", in: "11 <13>a\nb\nc d\n", want: []string{"<13>a\nb\nc d"}},
		{name: "garbage before frame", in: "junk junk<13>a\n", want: []string{"<13>a"}, wantDrops: []string{ReasonGarbage}},
		{name: "garbage line", in: "hello\n<13>a\n", want: []string{"<13>a"}, wantDrops: []string{ReasonGarbage}},
		{name: "count without space is garbage", in: "12x<13>a\n", want: []string{"<13>a"}, wantDrops: []string{ReasonGarbage}},
		{name: "huge octet count", in: "99999999999 <13>a\n<14>b\n", want: []string{"<13>a", "<14>b"}, wantDrops: []string{ReasonGarbage}},
		{name: "oversized octet frame then valid", max: 100, in: "205 " + big + "\n" + "5 <13>a", want: []string{"<13>a"}, wantDrops: []string{ReasonTooLarge}},
		{name: "oversized LF frame then valid", max: 100, in: big + "\n<13>a\n", want: []string{"<13>a"}, wantDrops: []string{ReasonTooLarge}},
		{name: "frame of exactly max", max: 204, in: big + "\n<13>a\n", want: []string{big, "<13>a"}},
		{name: "truncated octet frame at EOF kept", in: "50 <13>partial", want: []string{"<13>partial"}},
		{name: "blank separators", in: "\n\n  <13>a\n\r\n", want: []string{"<13>a"}},
	}
	for _, tc := range tests {
		for _, chunk := range []int{0, 1, 7} {
			got, drops := frames(t, tc.in, chunk, tc.max)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s (chunk %d): frames = %q, want %q", tc.name, chunk, got, tc.want)
			}
			// Garbage may be reported in several pieces when split across reads.
			if !sameReasons(drops, tc.wantDrops) {
				t.Errorf("%s (chunk %d): drops = %q, want %q", tc.name, chunk, drops, tc.wantDrops)
			}
		}
	}
}

func sameReasons(got, want []string) bool {
	set := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, r := range s {
			m[r] = true
		}
		return m
	}
	return reflect.DeepEqual(set(got), set(want))
}

func TestForEachDatagramMessage(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"<13>one\n", []string{"<13>one"}},
		{"<13>one\n<14>two\n", []string{"<13>one", "<14>two"}},
		{"<13>one\ncontinued\n", []string{"<13>one\ncontinued"}},
		{"<13>one\n\n<14>two", []string{"<13>one", "<14>two"}},
		{"<13>one\x00", []string{"<13>one"}},
	}
	for _, tc := range tests {
		var got []string
		forEachDatagramMessage([]byte(tc.in), func(b []byte) { got = append(got, string(b)) })
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("forEachDatagramMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
