package notify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ActionSpec is one named action from the config. Exactly one of Mail,
// Webhook and Exec is set; that decides the action's type.
type ActionSpec struct {
	Name    string
	On      []string // event kinds it runs for: "ban", "unban"; empty means both
	Mail    *MailSpec
	Webhook *WebhookSpec
	Exec    *ExecSpec
}

// TLS modes of a mail action.
const (
	TLSStartTLS      = "starttls"      // STARTTLS required; default
	TLSOpportunistic = "opportunistic" // STARTTLS when offered, else plain text
	TLSImplicit      = "implicit"      // TLS from the first byte (port 465)
	TLSOff           = "off"           // plain text
)

// MailSpec configures a mail action.
type MailSpec struct {
	Server             string // host:port; without port 465 for implicit TLS, 587 for starttls, 25 otherwise
	TLS                string // TLSStartTLS (default), TLSOpportunistic, TLSImplicit, TLSOff
	CAFile             string // PEM roots to trust instead of the system's
	ServerName         string // name to verify in the server certificate; default the Server host
	InsecureSkipVerify bool   // accept any certificate (tests, broken relays)
	Auth               string // "plain", "login", or "" to pick from what the server offers
	Username           string // empty: no AUTH
	Password           string
	PasswordFile       string // read the password from this file instead (first line)
	From               string
	To                 []string
	HelloName          string        // EHLO name; default the event's host name
	Whois              bool          // add a whois of the address to ban mails
	MaxLines           int           // log lines in the body; default 50
	Timeout            time.Duration // per attempt; default 30s
	Retries            int           // extra attempts on temporary failures; default 2, -1 none
	Backoff            time.Duration // first wait between attempts; default 5s
}

// WebhookSpec configures a webhook action.
type WebhookSpec struct {
	URL                string
	Headers            map[string]string // e.g. Authorization
	Timeout            time.Duration     // per attempt; default 5s
	Retries            int               // extra attempts on network errors, 408, 429 and 5xx; default 3, -1 none
	Backoff            time.Duration     // first wait between attempts; default 1s, doubling
	CAFile             string
	InsecureSkipVerify bool
}

// ExecSpec configures a command action.
type ExecSpec struct {
	Argv      []string      // absolute program path and arguments, with {placeholders}
	Timeout   time.Duration // default 30s, then the process group is killed
	MaxOutput int           // bytes of stdout+stderr kept for the log; default 4096
}

// Defaults of the action types.
const (
	DefaultMailTimeout    = 30 * time.Second
	DefaultMailRetries    = 2
	DefaultMailBackoff    = 5 * time.Second
	DefaultMailLines      = 50
	DefaultWebhookTimeout = 5 * time.Second
	DefaultWebhookRetries = 3
	DefaultWebhookBackoff = time.Second
	DefaultExecTimeout    = 30 * time.Second
	DefaultExecOutput     = 4096
)

var actionName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Validate checks the spec without touching the network or the file system,
// so the config loader can call it on every load and reload. Its errors name
// the action and the key, e.g. `action "mail-admin": mail.to[1]: ...`.
func (a ActionSpec) Validate() error {
	if err := a.validate(); err != nil {
		return fmt.Errorf("action %q: %w", a.Name, err)
	}
	return nil
}

func (a ActionSpec) validate() error {
	if !actionName.MatchString(a.Name) {
		return errors.New("name: want 1-32 characters of [a-z0-9_-]")
	}
	for _, k := range a.On {
		if k != KindBan && k != KindUnban {
			return fmt.Errorf("on: %q: want %q or %q", k, KindBan, KindUnban)
		}
	}
	n := 0
	for _, set := range []bool{a.Mail != nil, a.Webhook != nil, a.Exec != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("want exactly one of mail, webhook, exec; have %d", n)
	}
	switch {
	case a.Mail != nil:
		return a.Mail.validate()
	case a.Webhook != nil:
		return a.Webhook.validate()
	default:
		return a.Exec.validate()
	}
}

func checkTimings(prefix string, timeout time.Duration, retries int, backoff time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("%s.timeout: %v: must not be negative", prefix, timeout)
	}
	if retries < -1 || retries > 10 {
		return fmt.Errorf("%s.retries: %d: want -1 (none) to 10", prefix, retries)
	}
	if backoff < 0 {
		return fmt.Errorf("%s.backoff: %v: must not be negative", prefix, backoff)
	}
	return nil
}

func (m *MailSpec) validate() error {
	if m.Server == "" {
		return errors.New("mail.server: required (host:port)")
	}
	if _, err := m.addr(); err != nil {
		return fmt.Errorf("mail.server: %q: %w", m.Server, err)
	}
	switch m.TLS {
	case "", TLSStartTLS, TLSOpportunistic, TLSImplicit, TLSOff:
	default:
		return fmt.Errorf("mail.tls: %q: want starttls, opportunistic, implicit or off", m.TLS)
	}
	switch strings.ToLower(m.Auth) {
	case "", "plain", "login":
	default:
		return fmt.Errorf("mail.auth: %q: want plain or login", m.Auth)
	}
	if m.Username == "" && (m.Password != "" || m.PasswordFile != "") {
		return errors.New("mail.username: required when a password is set")
	}
	if m.Password != "" && m.PasswordFile != "" {
		return errors.New("mail.password and mail.passwordfile: set one, not both")
	}
	if m.Username != "" && (m.TLS == TLSOff || m.TLS == TLSOpportunistic) && !m.loopback() {
		return fmt.Errorf("mail.tls: %q with a username would send the password in clear text; use starttls or implicit", m.TLS)
	}
	if _, err := mail.ParseAddress(m.From); err != nil {
		return fmt.Errorf("mail.from: %q: %w", m.From, err)
	}
	if len(m.To) == 0 {
		return errors.New("mail.to: at least one recipient required")
	}
	for i, to := range m.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("mail.to[%d]: %q: %w", i, to, err)
		}
	}
	if m.HelloName != "" && !validHostname(m.HelloName) {
		return fmt.Errorf("mail.helloname: %q: not a host name", m.HelloName)
	}
	if m.MaxLines < 0 {
		return fmt.Errorf("mail.maxlines: %d: must not be negative", m.MaxLines)
	}
	return checkTimings("mail", m.Timeout, m.Retries, m.Backoff)
}

