package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// webhookPayload is the JSON body of a webhook POST. Field names are part of
// sysban's interface: receivers parse them.
type webhookPayload struct {
	Event     string     `json:"event"` // "ban" or "unban"
	Jail      string     `json:"jail"`
	Address   string     `json:"address"`            // the address, or the prefix ("2001:db8::/64") of a prefix ban
	Prefix    string     `json:"prefix"`             // always a prefix: /32 or /128 for one address
	Seen      string     `json:"seen,omitempty"`     // the address that offended last, inside the prefix
	Observed  bool       `json:"observed,omitempty"` // observe mode: recorded, not enforced
	Failures  int        `json:"failures"`
	Start     time.Time  `json:"start"`
	Expiry    *time.Time `json:"expiry"` // null when permanent
	Permanent bool       `json:"permanent"`
	BanTime   int64      `json:"bantime"`          // seconds; -1 permanent
	Reason    string     `json:"reason,omitempty"` // unban only
	Lines     []string   `json:"lines"`
	Hostname  string     `json:"hostname"`
}

func payload(ev Event) webhookPayload {
	p := webhookPayload{
		Event:     ev.Kind,
		Jail:      ev.Ban.Jail,
		Address:   ev.Ban.Target(),
		Prefix:    ev.Ban.Network().String(),
		Seen:      addrOrEmpty(ev.Ban.Addr),
		Observed:  ev.Ban.Observed,
		Failures:  ev.Ban.Failures,
		Start:     ev.Ban.Start,
		Permanent: ev.Ban.Permanent(),
		BanTime:   int64(ev.Ban.Duration / time.Second),
		Reason:    ev.Reason,
		Lines:     make([]string, 0, len(ev.Lines)),
		Hostname:  ev.Host,
	}
	if p.Permanent {
		p.BanTime = -1
	} else if !ev.Ban.Start.IsZero() {
		exp := ev.Ban.Expiry()
		p.Expiry = &exp
	}
	for _, l := range ev.Lines {
		// JSON escapes control characters itself; only make it valid UTF-8
		// so the receiver sees what the daemon logged, and bound it.
		p.Lines = append(p.Lines, strings.ToValidUTF8(truncate(l, maxLineBytes*4), "\uFFFD"))
	}
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

type webhookAction struct {
	spec     WebhookSpec
	client   *http.Client
	hostname string
	log      *slog.Logger
}

func newWebhook(s WebhookSpec, opts BuildOptions) (*webhookAction, error) {
	if s.Timeout == 0 {
		s.Timeout = DefaultWebhookTimeout
	}
	if s.Retries == 0 {
		s.Retries = DefaultWebhookRetries
	} else if s.Retries < 0 {
		s.Retries = 0
	}
	if s.Backoff == 0 {
		s.Backoff = DefaultWebhookBackoff
	}
	tc, err := tlsConfig(s.CAFile, "", s.InsecureSkipVerify)
	if err != nil {
		return nil, fmt.Errorf("webhook.%w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConns = 2
	return &webhookAction{
		spec: s,
		client: &http.Client{
			Transport: tr,
			Timeout:   s.Timeout,
			// A redirect of a POST would silently become a GET or resend the
			// body elsewhere; report it as the failure it is.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		hostname: opts.Hostname,
		log:      opts.Logger,
	}, nil
}

// statusError is a non-2xx answer.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

func retryableHTTP(err error) bool {
	var se statusError
	if errors.As(err, &se) {
		return se.code == http.StatusRequestTimeout || se.code == http.StatusTooManyRequests || se.code >= 500
	}
	return true // network errors and timeouts
}

// Do POSTs ev as JSON, retrying with backoff on temporary failures.
func (w *webhookAction) Do(ctx context.Context, ev Event) error {
	if ev.Host == "" {
		ev.Host = w.hostname
	}
	body, err := json.Marshal(payload(ev))
	if err != nil {
		return fmt.Errorf("notify: webhook: encode: %w", err)
	}
	err = retry(ctx, w.spec.Retries, w.spec.Backoff, retryableHTTP, func(ctx context.Context) error {
		return w.post(ctx, body)
	})
	if err != nil {
		return fmt.Errorf("notify: webhook %s: %w", redactURL(w.spec.URL), err)
	}
	return nil
}

func (w *webhookAction) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.spec.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sysban")
	for k, v := range w.spec.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL)
		}
		return err
	}
	defer resp.Body.Close()
	// Drain a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError{resp.StatusCode}
	}
	return nil
}

// redactURL hides credentials and query strings (tokens often live there)
// from log lines.
func redactURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		if at := strings.IndexByte(raw[i+3:], '@'); at >= 0 && !strings.Contains(raw[i+3:i+3+at], "/") {
			raw = raw[:i+3] + "…@" + raw[i+3+at+1:]
		}
	}
	return raw
}
