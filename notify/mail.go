package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// DateLayout is the RFC 5322 date-time the Date header uses. Go's time
// formatting never consults the locale, so the header reads the same under
// any LANG (fail2ban's mails were dated 1970 when it did).
const DateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// bodyTimeLayout is how times appear in the mail body: unambiguous, sortable.
const bodyTimeLayout = "2006-01-02 15:04:05 -0700"

// Bounds on attacker-written text in a mail.
const (
	maxLineBytes   = 1000 // per log line in the body
	maxHeaderBytes = 200  // per value in a header (jail, host)
	maxWhoisBytes  = 32 << 10
)

type mailAction struct {
	spec     MailSpec
	addr     string // host:port
	host     string // for TLS verification and PLAIN's localhost check
	tls      *tls.Config
	password string
	from     *mail.Address
	to       []*mail.Address
	whois    *Whois
	now      func() time.Time
	hostname string
	log      *slog.Logger
}

func newMail(s MailSpec, opts BuildOptions) (*mailAction, error) {
	if s.TLS == "" {
		s.TLS = TLSStartTLS
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultMailTimeout
	}
	if s.Retries == 0 {
		s.Retries = DefaultMailRetries
	} else if s.Retries < 0 {
		s.Retries = 0
	}
	if s.Backoff == 0 {
		s.Backoff = DefaultMailBackoff
	}
	if s.MaxLines == 0 {
		s.MaxLines = DefaultMailLines
	}
	m := &mailAction{spec: s, now: opts.Now, hostname: opts.Hostname, log: opts.Logger}
	var err error
	if m.addr, err = s.addr(); err != nil {
		return nil, fmt.Errorf("mail.server: %w", err)
	}
	m.host, _, _ = net.SplitHostPort(m.addr)
	name := s.ServerName
	if name == "" {
		name = m.host
	}
	if m.tls, err = tlsConfig(s.CAFile, name, s.InsecureSkipVerify); err != nil {
		return nil, fmt.Errorf("mail.%w", err)
	}
	m.password = s.Password
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("mail.passwordfile: %w", err)
		}
		m.password, _, _ = strings.Cut(string(b), "\n")
		m.password = strings.TrimSuffix(m.password, "\r")
	}
	m.from, _ = mail.ParseAddress(s.From)
	for _, t := range s.To {
		a, _ := mail.ParseAddress(t)
		m.to = append(m.to, a)
	}
	if s.Whois {
		m.whois = opts.Whois
		if m.whois == nil {
			m.whois = NewWhois(WhoisOptions{})
		}
	}
	return m, nil
}

// Do sends one mail for ev, with a whois of the address on bans when asked.
func (m *mailAction) Do(ctx context.Context, ev Event) error {
	if ev.Host == "" {
		ev.Host = m.hostname
	}
	var who *WhoisResult
	var whoErr error
	if m.whois != nil && ev.Kind == KindBan {
		r, err := m.whois.Lookup(ctx, ev.Ban.Network().Addr())
		who, whoErr = &r, err
	}
	msg, err := buildMessage(m.from, m.to, ev, m.spec.MaxLines, who, whoErr, m.now(), messageID(m.from, ev.Host))
	if err != nil {
		return fmt.Errorf("notify: mail: %w", err)
	}
	err = retry(ctx, m.spec.Retries, m.spec.Backoff, temporarySMTP, func(ctx context.Context) error {
		return m.send(ctx, msg)
	})
	if err != nil {
		return fmt.Errorf("notify: mail to %s via %s: %w", m.spec.To, m.addr, err)
	}
	return nil
}

// temporarySMTP reports whether a failed delivery is worth retrying: network
// trouble and 4xx replies are; 5xx replies (bad recipient, auth refused) and
// TLS verification failures would fail the same way again.
func temporarySMTP(err error) bool {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code >= 400 && tp.Code < 500
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) || errors.Is(err, errNoTLS) || errors.Is(err, errAuth) {
		return false
	}
	return true
}

