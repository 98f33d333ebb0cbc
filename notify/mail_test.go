package notify

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func testBan() sysban.Ban {
	return sysban.Ban{
		Jail:     "sshd",
		Addr:     netip.MustParseAddr("198.51.100.7"),
		Start:    time.Now().Add(-time.Second),
		Duration: time.Hour,
		Failures: 5,
	}
}

// readMail parses a received message and decodes its body.
func readMail(t *testing.T, data []byte) (*mail.Message, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding = %q", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body is not valid quoted-printable: %v", err)
	}
	return msg, string(body)
}

func TestMailDelivery(t *testing.T) {
	// fail2ban's mails on a zh_TW CentOS 5 host were dated 1970: the date
	// came from the locale.
	// Ours must not care what the environment says.
	t.Setenv("LANG", "zh_TW.Big5")
	t.Setenv("LC_ALL", "zh_TW.Big5")
	t.Setenv("LC_TIME", "ja_JP.eucJP")
	t.Setenv("TZ", "Asia/Taipei")

	serverTLS, caFile := selfSigned(t)
	iana, _, dial := registries(t)
	whois := NewWhois(WhoisOptions{Server: "whois.iana.test", Dial: dialMap(dial)})

	tests := []struct {
		name    string
		mode    smtpMode
		tls     string
		auth    string
		wantTLS bool
	}{
		{"plain text on loopback", modePlain, TLSOff, "plain", false},
		{"opportunistic without STARTTLS", modePlain, TLSOpportunistic, "", false},
		{"starttls", modeStartTLS, TLSStartTLS, "plain", true},
		{"opportunistic with STARTTLS", modeStartTLS, TLSOpportunistic, "", true},
		{"implicit TLS", modeImplicit, TLSImplicit, "plain", true},
		{"starttls with LOGIN", modeStartTLS, TLSStartTLS, "login", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.mode, serverTLS)
			pwFile := filepath.Join(t.TempDir(), "pw")
			if err := os.WriteFile(pwFile, []byte("s3cret pass\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			spec := ActionSpec{Name: "mail-admin", Mail: &MailSpec{
				Server:       srv.Addr,
				TLS:          tt.tls,
				CAFile:       caFile,
				Auth:         tt.auth,
				Username:     "sysban",
				PasswordFile: pwFile,
				From:         "sysban <sysban@example.org>",
				To:           []string{"root@example.org", "Ops Team <ops@example.org>"},
				Whois:        true,
				Retries:      -1,
			}}
			act, err := spec.Build(BuildOptions{Whois: whois, Hostname: "mx1.example.org"})
			if err != nil {
				t.Fatal(err)
			}
			ev := Event{Kind: KindBan, Ban: testBan(), Lines: []string{
				"Failed password for root from 198.51.100.7 port 2222 ssh2",
				"Failed password for invalid user émile from 198.51.100.7 port 2223 ssh2",
			}}
			if err := act.Do(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			msgs := srv.messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.TLS != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", got.TLS, tt.wantTLS)
			}
			if got.Authed == "" {
				t.Error("message accepted without AUTH")
			}
			if tt.auth == "login" && got.Authed != "LOGIN" {
				t.Errorf("auth mechanism = %q, want LOGIN", got.Authed)
			}
			if got.From != "sysban@example.org" || !slices.Equal(got.To, []string{"root@example.org", "ops@example.org"}) {
				t.Errorf("envelope = %q -> %q", got.From, got.To)
			}

			msg, body := readMail(t, got.Data)
			date, err := msg.Header.Date()
			if err != nil {
				t.Fatalf("Date %q does not parse: %v", msg.Header.Get("Date"), err)
			}
			if d := time.Since(date); d < -time.Minute || d > time.Minute {
				t.Errorf("Date %q is %v away from now", msg.Header.Get("Date"), d)
			}
			if _, err := time.Parse(DateLayout, msg.Header.Get("Date")); err != nil {
				t.Errorf("Date %q is not in the fixed RFC 5322 layout: %v", msg.Header.Get("Date"), err)
			}
			id := msg.Header.Get("Message-ID")
			if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.org>") {
				t.Errorf("Message-ID = %q", id)
			}
			if ct := msg.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if msg.Header.Get("MIME-Version") != "1.0" {
				t.Error("no MIME-Version: 1.0")
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			if err != nil || subject != "[sysban] sshd: banned 198.51.100.7 on mx1.example.org" {
				t.Errorf("Subject = %q (%v)", subject, err)
			}
			for _, want := range []string{
				"Jail:      sshd",
				"Address:   198.51.100.7",
				"Failures:  5",
				"Ban time:  1h0m0s",
				"Host:      mx1.example.org",
				"Failed password for invalid user émile from 198.51.100.7 port 2223 ssh2",
				"Whois for 198.51.100.7 (whois.rir.test:43)",
				"netname:        TEST-NET-2",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
		})
	}
	if n := len(iana.Queries()); n != 1 {
		t.Errorf("whois asked IANA %d times for one address; want 1 (cached)", n)
	}
}

