package notify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Whois defaults.
const (
	DefaultWhoisServer    = "whois.iana.org"
	DefaultWhoisTimeout   = 5 * time.Second
	DefaultWhoisMaxBytes  = 64 << 10
	DefaultWhoisReferrals = 2
	DefaultWhoisCacheSize = 1024
	DefaultWhoisCacheTTL  = 24 * time.Hour
)

// WhoisOptions configure a Whois client. Zero values take the defaults.
type WhoisOptions struct {
	Server       string        // first server asked, host or host:port; DefaultWhoisServer
	Timeout      time.Duration // per server queried; DefaultWhoisTimeout
	MaxBytes     int           // response bytes kept per server; DefaultWhoisMaxBytes
	MaxReferrals int           // referrals followed; DefaultWhoisReferrals, -1 none
	CacheSize    int           // addresses cached; DefaultWhoisCacheSize
	CacheTTL     time.Duration // how long an answer is reused; DefaultWhoisCacheTTL

	// Dial opens the TCP connections; nil uses a net.Dialer. Tests point
	// registry names at local servers with it.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	Now  func() time.Time // clock for the cache; nil is time.Now
}

// WhoisResult is the answer of the last server in the referral chain.
type WhoisResult struct {
	Server string // host:port that gave Text
	Text   string // its response, valid UTF-8, at most MaxBytes
}

// Whois is a native RFC 3912 client: it asks the configured server (IANA by
// default) about an address, follows the referral to the registry that holds
// it, and caches the answer. It replaces the whois program fail2ban shelled
// out to, which was often missing.
type Whois struct {
	opts WhoisOptions

	mu    sync.Mutex
	cache map[netip.Addr]whoisEntry
}

type whoisEntry struct {
	res     WhoisResult
	expires time.Time
}

// NewWhois makes a client; it does no I/O until Lookup.
func NewWhois(opts WhoisOptions) *Whois {
	if opts.Server == "" {
		opts.Server = DefaultWhoisServer
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultWhoisTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultWhoisMaxBytes
	}
	if opts.MaxReferrals == 0 {
		opts.MaxReferrals = DefaultWhoisReferrals
	} else if opts.MaxReferrals < 0 {
		opts.MaxReferrals = 0
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultWhoisCacheSize
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultWhoisCacheTTL
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{}).DialContext
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Whois{opts: opts, cache: make(map[netip.Addr]whoisEntry)}
}

// Lookup returns the whois record of addr. When a referral cannot be
// followed, the answer of the server that referred is returned with the
// error, so a mail still says something useful.
func (w *Whois) Lookup(ctx context.Context, addr netip.Addr) (WhoisResult, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return WhoisResult{}, errors.New("whois: invalid address")
	}
	now := w.opts.Now()
	w.mu.Lock()
	e, ok := w.cache[addr]
	w.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.res, nil
	}

	server := withPort(w.opts.Server)
	seen := map[string]bool{}
	var (
		res     WhoisResult
		lastErr error
	)
	for hop := 0; hop <= w.opts.MaxReferrals; hop++ {
		seen[server] = true
		text, err := w.query(ctx, server, addr)
		if err != nil {
			lastErr = fmt.Errorf("whois: %s: %w", server, err)
			break
		}
		res = WhoisResult{Server: server, Text: text}
		next, ok := parseReferral(text)
		if !ok || seen[next] {
			break
		}
		server = next
	}
	if res.Server == "" {
		return res, lastErr
	}
	if lastErr == nil {
		w.store(addr, res, now)
	}
	return res, lastErr
}

func (w *Whois) store(addr netip.Addr, res WhoisResult, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cache) >= w.opts.CacheSize {
		// Evict the expired, then the oldest: O(n) over a small map, run
		// only once per ban, which is cheaper than keeping an ordered list.
		var oldest netip.Addr
		var oldestExp time.Time
		for k, v := range w.cache {
			if !now.Before(v.expires) {
				delete(w.cache, k)
				continue
			}
			if oldestExp.IsZero() || v.expires.Before(oldestExp) {
				oldest, oldestExp = k, v.expires
			}
		}
		if len(w.cache) >= w.opts.CacheSize {
			delete(w.cache, oldest)
		}
	}
	w.cache[addr] = whoisEntry{res: res, expires: now.Add(w.opts.CacheTTL)}
}

func (w *Whois) query(ctx context.Context, server string, addr netip.Addr) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	conn, err := w.opts.Dial(ctx, "tcp", server)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// RFC 3912: the query is one line ending in CRLF; the server answers and
	// closes the connection.
	if _, err := io.WriteString(conn, addr.String()+"\r\n"); err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(conn, int64(w.opts.MaxBytes)))
	if err != nil && len(body) == 0 {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", err
	}
	// Registries answer in ASCII, Latin-1 or UTF-8; make it valid UTF-8 and
	// drop the NULs some send, keeping line structure.
	text := strings.ToValidUTF8(string(bytes.ReplaceAll(body, []byte{0}, nil)), "\uFFFD")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if strings.TrimSpace(text) == "" {
		return "", errors.New("empty answer")
	}
	return text, nil
}

func withPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.Trim(server, "[]"), "43")
}

// parseReferral finds where a whois answer sends us next: IANA's "refer:"
// (or "whois:") line, or ARIN's "ReferralServer: whois://host[:port]". Only
// whois referrals to port 43 are followed: the answer of a registry can point
// at a server an ISP (or an attacker who owns the address block) runs, and it
// must not make sysban connect to arbitrary ports.
func parseReferral(text string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		switch key {
		case "refer", "whois":
		case "referralserver":
			const scheme = "whois://"
			if len(val) < len(scheme) || !strings.EqualFold(val[:len(scheme)], scheme) {
				continue // rwhois://, http:// ... are not RFC 3912
			}
			val = val[len(scheme):]
		default:
			continue
		}
		val = strings.TrimSuffix(val, "/")
		host, port := val, "43"
		if h, p, err := net.SplitHostPort(val); err == nil {
			host, port = h, p
		}
		if port != "43" || !validHostname(host) {
			continue
		}
		return net.JoinHostPort(strings.ToLower(host), port), true
	}
	return "", false
}
