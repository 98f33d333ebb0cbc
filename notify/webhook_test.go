package notify

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestWebhookRetriesThenDelivers(t *testing.T) {
	var calls atomic.Int32
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("Authorization") != "Bearer t0ken" {
			t.Errorf("request %d: %s, Content-Type %q, Authorization %q", n, r.Method,
				r.Header.Get("Content-Type"), r.Header.Get("Authorization"))
		}
		b, _ := io.ReadAll(r.Body)
		body.Store(b)
		if n <= 2 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	act, err := ActionSpec{Name: "hook", Webhook: &WebhookSpec{
		URL: srv.URL + "/hook?token=x", Headers: map[string]string{"Authorization": "Bearer t0ken"},
		Backoff: time.Millisecond,
	}}.Build(BuildOptions{Hostname: "mx1"})
	if err != nil {
		t.Fatal(err)
	}
	ban := testBan()
	ev := Event{Kind: KindBan, Ban: ban, Lines: []string{"line \"one\"\n\x00", "bad \xff utf8"}}
	if err := act.Do(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("server saw %d calls, want 3 (two 503s, then success)", n)
	}
	var got map[string]any
	if err := json.Unmarshal(body.Load().([]byte), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event": "ban", "jail": "sshd", "address": "198.51.100.7", "failures": 5.0,
		"permanent": false, "bantime": 3600.0, "hostname": "mx1",
		"start":  ban.Start.Format(time.RFC3339Nano),
		"expiry": ban.Expiry().Format(time.RFC3339Nano),
		"lines":  []any{"line \"one\"\n\x00", "bad \uFFFD utf8"},
	}
	for k, v := range want {
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, g, mustJSON(v))
		}
	}
	if _, ok := got["reason"]; ok {
		t.Error("reason present on a ban")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestWebhookPermanentUnban(t *testing.T) {
	ban := testBan()
	ban.Duration = sysban.Permanent
	p := payload(Event{Kind: KindUnban, Ban: ban, Reason: ReasonReload})
	b, _ := json.Marshal(p)
	for _, want := range []string{`"expiry":null`, `"permanent":true`, `"bantime":-1`, `"reason":"reload"`, `"lines":[]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("payload lacks %s: %s", want, b)
		}
	}
}

func TestWebhookFailures(t *testing.T) {
	var calls atomic.Int32
	status := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	tests := []struct {
		status int
		calls  int32
	}{
		{http.StatusBadRequest, 1},          // the receiver rejects it: retrying will not help
		{http.StatusFound, 1},               // redirects are not followed
		{http.StatusInternalServerError, 4}, // 1 + 3 retries
		{http.StatusTooManyRequests, 4},
	}
	for _, tt := range tests {
		calls.Store(0)
		status.Store(int32(tt.status))
		act, err := ActionSpec{Name: "hook", Webhook: &WebhookSpec{URL: srv.URL, Backoff: time.Millisecond}}.Build(BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()})
		if err == nil {
			t.Errorf("status %d: want an error", tt.status)
		}
		if n := calls.Load(); n != tt.calls {
			t.Errorf("status %d: %d calls, want %d", tt.status, n, tt.calls)
		}
	}
}

func TestWebhookTLSVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()

	act, err := ActionSpec{Name: "hook", Webhook: &WebhookSpec{URL: srv.URL, Retries: -1}}.Build(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed server accepted by default: %v", err)
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	act, err = ActionSpec{Name: "hook", Webhook: &WebhookSpec{URL: srv.URL, CAFile: ca, Retries: -1}}.Build(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}); err != nil {
		t.Errorf("with the CA file: %v", err)
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	act, err := ActionSpec{Name: "hook", Webhook: &WebhookSpec{URL: srv.URL, Timeout: 50 * time.Millisecond, Retries: 1, Backoff: time.Millisecond}}.Build(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The server answers only when the test ends: Do returning is the
	// timeout at work.
	var err2 error
	returns(t, "Do against a hung server with a 50ms timeout", func() {
		err2 = act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()})
	})
	if err2 == nil {
		t.Error("hung server: want an error")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example/x?token=abc": "https://hooks.example/x",
		"https://user:pw@hooks.example/x":   "https://…@hooks.example/x",
		"http://h/a@b":                      "http://h/a@b",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
