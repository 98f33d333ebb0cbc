package notify

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// registries starts an IANA-like server that refers every query to a
// regional one, and the regional one that answers.
func registries(t *testing.T) (iana, rir *whoisServer, dial map[string]string) {
	iana = startWhois(t, func(q string) string {
		return "% IANA WHOIS server\n\ninetnum:      198.0.0.0 - 198.255.255.255\nrefer:        whois.rir.test\n\norganisation: Test RIR\nwhois:        whois.rir.test\n"
	})
	rir = startWhois(t, func(q string) string {
		return "inetnum:        198.51.100.0 - 198.51.100.255\r\nnetname:        TEST-NET-2\r\ndescr:          Documentation \xff block\r\ncountry:        ZZ\r\n"
	})
	return iana, rir, map[string]string{"whois.iana.test:43": iana.Addr, "whois.rir.test:43": rir.Addr}
}

func TestWhoisReferralAndCache(t *testing.T) {
	iana, rir, dial := registries(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := NewWhois(WhoisOptions{Server: "whois.iana.test", Dial: dialMap(dial), Now: func() time.Time { return now }})
	addr := netip.MustParseAddr("::ffff:198.51.100.7")

	res, err := w.Lookup(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != "whois.rir.test:43" {
		t.Errorf("server = %q, want the referral whois.rir.test:43", res.Server)
	}
	if !strings.Contains(res.Text, "netname:        TEST-NET-2\n") || strings.Contains(res.Text, "\r") {
		t.Errorf("text not the regional answer with LF lines:\n%q", res.Text)
	}
	if !strings.Contains(res.Text, "Documentation \uFFFD block") {
		t.Errorf("invalid UTF-8 not replaced: %q", res.Text)
	}
	// RFC 3912: the query is the unmapped address and CRLF.
	if q := iana.Queries(); len(q) != 1 || q[0] != "198.51.100.7\r\n" {
		t.Errorf("IANA queries = %q", q)
	}

	// Cached: no new queries within the TTL, a new one after it.
	if _, err := w.Lookup(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	if n := len(rir.Queries()); n != 1 {
		t.Errorf("regional queries after a cached lookup = %d, want 1", n)
	}
	now = now.Add(DefaultWhoisCacheTTL + time.Second)
	if _, err := w.Lookup(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	if n := len(rir.Queries()); n != 2 {
		t.Errorf("regional queries after expiry = %d, want 2", n)
	}
}

func TestWhoisBoundedAndFailures(t *testing.T) {
	big := startWhois(t, func(string) string { return strings.Repeat("x", 100000) })
	w := NewWhois(WhoisOptions{Server: big.Addr, MaxBytes: 1000})
	res, err := w.Lookup(context.Background(), netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Text) != 1000 {
		t.Errorf("answer length = %d, want the 1000-byte bound", len(res.Text))
	}

	// A referral that cannot be reached still returns the referring answer.
	iana := startWhois(t, func(string) string { return "refer: whois.gone.test\n" })
	w = NewWhois(WhoisOptions{Server: iana.Addr, Dial: dialMap(map[string]string{iana.Addr: iana.Addr})})
	res, err = w.Lookup(context.Background(), netip.MustParseAddr("192.0.2.1"))
	if err == nil || res.Server != iana.Addr {
		t.Errorf("unreachable referral: res=%+v err=%v; want IANA answer and an error", res, err)
	}

	// A server that never answers is cut off by the timeout.
	release := make(chan struct{})
	silent := startWhois(t, func(string) string { <-release; return "" })
	t.Cleanup(func() { close(release) })
	w = NewWhois(WhoisOptions{Server: silent.Addr, Timeout: 100 * time.Millisecond})
	var lookupErr error
	returns(t, "Lookup against a silent server with a 100ms timeout", func() {
		_, lookupErr = w.Lookup(context.Background(), netip.MustParseAddr("192.0.2.1"))
	})
	if lookupErr == nil {
		t.Error("silent server: want an error")
	}
}

func TestWhoisCacheBound(t *testing.T) {
	srv := startWhois(t, func(q string) string { return "netname: " + q + "\n" })
	w := NewWhois(WhoisOptions{Server: srv.Addr, CacheSize: 3})
	for i := 1; i <= 10; i++ {
		if _, err := w.Lookup(context.Background(), netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.cache); n > 3 {
		t.Errorf("cache holds %d entries, bound is 3", n)
	}
}

func TestParseReferral(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{"refer:        whois.arin.net\n", "whois.arin.net:43"},
		{"% comment\nwhois: WHOIS.RIPE.NET\n", "whois.ripe.net:43"},
		{"ReferralServer:  whois://whois.apnic.net\n", "whois.apnic.net:43"},
		{"ReferralServer:  whois://whois.apnic.net:43/\n", "whois.apnic.net:43"},
		{"ReferralServer:  rwhois://rwhois.example.net:4321\n", ""},
		{"refer: evil.example:25\n", ""},           // other ports are never dialled
		{"refer: bad host name\n", ""},             // not a host name
		{"netname: X\nremarks: no referral\n", ""}, // none
		{"ReferralServer: wHoIs://Ä\n", ""},
	}
	for _, tt := range tests {
		got, ok := parseReferral(tt.text)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("parseReferral(%q) = %q, %v; want %q", tt.text, got, ok, tt.want)
		}
	}
}

func FuzzParseReferral(f *testing.F) {
	f.Add("refer:        whois.arin.net\n")
	f.Add("ReferralServer: whois://whois.lacnic.net\n")
	f.Add("ReferralServer: WHOIS://\xc4\x80\xc4\x80\xc4\x80\n")
	f.Fuzz(func(t *testing.T, text string) {
		got, ok := parseReferral(text)
		if !ok {
			return
		}
		host, port, err := net.SplitHostPort(got)
		if err != nil || port != "43" || !validHostname(host) {
			t.Fatalf("referral %q is not a valid host:43", got)
		}
	})
}
