package receiver

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A refused sender is counted every time and logged once per interval, so a
// forged-source flood is visible without flooding the log.
func TestRefusedSenderLoggedOncePerInterval(t *testing.T) {
	var logs lockedBuffer
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}}, Options{
		Allow:  []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	c := dial(t, "udp", rr.r.Addrs()[0])
	for i := 0; i < 3; i++ {
		c.Write([]byte(sshLine))
	}
	waitFor(t, "three refusals", func() bool { return rr.stats(0).Dropped[ReasonSenderNotAllowed] == 3 })
	if n := strings.Count(logs.String(), "sender not allowed"); n != 1 {
		t.Errorf("refusal logged %d times, want once per interval:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "sender=127.0.0.1:") {
		t.Errorf("log does not name the sender:\n%s", logs.String())
	}
}
