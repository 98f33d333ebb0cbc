package store

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestCut(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"ab\u00e9cd", 3, "ab"},                     // é is 2 bytes: not split
		{"a\u20acb", 2, "a"},                        // € is 3 bytes
		{"a\U0001F600b", 4, "a"},                    // 4-byte rune
		{"\xff\xff\xff\xff\xff", 3, "\xff\xff\xff"}, // not UTF-8: byte cut
	}
	for _, tc := range cases {
		if got := cut(tc.in, tc.n); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestBanKeyOrder(t *testing.T) {
	// Keys sort by jail first, so a jail's bans are one range, and a jail
	// that is a prefix of another ("b" and "b-c") does not mix with it.
	ks := [][]byte{
		banKey("b-c", pfx("0.0.0.0")),
		banKey("b", pfx("255.255.255.255")),
		banKey("b", pfx("2001:db8::1")),
		banKey("a", pfx("ffff::1")),
		banKey("b", pfx("2001:db8::/48")),
		banKey("b", pfx("2001:db8::/64")),
		banKey("b", pfx("2001:db8::")),
		banKey("b", pfx("192.0.2.0/24")),
	}
	slices.SortFunc(ks, bytes.Compare)
	var got []string
	for _, k := range ks {
		j, a, err := parseBanKey(k)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, j+" "+a.String())
	}
	want := []string{"a ffff::1/128", "b 192.0.2.0/24", "b 255.255.255.255/32", "b 2001:db8::/128", "b 2001:db8::/48", "b 2001:db8::/64", "b 2001:db8::1/128", "b-c 0.0.0.0/32"}
	if !slices.Equal(got, want) {
		t.Errorf("key order %v, want %v", got, want)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{time.Unix(-5, 0), time.Unix(0, 0), time.Unix(0, 1), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := 1; i < len(times); i++ {
		if timeKey(times[i-1]) >= timeKey(times[i]) {
			t.Errorf("timeKey(%v) >= timeKey(%v)", times[i-1], times[i])
		}
		if got := keyTime(timeKey(times[i])); !got.Equal(times[i]) {
			t.Errorf("keyTime(timeKey(%v)) = %v", times[i], got)
		}
	}
}

// FuzzDecodeRecord feeds arbitrary bytes (a damaged file) to the ban
// decoder: it must return an error or a record that encodes back to the
// same bytes, never panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{valueVersion})
	f.Add(encodeRecord(Record{Ban: sysban.Ban{Start: time.Unix(1700000000, 5), Duration: time.Hour, Failures: 5, Lines: []string{"Failed password for root from 192.0.2.1", ""}}, Offences: 2, Source: "pipeline"}))
	f.Add(encodeRecord(Record{Ban: sysban.Ban{Duration: sysban.Permanent, Lines: slices.Repeat([]string{strings.Repeat("x", 100)}, MaxLines)}}))
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(nil, "sshd", pfx("192.0.2.1"), v)
		if err != nil {
			return
		}
		if again := encodeRecord(r); !bytes.Equal(again, v) {
			// Varints have one shortest form; others decode but re-encode shorter.
			r2, err := decodeRecord(nil, "sshd", pfx("192.0.2.1"), again)
			if err != nil || !r2.Start.Equal(r.Start) || r2.Duration != r.Duration || r2.Source != r.Source || !slices.Equal(r2.Lines, r.Lines) {
				t.Fatalf("re-encoding %x changed the record: %+v vs %+v (%v)", v, r, r2, err)
			}
		}
	})
}

// FuzzDecodeEvent does the same for history entries and their keys.
func FuzzDecodeEvent(f *testing.F) {
	k := historyKey(netip.MustParseAddr("2001:db8::1"), time.Unix(1700000000, 0), 7)
	f.Add(k, encodeEvent(Event{Kind: EventBan, Jail: "sshd", Duration: time.Hour, Failures: 3, Offences: 1, Source: "pipeline"}))
	f.Add(k, encodeEvent(Event{Kind: EventUnban, Jail: "sshd", Reason: "manual"}))
	f.Add([]byte{1, 2}, []byte{valueVersion, 1, 200})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		e, err := decodeEvent(k, v)
		kind, _, jail, err2 := eventJailKind(v)
		if err == nil && (err2 != nil || kind != e.Kind || jail != e.Jail) {
			t.Fatalf("eventJailKind disagrees with decodeEvent on %x: %v %q %v vs %+v", v, kind, jail, err2, e)
		}
	})
}