func TestMailHeaderInjection(t *testing.T) {
	srv := startSMTP(t, modePlain, nil)
	spec := ActionSpec{Name: "m", Mail: &MailSpec{
		Server: srv.Addr, TLS: TLSOff, Username: "sysban", Password: "s3cret pass",
		From: "sysban@example.org", To: []string{"root@example.org"}, Retries: -1,
	}}
	act, err := spec.Build(BuildOptions{Hostname: "mx1"})
	if err != nil {
		t.Fatal(err)
	}
	ban := testBan()
	ban.Jail = "sshd\r\nBcc: jail@evil.example"
	ev := Event{
		Kind: KindBan, Ban: ban,
		Host:  "mx1\nBcc: host@evil.example",
		Lines: []string{"user x\r\nBcc: x@y\r\n\r\nforged body from 198.51.100.7", "tail\x00\x1b[31m"},
	}
	if err := act.Do(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	got := srv.messages()[0]
	if !slices.Equal(got.To, []string{"root@example.org"}) {
		t.Errorf("recipients = %q: injected", got.To)
	}
	msg, body := readMail(t, got.Data)
	for k := range msg.Header {
		switch k {
		case "Date", "From", "To", "Subject", "Message-Id", "Mime-Version", "Content-Type",
			"Content-Transfer-Encoding", "Auto-Submitted", "X-Sysban-Event", "X-Sysban-Jail", "X-Sysban-Address":
		default:
			t.Errorf("unexpected header %q: %q", k, msg.Header[k])
		}
	}
	head := string(got.Data[:bytes.Index(got.Data, []byte("\r\n\r\n"))])
	if strings.Contains(strings.ToLower(head), "\nbcc") {
		t.Errorf("Bcc line in the header:\n%s", head)
	}
	if !strings.Contains(body, `user x\x0d\x0aBcc: x@y\x0d\x0a\x0d\x0aforged body`) {
		t.Errorf("attacker line not shown escaped on one line:\n%s", body)
	}
	if strings.ContainsAny(strings.ReplaceAll(body, "\r\n", "\n"), "\x00\x1b\r") {
		t.Errorf("control characters reached the body: %q", body)
	}
}

func TestMailFailures(t *testing.T) {
	serverTLS, caFile := selfSigned(t)
	tests := []struct {
		name string
		mode smtpMode
		spec MailSpec
	}{
		// STARTTLS required but not offered: never fall back to clear text.
		{"starttls missing", modePlain, MailSpec{TLS: TLSStartTLS, CAFile: caFile, Username: "sysban", Password: "s3cret pass"}},
		// A certificate we do not trust.
		{"untrusted certificate", modeStartTLS, MailSpec{TLS: TLSStartTLS, Username: "sysban", Password: "s3cret pass"}},
		{"wrong password", modeImplicit, MailSpec{TLS: TLSImplicit, CAFile: caFile, Username: "sysban", Password: "nope"}},
		{"no auth configured", modePlain, MailSpec{TLS: TLSOff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.mode, serverTLS)
			s := tt.spec
			s.Server, s.From, s.To, s.Retries = srv.Addr, "sysban@example.org", []string{"root@example.org"}, 2
			s.Backoff = time.Millisecond
			act, err := ActionSpec{Name: "m", Mail: &s}.Build(BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}); err == nil {
				t.Fatal("want an error")
			} else {
				t.Log(err)
			}
			if n := len(srv.messages()); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
		})
	}
}

