package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSSyslogWithClientCertificates runs the daemon with an RFC 5425 TLS
// listener requiring client certificates from one CA and one name: a
// forwarder with the right certificate gets its attacker banned; one with a
// certificate of the wrong name, or none, delivers nothing.
func TestTLSSyslogWithClientCertificates(t *testing.T) {
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	w, caCert, caKey := tlsWorld(t, t.TempDir(), "127.0.0.1")

	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	// send writes lines over a TLS connection with the client certificate
	// client; refused says whether the server must then close it.
	send := func(client *tls.Certificate, lines []string, refused bool) error {
		return inNS(w.srv, func() error {
			cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
			if client != nil {
				cfg.Certificates = []tls.Certificate{*client}
			}
			d := &net.Dialer{Timeout: eventually}
			c, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:6514", cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(eventually))
			var b strings.Builder
			for _, l := range lines {
				msg := fmt.Sprintf("<38>1 %s mx1.example.org sshd 77 - - %s", time.Now().UTC().Format(time.RFC3339), l)
				fmt.Fprintf(&b, "%d %s", len(msg), msg) // RFC 5425 octet counting
			}
			if _, err := c.Write([]byte(b.String())); err != nil {
				return err
			}
			// A refused client certificate surfaces on the first read
			// (TLS 1.3 finishes the client's side of the handshake first).
			// The server never writes to an accepted forwarder, so that
			// read only ends when the connection does: wait for a
			// refusal as for an event; an accepted connection is shown
			// open a moment later, and by the ban its lines bring.
			if refused {
				c.SetReadDeadline(time.Now().Add(eventually))
			} else {
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			}
			_, err = c.Read(make([]byte, 1))
			switch {
			case timedOut(err) && refused:
				return fmt.Errorf("the server kept the connection open for %v", eventually)
			case timedOut(err):
				return nil // still open: accepted
			case refused && err != nil:
				return nil
			}
			return fmt.Errorf("read after the lines: %v", err)
		})
	}
	good := clientCert(t, caCert, caKey, "mx1.example.org")
	wrong := clientCert(t, caCert, caKey, "evil.example.org")

	intruderTarget, attacker := outsideV4[1], outsideV4[0]
	if err := send(&wrong, failures(intruderTarget, 3), true); err != nil {
		t.Errorf("client certificate with a wrong name: %v, want it refused", err)
	}
	if err := send(nil, failures(intruderTarget, 3), true); err != nil {
		t.Errorf("client without a certificate: %v, want it refused", err)
	}
	if err := send(&good, failures(attacker, 3), false); err != nil {
		t.Fatalf("forwarder with a good certificate: %v", err)
	}
	w.waitBanned("sshd_v4", attacker)
	if w.isBanned("sshd_v4", intruderTarget) {
		t.Errorf("%s banned through a TLS client the config does not allow", intruderTarget)
	}
	var out string
	w.waitFor("status to count the refused TLS clients", eventually, func() bool {
		out, _ = w.cli("status", "--json")
		out = strings.Join(strings.Fields(out), "")
		return strings.Contains(out, `"tls_client_refused":1`) && strings.Contains(out, `"tls_handshake":1`)
	})
}

// tlsWorld writes a CA (ca.pem) and a server certificate for serverName
// (server.pem, server.key) into dir and starts a world with a TLS listener
// on 127.0.0.1:6514 that uses them and accepts only client certificates of
// that CA named mx1.example.org.
func tlsWorld(t *testing.T, dir, serverName string) (*world, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	caCert, caKey := makeCert(t, nil, nil, "sysban test CA", true)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caCert.Raw)
	srvCert, srvKey := makeCert(t, caCert, caKey, serverName, false)
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", srvCert.Raw)
	writeKey(t, filepath.Join(dir, "server.key"), srvKey)
	w := newWorld(t, worldOptions{extra: fmt.Sprintf(`  tls: ["127.0.0.1:6514"]
  tlscert: %s
  tlskey: %s
  tlsclientca: %s
  tlsclientnames: [mx1.example.org]
`, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem"))})
	return w, caCert, caKey
}

func makeCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.ExtKeyUsage = nil
	} else if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func clientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string) tls.Certificate {
	cert, key := makeCert(t, ca, caKey, name, false)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}
