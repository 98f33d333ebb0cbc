package fleet

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestAppendValueIsEncodingJSON holds the hand encoder to encoding/json
// byte for byte: enforcers decode with encoding/json and signatures are
// computed over its text.
func TestAppendValueIsEncodingJSON(t *testing.T) {
	start := time.Date(2026, 12, 7, 0, 30, 1, 123456789, time.UTC)
	tests := []struct {
		name string
		v    Value
	}{
		{"minimal", Value{Start: start, Node: "a", Scope: ScopeFleet}},
		{"every field", Value{Start: start, Expiry: start.Add(time.Hour), Node: "collector", Origin: "host-a", Addr: netip.MustParseAddr("2001:db8::5"), Manual: true, Scope: ScopeOrigin, Filter: "sshd", Failures: 5, Lines: []string{"one", "two"}, Sig: "c2ln_-"}},
		{"zone offset", Value{Start: start.In(time.FixedZone("x", -(5*3600 + 30*60))), Node: "a", Scope: ScopeFleet}},
		{"whole second", Value{Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Node: "a", Scope: ScopeFleet}},
		{"negative failures", Value{Start: start, Node: "a", Scope: ScopeFleet, Failures: -3}},
		{"ipv4 and zone", Value{Start: start, Node: "a", Scope: ScopeFleet, Addr: netip.MustParseAddr("fe80::1%eth<0>")}},
		{"escapes", Value{Start: start, Node: "a\"b\\c", Scope: ScopeFleet, Lines: []string{
			"<script>&amp;</script>", "tab\there\nnew\rcr\bbs\fff\x00\x01\x1f\x7f",
			"bad utf8 \xff\xfe end", "\u2028 and \u2029", "é ü 日本 🙂", "\xe2\x80", "",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkAppendValue(t, tt.v) })
	}
	// Random lines of every byte, valid UTF-8 or not.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		line := make([]byte, rng.IntN(40))
		for i := range line {
			line[i] = byte(rng.IntN(256))
		}
		checkAppendValue(t, Value{Start: start, Node: "n", Scope: ScopeFleet, Lines: []string{string(line)}})
	}
}

func TestAppendValueRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)),
	} {
		v := Value{Start: at, Node: "a", Scope: ScopeFleet}
		if _, err := json.Marshal(v); err == nil {
			t.Fatalf("encoding/json took %v", at)
		}
		if _, err := appendValue(nil, &v); err == nil {
			t.Errorf("appendValue took %v, encoding/json refuses it", at)
		}
	}
}

func checkAppendValue(t *testing.T, v Value) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendValue(nil, &v)
	if err != nil {
		t.Fatalf("appendValue: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("appendValue\n got %s\nwant %s", got, want)
	}
}