func TestMailUnban(t *testing.T) {
	from, _ := mail.ParseAddress("sysban@example.org")
	to, _ := mail.ParseAddress("root@example.org")
	ban := testBan()
	ban.Duration = sysban.Permanent
	now := time.Date(2026, 11, 21, 19, 0, 0, 0, time.FixedZone("", 8*3600))
	data, err := buildMessage(from, []*mail.Address{to}, Event{Kind: KindUnban, Ban: ban, Reason: ReasonManual, Host: "mx1"}, 50, nil, nil, now, "<x@example.org>")
	if err != nil {
		t.Fatal(err)
	}
	msg, body := readMail(t, data)
	if got := msg.Header.Get("Date"); got != "Sat, 21 Nov 2026 19:00:00 +0800" {
		t.Errorf("Date = %q", got)
	}
	if got := msg.Header.Get("Subject"); got != "[sysban] sshd: unbanned 198.51.100.7 on mx1" {
		t.Errorf("Subject = %q", got)
	}
	for _, want := range []string{"lifted the ban on 198.51.100.7 in jail sshd (manual)", "Ban time:  permanent", "Expires:   never"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func FuzzBuildMessage(f *testing.F) {
	f.Add("sshd", "mx1", "Failed password for root from 198.51.100.7", "expired")
	f.Add("sshd\r\nBcc: a@b", "h\n\nbody", "x\r\n.\r\nMAIL FROM:<a@b>", "\r\n")
	f.Add("日本語", "ホスト", "\xff\xfe\x00", "")
	from, _ := mail.ParseAddress("sysban <sysban@example.org>")
	to, _ := mail.ParseAddress("root@example.org")
	f.Fuzz(func(t *testing.T, jail, host, line, reason string) {
		ban := testBan()
		ban.Jail = jail
		ev := Event{Kind: KindBan, Ban: ban, Host: host, Lines: []string{line, line}, Reason: reason}
		data, err := buildMessage(from, []*mail.Address{to}, ev, 50, &WhoisResult{Server: host, Text: line}, nil, time.Now(), messageID(from, host))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("message does not parse: %v", err)
		}
		if len(msg.Header) != 12 {
			t.Fatalf("%d headers, want 12: %q", len(msg.Header), msg.Header)
		}
		if msg.Header.Get("To") != "<root@example.org>" {
			t.Fatalf("To = %q", msg.Header.Get("To"))
		}
		for _, l := range bytes.Split(data, []byte("\r\n")) {
			if len(l) > 998 {
				t.Fatalf("line of %d bytes exceeds RFC 5322's 998", len(l))
			}
			if bytes.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("bare CR/LF/NUL in %q", l)
			}
		}
		if _, err := io.ReadAll(quotedprintable.NewReader(msg.Body)); err != nil {
			t.Fatalf("body: %v", err)
		}
	})
}

// TestMailPrefixAndObserved: a prefix ban's mail names the prefix and the
// address seen; an observed ban's says it was not enforced; the webhook
// and exec fields carry both.
func TestMailPrefixAndObserved(t *testing.T) {
	from, _ := mail.ParseAddress("sysban@example.org")
	to, _ := mail.ParseAddress("root@example.org")
	ban := testBan()
	ban.Prefix = netip.MustParsePrefix("2001:db8:1:2::/64")
	ban.Addr = netip.MustParseAddr("2001:db8:1:2::9")
	for _, observed := range []bool{false, true} {
		ban.Observed = observed
		ev := Event{Kind: KindBan, Ban: ban, Host: "mx1"}
		data, err := buildMessage(from, []*mail.Address{to}, ev, 50, nil, nil, time.Now(), "<x@example.org>")
		if err != nil {
			t.Fatal(err)
		}
		msg, body := readMail(t, data)
		subject, want := msg.Header.Get("Subject"), "[sysban] sshd: banned 2001:db8:1:2::/64 on mx1"
		if observed {
			want = "[sysban] sshd: would ban 2001:db8:1:2::/64 on mx1 (observe mode)"
		}
		if subject != want {
			t.Errorf("Subject = %q, want %q", subject, want)
		}
		if !strings.Contains(body, "2001:db8:1:2::/64 (last seen from 2001:db8:1:2::9)") ||
			observed != strings.Contains(body, "the firewall is not touched") {
			t.Errorf("observed %v, body:\n%s", observed, body)
		}
		p := payload(ev)
		f := fields(ev)
		if p.Address != "2001:db8:1:2::/64" || p.Prefix != "2001:db8:1:2::/64" || p.Seen != "2001:db8:1:2::9" || p.Observed != observed ||
			f["addr"] != "2001:db8:1:2::/64" || f["seen"] != "2001:db8:1:2::9" || f["family"] != "inet6" {
			t.Errorf("webhook %+v, exec fields %v", p, f)
		}
	}
}
