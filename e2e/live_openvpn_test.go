package e2e

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveOpenVPNServer is the server's config; %[1]s is its directory. TCP, so
// that a ban's dropped packets show as a connection that no longer opens.
const liveOpenVPNServer = `port 1194
proto tcp-server
local 192.0.2.1
dev tun
topology subnet
server 10.8.0.0 255.255.255.0
ca %[1]s/ca.pem
cert %[1]s/server.pem
key %[1]s/server.key
dh none
crl-verify %[1]s/crl.pem
tls-crypt %[1]s/tls-crypt.key
syslog
verb 3
`

// TestLiveOpenVPN drives the distribution's OpenVPN 2.6 server (TCP,
// certificates, CRL, tls-crypt, log to syslog) with the real openvpn client:
// a certificate from another CA, a revoked certificate, a wrong tls-crypt
// key, a good client that connects and hangs up, and two TCP probes (an
// HTTP request, a connection that sends nothing).
func TestLiveOpenVPN(t *testing.T) {
	version := needLive(t, "openvpn", "/usr/sbin/openvpn", "/dev/net/tun")
	l := newLive(t, "openvpn", version, liveConfig(liveJail("openvpn", "openvpn", "1194", "tcp")))
	l.exact, l.port = true, 1194
	dir := l.path("openvpn")
	ca, caKey := makeCert(t, nil, nil, "live CA", true)
	other, otherKey := makeCert(t, nil, nil, "another CA", true)
	os.MkdirAll(dir, 0o700)
	pair := func(name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *x509.Certificate {
		cert, key := makeCert(t, parent, parentKey, name, false)
		writePEM(t, dir+"/"+name+".pem", "CERTIFICATE", cert.Raw)
		writeKey(t, dir+"/"+name+".key", key)
		return cert
	}
	writePEM(t, dir+"/ca.pem", "CERTIFICATE", ca.Raw)
	pair("server", ca, caKey)
	pair("good", ca, caKey)
	pair("stranger", other, otherKey)
	revoked := pair("revoked", ca, caKey)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                time.Now().Add(-time.Hour),
		NextUpdate:                time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revoked.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)}},
	}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir+"/crl.pem", "X509 CRL", crl)
	for _, key := range []string{"tls-crypt", "wrong-tls-crypt"} {
		if out, err := exec.Command("openvpn", "--genkey", "tls-crypt", dir+"/"+key+".key").CombinedOutput(); err != nil {
			t.Fatalf("openvpn --genkey: %v\n%s", err, out)
		}
	}
	cfg := l.write("openvpn/server.conf", fmt.Sprintf(liveOpenVPNServer, dir), 0o600)
	l.spawn("/usr/sbin/openvpn", "--config", cfg)
	l.waitPort("tcp", serverV4, 1194)
	client := func(cert, tlsCrypt string) func(string) error {
		return func(from string) error {
			return l.openvpnClient(from, "--ca", dir+"/ca.pem", "--cert", dir+"/"+cert+".pem", "--key", dir+"/"+cert+".key",
				"--tls-crypt", dir+"/"+tlsCrypt+".key")
		}
	}
	clean := l.succeed(family{"connect", "openvpn", false, client("good", "tls-crypt")})
	l.drive(
		family{"certificate of another CA", "openvpn", false, client("stranger", "tls-crypt")},
		family{"revoked certificate", "openvpn", false, client("revoked", "tls-crypt")},
		family{"wrong tls-crypt key", "openvpn", false, client("good", "wrong-tls-crypt")},
		family{"HTTP request (probe)", "openvpn", false, l.rawProbe(1194, "GET / HTTP/1.0\r\n\r\n")},
		family{"connect and hang up (probe)", "openvpn", false, l.rawProbe(1194, "")},
	)
	l.assertBans(1194, clean, "revoked certificate")
	l.alive()
}

// openvpnClient runs the real openvpn client from the outside address from
// for one connection: it succeeds once the client reports the tunnel up,
// and fails when the client gives up (one try, a 10 s handshake window).
func (l *live) openvpnClient(from string, args ...string) error {
	full := append([]string{"netns", "exec", l.out, "openvpn", "--client", "--dev", "null", "--proto", "tcp-client",
		"--remote", serverV4, "1194", "--local", from, "--lport", "0", "--connect-retry-max", "1", "--hand-window", "10",
		"--ifconfig-noexec", "--route-noexec", "--verb", "3"}, args...)
	cmd := exec.Command("ip", full...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	deadline := time.After(30 * time.Second)
	for {
		if strings.Contains(out.String(), "Initialization Sequence Completed") {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("openvpn client gave up: %s", lastLine(out.String()))
		case <-deadline:
			return fmt.Errorf("openvpn client: no tunnel within 30 s: %s", lastLine(out.String()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
