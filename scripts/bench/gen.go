package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Line is one generated log line: a program, its pid and the message text,
// and what a correct matcher must make of it.
type Line struct {
	Prog    string
	PID     int // 0: no [pid] in the header
	Text    string
	Fail    bool // the line completes a failure (alone or as a two-line close)
	Pending bool // the line opens a two-line failure (sendmail AUTH)
	// Same marks a failure line of an sshd attempt whose first line was
	// already counted: it matches, and counts nothing (maxretry counts
	// attempts, pipeline/attempt.go).
	Same bool
}

// Counts is what the generator wrote, for checking detections. Failures
// are the failures a correct pipeline counts (attempts); Same the further
// failure lines of those attempts, which match and count nothing.
type Counts struct {
	Lines, Failures, Same, Pending int
	ByKind                         map[string]int
}

// Generator writes a deterministic mix of traffic: every run with the same
// seed yields the same lines, so figures from two runs compare like for like.
// Roughly 20% of lines are failures spread over a pool of IPv4 (100.64/10)
// and IPv6 (2001:db8::/32) attackers; the rest is the benign noise of a real
// host. The sendmail AUTH failure comes as two lines sharing a queue id,
// with the close emitted a few lines after the open, as on a busy MTA.
// An sshd attempt comes as sshd prints it: its pam_unix or "Invalid user"
// line, then its "Failed" verdict on the next line; each attempt has one
// verdict and no two lines of one kind, so the pipeline's attempt rules
// count exactly one failure per attempt however the attempts of one
// address interleave or repeat (the TCP section replays the traffic).
type Generator struct {
	rng      *rand.Rand
	pool     []netip.Addr
	next     []Line // further lines of the current sshd attempt, emitted at once
	held     []Line // closes of two-line failures waiting to be emitted
	heldWait int    // lines still to go before the next held line
	counts   Counts
}

// NewGenerator returns a generator seeded with seed and attackers addresses,
// about 30% of them IPv6.
func NewGenerator(seed uint64, attackers int) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	g.counts.ByKind = map[string]int{}
	g.pool = make([]netip.Addr, attackers)
	for i := range g.pool {
		if g.rng.IntN(10) < 3 {
			g.pool[i] = v6Addr(g.rng.Uint64())
		} else {
			g.pool[i] = v4Addr(uint32(g.rng.IntN(1 << 22)))
		}
	}
	return g
}

// v4Addr is the n-th address of 100.64.0.0/10 (shared address space: never
// routed on the internet, and nothing in these namespaces uses it).
func v4Addr(n uint32) netip.Addr {
	n = 100<<24 | 64<<16 + n%(1<<22)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// v6Addr is an address in the documentation prefix 2001:db8::/32.
func v6Addr(n uint64) netip.Addr {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	for i := 0; i < 8; i++ {
		b[8+i] = byte(n >> (8 * i))
	}
	b[4], b[5] = byte(n>>40), byte(n>>48)
	if b[15] == 0 {
		b[15] = 1
	}
	return netip.AddrFrom16(b)
}

// DistinctAddr is the i-th of a sequence of distinct attacker addresses
// (IPv4 for i < 2^22, IPv6 beyond), for the memory section.
func DistinctAddr(i int) netip.Addr {
	if i < 1<<22 {
		return v4Addr(uint32(i))
	}
	return v6Addr(uint64(i) | 1<<56)
}

// Counts returns what has been generated so far.
func (g *Generator) Counts() Counts { return g.counts }

// Next returns the next line.
func (g *Generator) Next() Line {
	var l Line
	if len(g.next) > 0 {
		l = g.next[0]
		g.next = g.next[1:]
	} else if len(g.held) > 0 && g.heldWait == 0 {
		l = g.held[0]
		g.held = g.held[1:]
		if len(g.held) > 0 {
			g.heldWait = 1 + g.rng.IntN(3)
		}
	} else {
		if g.heldWait > 0 {
			g.heldWait--
		}
		l = g.fresh()
	}
	g.count(l)
	return l
}

// count adds l to the counts.
func (g *Generator) count(l Line) {
	g.counts.Lines++
	switch {
	case l.Fail && l.Same:
		g.counts.Same++
	case l.Fail:
		g.counts.Failures++
	}
	if l.Pending {
		g.counts.Pending++
	}
}

// Flush returns the closes still held, so that a finite stream has no open
// two-line failure left.
func (g *Generator) Flush() []Line {
	out := append(g.next, g.held...)
	g.next, g.held, g.heldWait = nil, nil, 0
	for _, l := range out {
		g.count(l)
	}
	return out
}

func (g *Generator) attacker() netip.Addr { return g.pool[g.rng.IntN(len(g.pool))] }

var users = []string{"root", "admin", "test", "oracle", "ubuntu", "postgres", "git", "user", "bob", "info"}

func (g *Generator) user() string { return users[g.rng.IntN(len(users))] }
func (g *Generator) port() int    { return 1024 + g.rng.IntN(64000) }
func (g *Generator) pid() int     { return 300 + g.rng.IntN(60000) }

// qid is a sendmail queue id: 14 letters and digits.
func (g *Generator) qid() string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [14]byte
	for i := range b {
		b[i] = chars[g.rng.IntN(len(chars))]
	}
	return string(b[:])
}

