package notify

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// cleanText makes attacker-written text safe to show anywhere a human reads
// it: invalid UTF-8 becomes U+FFFD, and control characters (CR and LF above
// all, which would start a new mail header or a forged log line), DEL, C1
// controls and Unicode line separators are shown as \xNN / \uNNNN escapes so
// an admin still sees that something was there. The result is cut to at most
// max bytes on a rune boundary.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(min(len(s), max))
	for _, r := range s {
		var part string
		switch {
		case r == '\t':
			part = " "
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			part = fmt.Sprintf(`\x%02x`, r)
		case r == '\u2028' || r == '\u2029':
			part = fmt.Sprintf(`\u%04x`, r)
		default:
			part = string(r)
		}
		if b.Len()+len(part) > max {
			const ellipsis = "…"
			out := b.String()
			for len(out)+len(ellipsis) > max && len(out) > 0 {
				_, size := utf8.DecodeLastRuneInString(out)
				out = out[:len(out)-size]
			}
			if len(out)+len(ellipsis) <= max {
				out += ellipsis
			}
			return out
		}
		b.WriteString(part)
	}
	return b.String()
}

// backoffCap bounds the wait between retries.
const backoffCap = 30 * time.Second

// retry calls fn up to 1+retries times while it fails with an error that
// retryable accepts, waiting base, 2*base, 4*base ... (capped) in between.
// The wait honours ctx, so shutdown is never held up by a backoff.
func retry(ctx context.Context, retries int, base time.Duration, retryable func(error) bool, fn func(context.Context) error) error {
	wait := base
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if attempt >= retries || !retryable(err) || ctx.Err() != nil {
			if attempt > 0 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, backoffCap)
	}
}
