package control

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sysban/sysban"
)

// FuzzRequest sends arbitrary bodies, jail names and query addresses to
// every endpoint of the API's handler. The socket is root-only, but the
// CLI sends what an admin typed (and scripts send what they scraped), so
// the server must never panic, must answer every request with a JSON body
// and a status the API documents, must answer a body it cannot decode
// strictly with 400 or 413 without calling the daemon, and must hand the
// daemon only canonical addresses.
func FuzzRequest(f *testing.F) {
	type seed struct {
		endpoint uint8
		jail     string
		query    string
		body     []byte
	}
	for _, s := range []seed{
		{0, "sshd", "", []byte(`{"addr":"192.0.2.7"}`)},
		{0, "sshd", "", []byte(`{"addr":"2001:db8:1:2::/64"}`)},
		{0, "sshd", "", []byte(`{"addr":"::ffff:198.51.100.0/120"}`)},
		{0, "sshd", "", []byte(`{"addr":"2001:db8::1/64"}`)},
		{1, "", "", []byte(`{"addr":"10.0.0.0/8","jail":"sshd"}`)},
		{3, "", "addr=2001:db8::/48", nil},
		{0, "sshd", "", []byte(`{"addr":"[2001:db8::7]","duration_seconds":-1}`)},
		{0, "sshd", "", []byte(`{"addr":"::ffff:192.0.2.7","duration_seconds":3600}`)},
		{0, "nope", "", []byte(`{"addr":"127.0.0.1"}`)},
		{0, "sshd", "", []byte(`{"addr":"192.0.2.7","extra":1}`)},
		{0, "sshd", "", []byte(`{"addr":"192.0.2.7"} {}`)},
		{0, "sshd", "", []byte(`{"addr":"192.0.2.7","duration_seconds":1e99}`)},
		{1, "", "", []byte(`{"addr":"192.0.2.7","jail":"sshd"}`)},
		{1, "", "", []byte(`{"addr":"fe80::1%eth0"}`)},
		{1, "", "", []byte(`[`)},
		{2, "", "", nil},
		{3, "", "addr=192.0.2.7", nil},
		{3, "", "addr=%ZZ", nil},
		{4, "sshd", "", nil},
		{5, "", "", nil},
		{6, "", "", []byte(`{}`)},
		{7, "../x", "", bytes.Repeat([]byte(" "), MaxBodySize+1)},
	} {
		f.Add(s.endpoint, s.jail, s.query, s.body)
	}
	d := &fakeDaemon{}
	s := &Server{d: d, log: slog.New(slog.DiscardHandler)}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, endpoint uint8, jail, query string, body []byte) {
		ep := endpoints[int(endpoint)%len(endpoints)]
		target := strings.ReplaceAll(ep.path, "{jail}", url.PathEscape(jail))
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(ep.method, "http://sysban"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		d.mu.Lock()
		d.calls, d.bans = nil, nil
		d.mu.Unlock()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		status := rec.Code
		switch status {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%s %s %q: status %d: %s", ep.method, target, body, status, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: content type %q", ep.method, target, ct)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %q", ep.method, target, rec.Body)
		}
		var eb errorBody
		if status != http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" || eb.Code == "" {
				t.Fatalf("%s %s: status %d with error body %q", ep.method, target, status, rec.Body)
			}
		}
		// A path no route takes (a jail name with a '/') never reaches
		// the body.
		if ep.decode == nil || eb.Code == "no_endpoint" || len(body) > MaxBodySize {
			// Past the limit the server may refuse (413) or have read a
			// complete object before it: either is fine.
			return
		}
		addr, strictOK := ep.decode(body)
		d.mu.Lock()
		calls := append([]string(nil), d.calls...)
		d.mu.Unlock()
		if !strictOK {
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%s %s %q: undecodable body answered %d", ep.method, target, body, status)
			}
			if len(calls) != 0 {
				t.Fatalf("%s %s %q: undecodable body reached the daemon: %v", ep.method, target, body, calls)
			}
			return
		}
		for _, c := range calls {
			// The fake records "Ban jail ADDR d" and "Unban ADDR jail".
			if !strings.Contains(c, " "+addr+" ") {
				t.Fatalf("%s %s %q: daemon got %q, want the canonical address %s", ep.method, target, body, c, addr)
			}
		}
	})
}

// endpoint is one route of the API as the fuzzer drives it; decode says
// what a strict reading of the body gives (the canonical address the
// daemon must see) and whether the server must accept the body at all.
type endpoint struct {
	method, path string
	decode       func(body []byte) (addr string, ok bool)
}

var endpoints = []endpoint{
	{"POST", "/v1/jails/{jail}/ban", func(b []byte) (string, bool) {
		var r BanRequest
		return strictAddr(b, &r, func() string { return r.Addr })
	}},
	{"POST", "/v1/unban", func(b []byte) (string, bool) {
		var r UnbanRequest
		return strictAddr(b, &r, func() string { return r.Addr })
	}},
	{"POST", "/v1/unban-all", nil},
	{"GET", "/v1/banned", nil},
	{"GET", "/v1/jails/{jail}", nil},
	{"GET", "/v1/status", nil},
	{"POST", "/v1/reload", nil},
	{"DELETE", "/v1/jails/{jail}/ban", nil},
}

// strictAddr decodes b into v as the API documents its bodies (one JSON
// object, known fields only) and returns the address
// field in canonical form; ok is false when the server must refuse the
// body before calling the daemon.
func strictAddr(b []byte, v any, field func() string) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return "", false
	}
	// One object and nothing after it but white space.
	if _, err := dec.Token(); err != io.EOF {
		return "", false
	}
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(field()), "["), "]")
	p, err := sysban.ParsePrefix(s)
	if err != nil {
		return "", false
	}
	return prefixString(p), true
}
