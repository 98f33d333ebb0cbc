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

// liveOpenVPNServer is the server's config; %[1]s is its directory, %[2]s
// the protocol (tcp-server or udp).
const liveOpenVPNServer = `port 1194
proto %[2]s
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

// TestLiveOpenVPN drives the distribution's OpenVPN 2.6 server over TCP
// (certificates, CRL, tls-crypt, log to syslog) with the real openvpn
// client: a certificate from another CA, a revoked certificate, a wrong
// tls-crypt key, a good client that connects and hangs up, and two TCP
// probes (an HTTP request, a connection that sends nothing). TCP shows a
// ban's dropped packets as a connection that no longer opens.
func TestLiveOpenVPN(t *testing.T) { liveOpenVPN(t, "tcp") }

// TestLiveOpenVPNUDP drives the same server over UDP, its default: the
// client failures, and a good client that no longer gets a tunnel from a
// banned address.
func TestLiveOpenVPNUDP(t *testing.T) { liveOpenVPN(t, "udp") }

func liveOpenVPN(t *testing.T, proto string) {
	version := needLive(t, "openvpn", "/usr/sbin/openvpn", "/dev/net/tun")
	name, serverProto := "openvpn", "tcp-server"
	if proto == "udp" {
		name, serverProto = "openvpn-udp", "udp"
	}
	l := newLive(t, name, version, liveConfig(liveJail("openvpn", "openvpn", "1194", proto)))
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
	cfg := l.write("openvpn/server.conf", fmt.Sprintf(liveOpenVPNServer, dir, serverProto), 0o600)
	l.spawn("/usr/sbin/openvpn", "--config", cfg)
	l.waitFor("the OpenVPN server to start", 30*time.Second, func() bool {
		return strings.Contains(strings.Join(l.captured(), "\n"), "Initialization Sequence Completed")
	})
	client := func(cert, tlsCrypt string) func(string) error {
		return func(from string) error {
			return l.openvpnClient(from, proto, "--ca", dir+"/ca.pem", "--cert", dir+"/"+cert+".pem", "--key", dir+"/"+cert+".key",
				"--tls-crypt", dir+"/"+tlsCrypt+".key")
		}
	}
	clean := l.succeed(family{"connect", "openvpn", false, client("good", "tls-crypt")})
	fams := []family{
		{"certificate of another CA", "openvpn", false, client("stranger", "tls-crypt")},
		{"revoked certificate", "openvpn", false, client("revoked", "tls-crypt")},
		{"wrong tls-crypt key", "openvpn", false, client("good", "wrong-tls-crypt")},
	}
	if proto == "tcp" {
		fams = append(fams,
			family{"HTTP request (probe)", "openvpn", false, l.rawProbe(1194, "GET / HTTP/1.0\r\n\r\n")},
			family{"connect and hang up (probe)", "openvpn", false, l.rawProbe(1194, "")})
		l.drive(fams...)
		l.assertBans(1194, clean, "revoked certificate")
	} else {
		// drive's drop check dials TCP, which says nothing here: the
		// proof is a good client that no longer gets its tunnel.
		l.exact = false
		l.drive(fams...)
		perAttempt := map[string]int{}
		// The wrong tls-crypt key's client resends its first packet
		// until its handshake window closes, and the server prints a
		// line per copy: the filter's resend rule makes it one attempt
		// (each client run sends from a port of its own, --lport 0).
		for _, a := range l.rows[1:] {
			perAttempt[a.from]++
			if a.counted != 1 || a.banned != (perAttempt[a.from] == liveMaxRetry) {
				t.Errorf("%s from %s, attempt %d: counted %d failures (want 1), banned %v", a.family, a.from, perAttempt[a.from], a.counted, a.banned)
			}
		}
		for _, a := range l.rows[1:] {
			if a.banned {
				if err := client("good", "tls-crypt")(a.from); err == nil {
					t.Errorf("%s: %s banned, but a good client still gets its tunnel", a.family, a.from)
				}
			}
		}
		if !l.isBanned("openvpn_v4", l.rows[len(l.rows)-1].from) {
			t.Errorf("the last family's address %s is not banned", l.rows[len(l.rows)-1].from)
		}
		if l.isBanned("openvpn_v4", clean) {
			t.Errorf("the clean client %s is banned", clean)
		}
	}
	l.alive()
}

// openvpnClient runs the real openvpn client from the outside address from
// for one connection: it succeeds once the client reports the tunnel up,
// and fails when the client gives up (one try, a 5 s handshake window:
// over UDP a refused client learns nothing and waits it out).
func (l *live) openvpnClient(from, proto string, args ...string) error {
	if proto == "tcp" {
		proto = "tcp-client"
	}
	full := append([]string{"netns", "exec", l.out, "openvpn", "--client", "--dev", "null", "--proto", proto,
		"--remote", serverV4, "1194", "--local", from, "--lport", "0", "--connect-retry-max", "1", "--hand-window", "5",
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
	defer stopGroup(cmd.Process.Pid, done)
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