var (
	errNoTLS = errors.New("server does not offer STARTTLS")
	errAuth  = errors.New("auth")
)

func (m *mailAction) send(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, m.spec.Timeout)
	defer cancel()
	d := &net.Dialer{}
	var (
		conn net.Conn
		err  error
	)
	if m.spec.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: m.tls}).DialContext(ctx, "tcp", m.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", m.addr)
	}
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	// net/smtp has no context: a deadline bounds every read and write, and
	// closing the connection on cancellation unblocks whatever is waiting.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	helo := m.spec.HelloName
	if helo == "" {
		helo = m.hostname
	}
	if err := c.Hello(helo); err != nil {
		return fmt.Errorf("ehlo: %w", err)
	}
	if m.spec.TLS == TLSStartTLS || m.spec.TLS == TLSOpportunistic {
		ok, _ := c.Extension("STARTTLS")
		switch {
		case ok:
			if err := c.StartTLS(m.tls); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		case m.spec.TLS == TLSStartTLS:
			return errNoTLS
		}
	}
	if m.spec.Username != "" {
		if err := m.auth(c); err != nil {
			return err
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	for _, to := range m.to {
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("rcpt to %s: %w", to.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	// The message is accepted once DATA is; a failed QUIT loses nothing.
	_ = c.Quit()
	return nil
}

func (m *mailAction) auth(c *smtp.Client) error {
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return fmt.Errorf("%w: server offers no AUTH (TLS not active?)", errAuth)
	}
	mech := strings.ToLower(m.spec.Auth)
	if mech == "" {
		mech = "login"
		for _, f := range strings.Fields(strings.ToUpper(mechs)) {
			if f == "PLAIN" {
				mech = "plain"
			}
		}
	}
	var a smtp.Auth
	if mech == "plain" {
		// PlainAuth itself refuses to send the password without TLS unless
		// the server is localhost.
		a = smtp.PlainAuth("", m.spec.Username, m.password, m.host)
	} else {
		a = &loginAuth{user: m.spec.Username, pass: m.password, host: m.host}
	}
	if err := c.Auth(a); err != nil {
		return fmt.Errorf("%w %s: %w", errAuth, strings.ToUpper(mech), err)
	}
	return nil
}

// loginAuth is the AUTH LOGIN mechanism (draft-murchison-sasl-login), which
// net/smtp lacks and many relays (Exchange, older Postfix setups) still want.
type loginAuth struct{ user, pass, host string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLocalhost(server.Name) {
		return "", nil, errors.New("refusing LOGIN without TLS")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN challenge %q", cleanText(string(fromServer), 64))
}

func isLocalhost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// messageID makes a unique Message-ID in the sender's domain.
func messageID(from *mail.Address, host string) string {
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	domain := ""
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 {
		domain = from.Address[at+1:]
	}
	if !validHostname(domain) || strings.HasPrefix(domain, "[") {
		domain = host
	}
	if !validHostname(domain) {
		domain = "sysban.invalid"
	}
	return "<" + hex.EncodeToString(rnd[:]) + ".sysban@" + domain + ">"
}

// headerValue makes attacker-reachable text a safe unstructured header value:
// cleaned (no CR/LF can survive), bounded, and RFC 2047-encoded when it is not
// plain ASCII.
func headerValue(s string) string {
	return mime.QEncoding.Encode("utf-8", cleanText(s, maxHeaderBytes))
}

// buildMessage renders the whole RFC 5322 message. It is pure, so it can be
// tested and fuzzed without a server.
func buildMessage(from *mail.Address, to []*mail.Address, ev Event, maxLines int, who *WhoisResult, whoErr error, now time.Time, msgID string) ([]byte, error) {
	jail := cleanText(ev.Ban.Jail, maxHeaderBytes)
	host := cleanText(ev.Host, maxHeaderBytes)
	addr := ev.Ban.Target()

	var subject string
	if ev.Kind == KindUnban {
		subject = fmt.Sprintf("[sysban] %s: unbanned %s on %s", jail, addr, host)
	} else {
		subject = fmt.Sprintf("[sysban] %s: banned %s on %s", jail, addr, host)
		if ev.Ban.Observed {
			subject = fmt.Sprintf("[sysban] %s: would ban %s on %s (observe mode)", jail, addr, host)
		}
	}
	tos := make([]string, len(to))
	for i, a := range to {
		tos[i] = a.String()
	}

	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("Date", now.Format(DateLayout))
	hdr("From", from.String())
	hdr("To", strings.Join(tos, ", "))
	hdr("Subject", headerValue(subject))
	hdr("Message-ID", msgID)
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: tells vacation responders and list software not to answer.
	hdr("Auto-Submitted", "auto-generated")
	hdr("X-Sysban-Event", ev.Kind)
	hdr("X-Sysban-Jail", headerValue(jail))
	hdr("X-Sysban-Address", addr)
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(mailBody(ev, jail, host, maxLines, who, whoErr))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func mailBody(ev Event, jail, host string, maxLines int, who *WhoisResult, whoErr error) string {
	var b strings.Builder
	addr := ev.Ban.Target()
	if !ev.Ban.Network().IsSingleIP() && ev.Ban.Addr.IsValid() {
		addr += " (last seen from " + ev.Ban.Addr.String() + ")"
	}
	if ev.Kind == KindUnban {
		fmt.Fprintf(&b, "sysban on %s lifted the ban on %s in jail %s", host, addr, jail)
		if ev.Reason != "" {
			fmt.Fprintf(&b, " (%s)", cleanText(ev.Reason, 64))
		}
		b.WriteString(".\n\n")
	} else {
		if ev.Ban.Observed {
			fmt.Fprintf(&b, "sysban on %s would have banned %s in jail %s after %d failures.\n"+
				"The jail is in observe mode: the ban is recorded, the firewall is not touched.\n\n", host, addr, jail, ev.Ban.Failures)
		} else {
			fmt.Fprintf(&b, "sysban on %s banned %s in jail %s after %d failures.\n\n", host, addr, jail, ev.Ban.Failures)
		}
	}
	row := func(k, v string) { fmt.Fprintf(&b, "%-10s %s\n", k+":", v) }
	row("Jail", jail)
	row("Address", addr)
	row("Failures", fmt.Sprint(ev.Ban.Failures))
	if !ev.Ban.Start.IsZero() {
		row("Banned at", ev.Ban.Start.Format(bodyTimeLayout))
	}
	if ev.Ban.Permanent() {
		row("Ban time", "permanent")
		row("Expires", "never")
	} else {
		row("Ban time", ev.Ban.Duration.String())
		if !ev.Ban.Start.IsZero() {
			row("Expires", ev.Ban.Expiry().Format(bodyTimeLayout))
		}
	}
	row("Host", host)

	if len(ev.Lines) > 0 {
		b.WriteString("\nMatched log lines:\n")
		lines := ev.Lines
		if maxLines > 0 && len(lines) > maxLines {
			lines = lines[len(lines)-maxLines:]
			fmt.Fprintf(&b, "  (last %d of %d)\n", maxLines, len(ev.Lines))
		}
		for _, l := range lines {
			b.WriteString("  " + cleanText(l, maxLineBytes) + "\n")
		}
	}
	switch {
	case whoErr != nil && (who == nil || who.Text == ""):
		fmt.Fprintf(&b, "\nWhois for %s failed: %s\n", addr, cleanText(whoErr.Error(), maxLineBytes))
	case who != nil:
		fmt.Fprintf(&b, "\nWhois for %s (%s):\n\n", addr, cleanText(who.Server, maxHeaderBytes))
		text := who.Text
		if len(text) > maxWhoisBytes {
			text = text[:maxWhoisBytes]
		}
		for _, l := range strings.Split(text, "\n") {
			b.WriteString(cleanText(strings.TrimRight(l, "\r"), maxLineBytes) + "\n")
		}
	}
	b.WriteString("\n-- \nsysban\n")
	return b.String()
}