// addr is Server with the port the TLS mode implies when none is given.
func (m *MailSpec) addr() (string, error) {
	if _, _, err := net.SplitHostPort(m.Server); err == nil {
		host, port, _ := net.SplitHostPort(m.Server)
		if host == "" {
			return "", errors.New("missing host")
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return "", fmt.Errorf("bad port %q", port)
		}
		return m.Server, nil
	}
	if strings.ContainsAny(m.Server, "/ ") {
		return "", errors.New("want host or host:port")
	}
	port := "25"
	switch m.TLS {
	case TLSImplicit:
		port = "465"
	case "", TLSStartTLS:
		port = "587"
	}
	return net.JoinHostPort(strings.Trim(m.Server, "[]"), port), nil
}

func (m *MailSpec) loopback() bool {
	addr, err := m.addr()
	if err != nil {
		return false
	}
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (w *WebhookSpec) validate() error {
	u, err := url.Parse(w.URL)
	if err != nil {
		return fmt.Errorf("webhook.url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("webhook.url: %q: want an http:// or https:// URL", w.URL)
	}
	if u.Host == "" {
		return fmt.Errorf("webhook.url: %q: missing host", w.URL)
	}
	for k, v := range w.Headers {
		if !validHeaderName(k) {
			return fmt.Errorf("webhook.headers: %q: not a valid header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("webhook.headers.%s: value contains CR, LF or NUL", k)
		}
	}
	return checkTimings("webhook", w.Timeout, w.Retries, w.Backoff)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		// RFC 9110 token characters.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (e *ExecSpec) validate() error {
	if len(e.Argv) == 0 {
		return errors.New("exec.argv: required: the program and its arguments")
	}
	if !filepath.IsAbs(e.Argv[0]) {
		// A relative name would depend on the daemon's PATH and working
		// directory; sysban runs as root, so say exactly which program.
		return fmt.Errorf("exec.argv[0]: %q: want an absolute path", e.Argv[0])
	}
	if strings.ContainsAny(e.Argv[0], "{}") {
		return fmt.Errorf("exec.argv[0]: %q: the program path cannot hold placeholders", e.Argv[0])
	}
	for i, arg := range e.Argv {
		if strings.IndexByte(arg, 0) >= 0 {
			return fmt.Errorf("exec.argv[%d]: contains NUL", i)
		}
		for _, m := range placeholderRE.FindAllString(arg, -1) {
			if !slices.Contains(Placeholders, m) {
				return fmt.Errorf("exec.argv[%d]: unknown placeholder %s; known: %s", i, m, strings.Join(Placeholders, " "))
			}
		}
	}
	if e.Timeout < 0 {
		return fmt.Errorf("exec.timeout: %v: must not be negative", e.Timeout)
	}
	if e.MaxOutput < 0 {
		return fmt.Errorf("exec.maxoutput: %d: must not be negative", e.MaxOutput)
	}
	return nil
}

// BuildOptions are what actions share and need from the daemon.
type BuildOptions struct {
	Logger   *slog.Logger     // nil discards
	Whois    *Whois           // shared whois client for mail actions; nil makes one per action that wants it
	Now      func() time.Time // clock for mail Date headers; nil is time.Now
	Hostname string           // default for events without Host and for EHLO; default os.Hostname
}

// Build validates the spec and makes its Action.
func (a ActionSpec) Build(opts BuildOptions) (Action, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = opts.Logger.With("action", a.Name)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || !validHostname(h) {
			h = "localhost"
		}
		opts.Hostname = h
	}
	var (
		act Action
		err error
	)
	switch {
	case a.Mail != nil:
		act, err = newMail(*a.Mail, opts)
	case a.Webhook != nil:
		act, err = newWebhook(*a.Webhook, opts)
	default:
		act, err = newExec(*a.Exec, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("notify: action %q: %w", a.Name, err)
	}
	if len(a.On) == 0 || (slices.Contains(a.On, KindBan) && slices.Contains(a.On, KindUnban)) {
		return act, nil
	}
	return onlyKinds{Action: act, kinds: slices.Clone(a.On)}, nil
}

// onlyKinds restricts an action to some event kinds.
type onlyKinds struct {
	Action
	kinds []string
}

func (o onlyKinds) Wants(kind string) bool { return slices.Contains(o.kinds, kind) }

// tlsConfig builds a client TLS config trusting caFile (or the system roots).
func tlsConfig(caFile, serverName string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cafile: %s: no PEM certificates", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// validHostname accepts DNS names and IP literals: what may follow EHLO or
// appear in a Message-ID without quoting.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	if net.ParseIP(strings.Trim(s, "[]")) != nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