// benign returns an address from the site's own documentation range:
// legitimate users and relays.
func (g *Generator) benign() string {
	return fmt.Sprintf("198.51.100.%d", 2+g.rng.IntN(250))
}

// fresh draws a line that is not a held close.
func (g *Generator) fresh() Line {
	if g.rng.IntN(100) >= 20 {
		return g.noise()
	}
	a := g.attacker()
	as := a.String()
	fail := func(kind, prog string, pid int, text string) Line {
		g.counts.ByKind[kind]++
		return Line{Prog: prog, PID: pid, Text: text, Fail: true}
	}
	// attempt returns an sshd attempt's first line and queues its verdict,
	// which counts nothing more.
	attempt := func(pid int, first, verdict string) Line {
		g.next = append(g.next, Line{Prog: "sshd", PID: pid, Text: verdict, Fail: true, Same: true})
		return fail("sshd", "sshd", pid, first)
	}
	switch r := g.rng.IntN(100); {
	case r < 14:
		u, pid, port := g.user(), g.pid(), g.port()
		return attempt(pid, fmt.Sprintf("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=%s", as, u),
			fmt.Sprintf("Failed password for %s from %s port %d ssh2", u, as, port))
	case r < 26:
		u, pid, port := g.user(), g.pid(), g.port()
		return attempt(pid, fmt.Sprintf("Invalid user %s from %s port %d", u, as, port),
			fmt.Sprintf("Failed password for invalid user %s from %s port %d ssh2", u, as, port))
	case r < 34:
		// OpenSSH without PAM: the verdict is the attempt's only line.
		return fail("sshd", "sshd", g.pid(), fmt.Sprintf("Failed password for %s from %s port %d ssh2", g.user(), as, g.port()))
	case r < 40:
		return fail("sshd", "sshd", g.pid(), fmt.Sprintf("Failed publickey for invalid user %s from %s port %d ssh2: ED25519 SHA256:q2k3Vb8zN0s9aHR0cHM6Ly9leGFtcGxl", g.user(), as, g.port()))
	case r < 52:
		return fail("postfix", "postfix/smtpd", g.pid(), fmt.Sprintf("NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 <%s@example.net>: Relay access denied; from=<spam@example.org> to=<%s@example.net> proto=ESMTP helo=<x>", as, g.user(), g.user()))
	case r < 60:
		return fail("postfix-sasl", "postfix/smtpd", g.pid(), fmt.Sprintf("warning: unknown[%s]: SASL LOGIN authentication failed: authentication failure", as))
	case r < 75:
		return fail("dovecot", "dovecot", 0, fmt.Sprintf("imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<%s>, method=PLAIN, rip=%s, lip=198.51.100.1, TLS, session=<%s>", g.user(), as, g.qid()[:8]))
	case r < 83:
		// The two-line AUTH failure: the open names no address, the
		// close (same queue id, a few lines later) names it.
		q, pid := g.qid(), g.pid()
		host := "[" + as + "]"
		if a.Is6() {
			host = "[IPv6:" + as + "]"
		}
		g.counts.ByKind["sendmail"]++
		g.held = append(g.held, Line{Prog: "sm-mta", PID: pid, Fail: true,
			Text: fmt.Sprintf("%s: lost input channel from %s to MTA after auth", q, host)})
		if len(g.held) == 1 {
			g.heldWait = 1 + g.rng.IntN(3)
		}
		return Line{Prog: "sm-mta", PID: pid, Pending: true,
			Text: fmt.Sprintf("%s: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed", q)}
	case r < 90:
		return fail("named", "named", g.pid(), fmt.Sprintf("client @0x7f3a1c0d2168 %s#%d (example.com): query (cache) 'example.com/A/IN' denied", as, g.port()))
	case r < 95:
		if a.Is6() {
			return fail("openvpn", "openvpn", g.pid(), fmt.Sprintf("TLS Error: tls-crypt unwrapping failed from [AF_INET6]%s:%d", as, g.port()))
		}
		return fail("openvpn", "openvpn", g.pid(), fmt.Sprintf("%s:%d TLS Error: TLS handshake failed", as, g.port()))
	default:
		if a.Is6() {
			return fail("apache", "httpd", g.pid(), fmt.Sprintf("[error] [client %s] File does not exist: /var/www/html/wp-login.php", as))
		}
		return fail("apache", "apache2", g.pid(), fmt.Sprintf("[auth_basic:error] [pid %d:tid %d] [client %s:%d] AH01618: user %s not found: /private", g.pid(), g.pid(), as, g.port(), g.user()))
	}
}

