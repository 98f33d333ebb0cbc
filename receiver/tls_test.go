package receiver

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsFixture is a CA, a server certificate for 127.0.0.1/localhost and
// client certificates: two from the CA, one from a rogue CA.
type tlsFixture struct {
	ca, rogue                *testCA
	server                   issued
	web1, cnOnly, other, bad issued
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{ca: newTestCA(t, "syslog"), rogue: newTestCA(t, "rogue")}
	f.server = f.ca.issue(t, "server", "localhost")
	f.web1 = f.ca.issue(t, "web1", "web1.example.org")
	f.cnOnly = f.ca.issue(t, "mail.example.org")
	f.other = f.ca.issue(t, "other", "other.example.net")
	f.bad = f.rogue.issue(t, "bad", "web1.example.org")
	return f
}

func (f *tlsFixture) serverConfig(t *testing.T, mutual bool, names ...string) *tls.Config {
	t.Helper()
	files := TLSFiles{CertFile: f.server.certFile, KeyFile: f.server.keyFile, ClientNames: names}
	if mutual {
		files.ClientCAFile = f.ca.file()
	}
	cfg, err := TLSConfig(files)
	if err != nil {
		t.Fatalf("TLSConfig: %v", err)
	}
	return cfg
}

// sendTLS connects, sends one octet-counted frame and closes. Whether the
// server took it shows in what it delivered.
func sendTLS(addr net.Addr, cfg *tls.Config, msg string) error {
	d := &net.Dialer{Timeout: 30 * time.Second} // the whole handshake: generous for a loaded machine
	c, err := tls.DialWithDialer(d, "tcp", addr.String(), cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = fmt.Fprintf(c, "%d %s", len(msg), msg)
	return err
}

// refusedTLS reports whether the server refuses a client: the handshake
// fails, or (TLS 1.3 tells the client only after its handshake returned)
// the server answers the first frame with an alert or a close.
func refusedTLS(addr net.Addr, cfg *tls.Config) bool {
	d := &net.Dialer{Timeout: 30 * time.Second} // the whole handshake: generous for a loaded machine
	c, err := tls.DialWithDialer(d, "tcp", addr.String(), cfg)
	if err != nil {
		return true
	}
	defer c.Close()
	fmt.Fprintf(c, "%d %s", len(sshLine), sshLine)
	return closedByServer(c)
}

func TestTLSReceive(t *testing.T) {
	f := newTLSFixture(t)
	rr := start(t, []ListenerSpec{{TLS, "127.0.0.1:0"}}, Options{TLS: f.serverConfig(t, false)})
	addr := rr.r.Addrs()[0]
	if err := sendTLS(addr, &tls.Config{RootCAs: f.ca.pool(), ServerName: "localhost"}, sshLine); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := rr.c.waitN(t, 1)[0]
	if m.AppName != "sshd" || m.Listener != "tls:127.0.0.1:0" || m.Sender.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("message = %+v", m)
	}
	// TLS 1.1 and plain text are refused and counted; the listener goes on.
	old := &tls.Config{RootCAs: f.ca.pool(), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if !refusedTLS(addr, old) {
		t.Error("a TLS 1.1 client was accepted")
	}
	plain := dial(t, "tcp", addr)
	plain.Write([]byte(sshLine + "\n"))
	waitFor(t, "two failed handshakes", func() bool { return rr.stats(0).Dropped[ReasonTLSHandshake] == 2 })
	if err := sendTLS(addr, &tls.Config{RootCAs: f.ca.pool(), ServerName: "localhost"}, "<13>after"); err != nil {
		t.Fatalf("send after refusals: %v", err)
	}
	rr.c.waitN(t, 2)
	if got := len(rr.c.snapshot()); got != 2 {
		t.Errorf("%d messages, want 2: refused clients delivered something", got)
	}
}

func TestTLSMutual(t *testing.T) {
	f := newTLSFixture(t)
	tests := []struct {
		name   string
		names  []string // allowed client names; none means any client of the CA
		client *issued
		want   string // drop reason, or "" for delivered
	}{
		{"any client of the CA", nil, &f.web1, ""},
		{"no client certificate", nil, nil, ReasonTLSHandshake},
		{"certificate from another CA", nil, &f.bad, ReasonTLSHandshake},
		{"allowed DNS SAN", []string{"web1.example.org"}, &f.web1, ""},
		{"allowed by wildcard", []string{"*.EXAMPLE.org"}, &f.web1, ""},
		{"CN when no SAN", []string{"mail.example.org"}, &f.cnOnly, ""},
		{"name not allowed", []string{"web1.example.org"}, &f.other, ReasonTLSClientRefused},
		{"wildcard is one label", []string{"*.org"}, &f.web1, ReasonTLSClientRefused},
		{"rogue CA with an allowed name", []string{"web1.example.org"}, &f.bad, ReasonTLSHandshake},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr := start(t, []ListenerSpec{{TLS, "127.0.0.1:0"}}, Options{TLS: f.serverConfig(t, true, tc.names...)})
			cfg := &tls.Config{RootCAs: f.ca.pool(), ServerName: "localhost"}
			if tc.client != nil {
				cfg.Certificates = []tls.Certificate{tc.client.tls}
			}
			if tc.want == "" {
				if err := sendTLS(rr.r.Addrs()[0], cfg, sshLine); err != nil {
					t.Fatalf("refused: %v", err)
				}
				rr.c.waitN(t, 1)
				return
			}
			if !refusedTLS(rr.r.Addrs()[0], cfg) {
				t.Error("client accepted")
			}
			waitFor(t, tc.want, func() bool { return rr.stats(0).Dropped[tc.want] == 1 })
			if got := rr.c.snapshot(); len(got) != 0 {
				t.Errorf("refused client delivered %+v", got)
			}
		})
	}
}