// FuzzAppendValue compares the hand encoder with encoding/json on any
// text in the string fields.
func FuzzAppendValue(f *testing.F) {
	f.Add("collector", "sshd", "Failed password from 192.0.2.1 <&>", int64(1765000000), 5)
	f.Add("a\"b", "\xff", "\u2028\x00", int64(-62135596800), -1)
	f.Fuzz(func(t *testing.T, node, filter, line string, secs int64, failures int) {
		v := Value{Start: time.Unix(secs, int64(failures)&0x3fffffff).UTC(), Node: node, Filter: filter, Scope: ScopeFleet, Failures: failures, Lines: []string{line}}
		want, jerr := json.Marshal(v)
		got, err := appendValue(nil, &v)
		if (err != nil) != (jerr != nil) {
			t.Fatalf("appendValue err %v, encoding/json err %v", err, jerr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("appendValue\n got %s\nwant %s", got, want)
		}
	})
}

// TestEncodedBound: newValue skips encoding a value whose bound fits, so
// the bound must never be below the encoded length.
func TestEncodedBound(t *testing.T) {
	zone := time.FixedZone("z", -(23*3600 + 59*60))
	at := time.Date(2026, 12, 7, 0, 30, 1, 123456789, zone)
	for _, s := range []string{"", "a", "<<<<", "\x00\x01", "\xff\xff", "\u2028"} {
		v := Value{Start: at, Expiry: at.Add(time.Hour), Node: s, Origin: s, Addr: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"),
			Manual: true, Scope: ScopeOrigin, Filter: s, Failures: math.MinInt, Lines: []string{s, s, s}, Sig: s}
		b, err := appendValue(nil, &v)
		if err != nil {
			t.Fatal(err)
		}
		if bound := encodedBound(&v); bound < len(b) {
			t.Errorf("%q: bound %d < encoded %d", s, bound, len(b))
		}
	}
}

// TestDecodeValueReadsWhatItWrites: the values a decider writes are read
// by the hand path (else it would save nothing), and give the value back.
func TestDecodeValueReadsWhatItWrites(t *testing.T) {
	start := time.Date(2026, 12, 7, 0, 30, 1, 123456789, time.UTC)
	for _, v := range []Value{
		{Start: start, Node: "a", Scope: ScopeFleet},
		{Start: start, Expiry: start.Add(time.Hour), Node: "collector", Origin: "host-a", Addr: netip.MustParseAddr("2001:db8::5"), Manual: true, Scope: ScopeOrigin, Filter: "sshd", Failures: 5, Lines: []string{"Failed password for root from 192.0.2.1 port 22 ssh2", "é 日本"}, Sig: "c2ln_-"},
		{Start: start, Node: "a", Scope: ScopeFleet, Failures: -12},
	} {
		data, err := appendValue(nil, &v)
		if err != nil {
			t.Fatal(err)
		}
		var got Value
		if !decodeValueFast(data, &got) {
			t.Fatalf("hand path refused %s", data)
		}
		checkDecodeValue(t, data)
	}
}

// TestDecodeValueFallsBack: what the hand path does not read is
// encoding/json's, with its result and its errors.
func TestDecodeValueFallsBack(t *testing.T) {
	for _, data := range []string{
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet","lines":["\u003cscript\u003e"]}`,
		`{"node":"a","start":"2026-12-07T00:30:01Z","scope":"fleet"}`,
		`{ "start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet"}`,
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet","failures":007}`,
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet","failures":99999999999999999999}`,
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet","addr":"1.2.3"}`,
		`{"start":"2026-13-07T00:30:01Z","node":"a","scope":"fleet"}`,
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet"}x`,
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet","lines":[]}`,
		`{"start":"2026-12-07T00:30:01Z","node":"a\xff","scope":"fleet"}`,
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet","extra":1}`,
		`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet"} `,
	} {
		var v Value
		if decodeValueFast([]byte(data), &v) {
			t.Errorf("hand path read %s", data)
		}
		checkDecodeValue(t, []byte(data))
	}
}

// checkDecodeValue: decodeValue and json.Unmarshal agree on data.
func checkDecodeValue(t *testing.T, data []byte) {
	t.Helper()
	var got, want Value
	err := decodeValue(data, &got)
	jerr := json.Unmarshal(data, &want)
	if (err != nil) != (jerr != nil) {
		t.Fatalf("%s: decodeValue err %v, encoding/json err %v", data, err, jerr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", data, got, want)
	}
}

// FuzzDecodeValue holds the hand path to encoding/json on any bytes.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte(`{"start":"2026-12-07T00:30:01.5Z","expiry":"2026-12-07T01:30:01.5Z","node":"c","origin":"h","addr":"10.0.0.0","manual":true,"scope":"origin","filter":"sshd","failures":5,"lines":["x","y"],"sig":"s"}`))
	f.Add([]byte(`{"start":"2026-12-07T00:30:01Z","node":"a","scope":"fleet","failures":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Value
		if !decodeValueFast(data, &fast) {
			return
		}
		var want Value
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("hand path read %q, encoding/json refuses it: %v", data, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, fast, want)
		}
	})
}