// noise is a benign line: what a host logs when nothing is wrong, including
// successes from the very programs the filters read.
func (g *Generator) noise() Line {
	switch r := g.rng.IntN(100); {
	case r < 15:
		return Line{Prog: "CRON", PID: g.pid(), Text: "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"}
	case r < 30:
		n := g.rng.IntN(5000)
		return Line{Prog: "systemd", PID: 1, Text: fmt.Sprintf("Started session-%d.scope - Session %d of User bob.", n, n)}
	case r < 40:
		return Line{Prog: "kernel", Text: fmt.Sprintf("[%d.%06d] IN=eth0 OUT= SRC=%s DST=198.51.100.1 LEN=60 TTL=50 PROTO=TCP SPT=%d DPT=23 WINDOW=29200 SYN URGP=0", g.rng.IntN(900000), g.rng.IntN(1000000), g.attacker(), g.port())}
	case r < 50:
		return Line{Prog: "sshd", PID: g.pid(), Text: fmt.Sprintf("Accepted publickey for alice from %s port %d ssh2: ED25519 SHA256:q2k3Vb8zN0s9aHR0cHM6Ly9leGFtcGxl", g.benign(), g.port())}
	case r < 58:
		return Line{Prog: "sshd", PID: g.pid(), Text: "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)"}
	case r < 70:
		return Line{Prog: "postfix/smtp", PID: g.pid(), Text: fmt.Sprintf("%s: to=<%s@example.org>, relay=mx.example.org[198.51.100.25]:25, delay=0.41, delays=0.01/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Bc5Qk3R5Vz9sWl)", g.qid()[:11], g.user())}
	case r < 78:
		return Line{Prog: "postfix/smtpd", PID: g.pid(), Text: fmt.Sprintf("connect from mail.example.org[%s]", g.benign())}
	case r < 84:
		return Line{Prog: "postfix/smtpd", PID: g.pid(), Text: fmt.Sprintf("disconnect from mail.example.org[%s] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5", g.benign())}
	case r < 92:
		return Line{Prog: "dovecot", Text: fmt.Sprintf("imap-login: Login: user=<bob>, method=PLAIN, rip=%s, lip=198.51.100.1, mpid=%d, TLS, session=<%s>", g.benign(), g.pid(), g.qid()[:8])}
	default:
		return Line{Prog: "named", PID: g.pid(), Text: fmt.Sprintf("client @0x7f3a1c0d2168 %s#%d (www.example.com): query: www.example.com IN A +E(0)K (192.0.2.53)", g.benign(), g.port())}
	}
}

// appendHeader appends the classic "Mmm dd hh:mm:ss host prog[pid]: " prefix.
func appendHeader(b []byte, t time.Time, l Line) []byte {
	b = t.AppendFormat(b, time.Stamp)
	b = append(b, " bench "...)
	b = append(b, l.Prog...)
	if l.PID > 0 {
		b = append(b, '[')
		b = fmt.Appendf(b, "%d", l.PID)
		b = append(b, ']')
	}
	return append(b, ": "...)
}

// AppendFile appends l as a line of a classic syslog file, with newline.
func AppendFile(b []byte, t time.Time, l Line) []byte {
	b = appendHeader(b, t, l)
	b = append(b, l.Text...)
	return append(b, '\n')
}

// AppendWire appends l as an RFC 3164 message as forwarders send it
// (<PRI>, BSD time stamp, host, tag), without framing. The facility is
// authpriv for sshd and mail for the mail daemons; the receiver does not
// route on it, so one PRI serves: 4*8+6 (auth.info).
func AppendWire(b []byte, t time.Time, l Line) []byte {
	b = append(b, "<38>"...)
	b = appendHeader(b, t, l)
	return append(b, l.Text...)
}

// WriteLog writes n lines (plus the closes still held at the end) as a
// classic syslog file, one second apart from start, and returns the counts.
func WriteLog(w io.Writer, g *Generator, n int, start time.Time) (Counts, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	t := start
	for i := 0; i < n; i++ {
		if i%50 == 0 {
			t = t.Add(time.Second)
		}
		buf = AppendFile(buf[:0], t, g.Next())
		if _, err := bw.Write(buf); err != nil {
			return Counts{}, fmt.Errorf("gen: write log: %w", err)
		}
	}
	for _, l := range g.Flush() {
		buf = AppendFile(buf[:0], t, l)
		if _, err := bw.Write(buf); err != nil {
			return Counts{}, fmt.Errorf("gen: write log: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return Counts{}, fmt.Errorf("gen: write log: %w", err)
	}
	return g.Counts(), nil
}