// A client that connects and never speaks must not hold up anyone else's
// handshake: each handshake runs in its connection's goroutine with its own
// deadline.
func TestTLSSilentClientsDoNotBlockHandshakes(t *testing.T) {
	f := newTLSFixture(t)
	rr := start(t, []ListenerSpec{{TLS, "127.0.0.1:0"}}, Options{
		TLS: f.serverConfig(t, false), HandshakeTimeout: 4 * time.Second, MaxConnectionsPerSource: 100,
	})
	addr := rr.r.Addrs()[0]
	var silent []net.Conn
	for range 20 {
		silent = append(silent, dial(t, "tcp", addr))
	}
	waitFor(t, "silent connections", func() bool { return rr.stats(0).Connections == 20 })
	began := time.Now()
	if err := sendTLS(addr, &tls.Config{RootCAs: f.ca.pool(), ServerName: "localhost"}, sshLine); err != nil {
		t.Fatalf("send: %v", err)
	}
	rr.c.waitN(t, 1)
	// Delivered while every silent client was still waiting on its
	// handshake deadline: nothing made this handshake wait for them.
	if st := rr.stats(0); st.Dropped[ReasonTLSHandshake] != 0 {
		t.Errorf("a handshake took %v and only went through after silent clients timed out", time.Since(began))
	}
	// The silent ones are closed at the handshake deadline.
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
			t.Fatalf("silent client: read = %v, want the server to close it", err)
		}
	}
	waitFor(t, "handshake timeouts counted", func() bool { return rr.stats(0).Dropped[ReasonTLSHandshake] == 20 })
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset by peer") || strings.Contains(err.Error(), "broken pipe"))
}

func TestTLSConfigErrors(t *testing.T) {
	f := newTLSFixture(t)
	garbage := f.ca.write(t, "garbage.pem", []byte("not pem"))
	tests := []struct {
		files TLSFiles
		want  string
	}{
		{TLSFiles{KeyFile: f.server.keyFile}, "certificate and a key file are required"},
		{TLSFiles{CertFile: "/nonexistent.pem", KeyFile: f.server.keyFile}, "/nonexistent.pem"},
		{TLSFiles{CertFile: f.server.certFile, KeyFile: f.web1.keyFile}, "private key does not match"},
		{TLSFiles{CertFile: f.server.certFile, KeyFile: f.server.keyFile, ClientNames: []string{"a"}}, "need a client CA"},
		{TLSFiles{CertFile: f.server.certFile, KeyFile: f.server.keyFile, ClientCAFile: "/nonexistent-ca.pem"}, "read client CA"},
		{TLSFiles{CertFile: f.server.certFile, KeyFile: f.server.keyFile, ClientCAFile: garbage}, "no PEM certificate"},
		{TLSFiles{CertFile: f.server.certFile, KeyFile: f.server.keyFile, ClientCAFile: f.ca.file(), ClientNames: []string{"a.*.org"}}, "want a host name"},
	}
	for _, tc := range tests {
		_, err := TLSConfig(tc.files)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "receiver: tls:") {
			t.Errorf("TLSConfig(%+v) = %v, want an error saying %q", tc.files, err, tc.want)
		}
	}
	if _, err := New([]ListenerSpec{{TLS, "127.0.0.1:0"}}, &collector{}, Options{}); err == nil || !strings.Contains(err.Error(), "Options.TLS") {
		t.Errorf("tls listener without a config: %v", err)
	}
	if _, err := New([]ListenerSpec{{TLS, "127.0.0.1:0"}}, &collector{}, Options{TLS: &tls.Config{}}); err == nil || !strings.Contains(err.Error(), "no server certificate") {
		t.Errorf("tls listener without a certificate: %v", err)
	}
	// The floor is TLS 1.2 whatever the caller's config says.
	cfg, err := serverTLS(&tls.Config{Certificates: []tls.Certificate{f.server.tls}, MinVersion: tls.VersionTLS10})
	if err != nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("serverTLS MinVersion = %x, %v", cfg.MinVersion, err)
	}
}

