package jsonstr

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// encodingJSON is what encoding/json writes for s, without the newline.
func encodingJSON(t testing.TB, s string, html bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func check(t testing.TB, s string) {
	for _, html := range []bool{false, true} {
		if got, want := Append(nil, s, html), encodingJSON(t, s, html); !bytes.Equal(got, want) {
			t.Fatalf("%q html %v:\n got %s\nwant %s", s, html, got, want)
		}
	}
}

func TestAppendIsEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"q\"`, "<script>&amp;</script>",
		"tab\there\nnew\rcr\bbs\fff\x00\x01\x1f\x7f",
		"bad utf8 \xff\xfe end", "\xe2\x80", "\u2028 and \u2029", "é ü 日本 🙂",
	} {
		check(t, s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		s := make([]byte, rng.IntN(40))
		for i := range s {
			s[i] = byte(rng.IntN(256))
		}
		check(t, string(s))
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("Failed password from 192.0.2.1 <&> \x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}