func FuzzParseBanKey(f *testing.F) {
	f.Add(banKey("sshd", pfx("192.0.2.1")))
	f.Add(banKey("sshd", pfx("2001:db8::/64")))
	f.Add(banKey("a\x00b", pfx("192.0.2.0/24")))
	f.Add([]byte("sshd"))
	f.Fuzz(func(t *testing.T, k []byte) {
		j, a, err := parseBanKey(k)
		if err != nil {
			return
		}
		if a.Addr().Is4In6() {
			t.Fatalf("parseBanKey(%x) returned a mapped address %v", k, a)
		}
		if !bytes.Equal(banKey(j, a), k) {
			t.Fatalf("parseBanKey(%x) = %q %v does not round-trip", k, j, a)
		}
	})
}

// FuzzDecodeBan feeds a damaged bans-bucket entry (key and value, as
// Restore reads them) to the decoder: an error, or a ban whose prefix is
// canonical, whose address seen is inside it, and that encodes back to a
// key and value that decode the same, through the store's names table
// too (kept across inputs, as a Store keeps it).
func FuzzDecodeBan(f *testing.F) {
	in := newNames()
	f.Add(banKey("sshd", pfx("2001:db8::/64")), encodeRecord(Record{Ban: sysban.Ban{Addr: netip.MustParseAddr("2001:db8::5"), Duration: time.Hour}}))
	f.Add(banKey("sshd", pfx("192.0.2.7")), []byte{valueVersionV1, 0, 0, 0, 0, 0, 0})
	f.Add(banKey("sshd", pfx("192.0.2.0/24")), []byte{valueVersionV1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("sshd\x00\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x40"), []byte{valueVersion, 0})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		r, err := decodeBan(nil, k, v)
		if err != nil {
			return
		}
		n := r.Network()
		if n != sysban.CanonicalPrefix(n) || (r.Addr.IsValid() && !n.Contains(r.Addr)) {
			t.Fatalf("decodeBan(%x, %x) = %v seen %v: not canonical", k, v, n, r.Addr)
		}
		r2, err := decodeBan(in, banKey(r.Jail, n), encodeRecord(r))
		if err != nil || r2.Network() != n || r2.Addr != r.Addr || r2.Jail != r.Jail || r2.Source != r.Source || r2.Duration != r.Duration {
			t.Fatalf("round trip of %+v: %+v, %v", r, r2, err)
		}
	})
}

// Reading a ban's head with the store's names table makes no string: the
// jail and the source come from the table once it has them, and the
// address seen is read in place. A scan of 100,000 bans made two strings
// a record before.
func TestDecodeBanHeadInterned(t *testing.T) {
	r := Record{Ban: sysban.Ban{Jail: "sshd", Addr: netip.MustParseAddr("2001:db8::7"),
		Prefix: netip.MustParsePrefix("2001:db8::/64"), Start: time.Unix(1765000000, 0), Duration: time.Hour,
		Failures: 3, Lines: []string{"line one"}}, Source: "fleet:collector:hosta"}
	k, v := banKey(r.Jail, r.Network()), encodeRecord(r)
	in := newNames()
	want, err := decodeBanHead(nil, k, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBanHead(in, k, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Jail != want.Jail || got.Source != want.Source || got.Addr != want.Addr || got.Network() != want.Network() || got.Lines != nil {
		t.Fatalf("interned head %+v, want %+v", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeBanHead(in, k, v) }); n != 0 {
		t.Errorf("%.0f allocations a head with a warm table, want 0", n)
	}
	for i := range maxNames + 10 {
		in.get([]byte(fmt.Sprint("source-", i)))
	}
	if len(in.m) != maxNames {
		t.Errorf("names table holds %d, want its bound %d", len(in.m), maxNames)
	}
	if s := in.get([]byte("beyond the bound")); s != "beyond the bound" {
		t.Errorf("get beyond the bound = %q", s)
	}
}