// A bare host gets RFC 5425's port.
func TestTLSDefaultPort(t *testing.T) {
	f := newTLSFixture(t)
	r, err := New([]ListenerSpec{{TLS, "127.0.0.1"}}, &collector{}, Options{TLS: f.serverConfig(t, false)})
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			t.Skipf("port %d taken here: %v", TLSDefaultPort, err)
		}
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Addrs()[0].String(); got != "127.0.0.1:6514" {
		t.Errorf("bound %s, want 127.0.0.1:6514", got)
	}
}

// openssl s_client, a TLS stack that is not Go's, with a client certificate.
func TestTLSOpenSSLClient(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	f := newTLSFixture(t)
	rr := start(t, []ListenerSpec{{TLS, "127.0.0.1:0"}}, Options{TLS: f.serverConfig(t, true, "web1.example.org")})
	frame := fmt.Sprintf("%d %s", len(sshLine), sshLine)
	cmd := exec.Command(openssl, "s_client", "-quiet", "-connect", rr.r.Addrs()[0].String(),
		"-CAfile", f.ca.file(), "-verify_return_error", "-servername", "localhost",
		"-cert", f.web1.certFile, "-key", f.web1.keyFile)
	cmd.Stdin = strings.NewReader(frame)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "the message over openssl s_client", func() bool { return len(rr.c.snapshot()) == 1 })
	if m := rr.c.snapshot()[0]; m.AppName != "sshd" || !strings.HasPrefix(m.Text, "Failed password") {
		t.Errorf("message = %+v (openssl said %s)", m, out.String())
	}
}

// rsyslog's gtls driver (GnuTLS), as collectors across networks run it:
// x509/name authentication of our server and its client certificate
// checked against the allowed names.
func TestTLSRealRsyslogGTLS(t *testing.T) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed")
	}
	loggerPath, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger(1) not installed")
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
		matches, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
		if len(matches) == 0 {
			t.Skip("rsyslog's gtls driver not installed (apt package rsyslog-gnutls)")
		}
	}
	f := newTLSFixture(t)
	rr := start(t, []ListenerSpec{{TLS, "127.0.0.1:0"}}, Options{Now: time.Now, TLS: f.serverConfig(t, true, "web1.example.org")})
	port := rr.r.Addrs()[0].(*net.TCPAddr).Port
	dir := filepath.Dir(sockPath(t, "x"))
	os.MkdirAll(dir, 0o755)
	in := filepath.Join(dir, "in.sock")
	conf := fmt.Sprintf(`global(workDirectory=%[1]q
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile=%[3]q
       DefaultNetstreamDriverCertFile=%[4]q
       DefaultNetstreamDriverKeyFile=%[5]q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%[2]q)
action(type="omfwd" target="127.0.0.1" port="%[6]d" protocol="tcp"
       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
       StreamDriverPermittedPeers="localhost"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
`, dir, in, f.ca.file(), f.web1.certFile, f.web1.keyFile, port)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "pid"))
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start rsyslogd: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "rsyslogd's input socket", func() bool { _, err := os.Stat(in); return err == nil })
	text := "Failed password for invalid user admin from 203.0.113.99 port 4711 ssh2"
	if out, err := exec.Command(loggerPath, "-u", in, "-p", "auth.notice", "-t", "sshd", "-i", text).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v: %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rr.c.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing relayed over gtls; stats %+v; rsyslogd said:\n%s", rr.r.Stats(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := rr.c.snapshot()[0]
	if m.Text != text || m.AppName != "sshd" || m.Facility != 4 || m.Listener != "tls:127.0.0.1:0" {
		t.Errorf("relayed message %+v", m)
	}
}
