package receiver

// Syslog over TLS (RFC 5425). The transport is TCP with TLS on top and the
// same octet-counted framing, so a tls listener is a stream listener whose
// connections first complete a handshake. What is ours here: the server
// config built from files with safe settings, the client-name check for
// mTLS, and the handshake deadline in the connection's goroutine.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// TLSFiles names what TLSConfig reads: the server's certificate and key
// (PEM) and, for mutual TLS, the CA that signs client certificates and the
// client names allowed.
type TLSFiles struct {
	// CertFile and KeyFile are the server's certificate chain and private
	// key, PEM encoded. Both are required.
	CertFile, KeyFile string
	// ClientCAFile, if set, requires every client to present a certificate
	// that verifies against the CAs in this PEM file (mutual TLS).
	ClientCAFile string
	// ClientNames, if set (it needs ClientCAFile), allows only clients
	// whose verified certificate carries one of these names as a DNS SAN
	// or, when it has no DNS SAN, as its subject CN. Case-insensitive; an
	// entry "*.example.org" allows any one label in its place.
	ClientNames []string
}

// TLSConfig builds the server configuration of tls listeners from files:
// TLS 1.2 or later, the server certificate, and, with ClientCAFile, client
// certificates required and verified (and checked against ClientNames).
// Errors name the file at fault.
func TLSConfig(f TLSFiles) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("receiver: tls: a certificate and a key file are required")
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("receiver: tls: load certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if f.ClientCAFile == "" {
		if len(f.ClientNames) > 0 {
			return nil, errors.New("receiver: tls: client names need a client CA file to verify certificates against")
		}
		return cfg, nil
	}
	pem, err := os.ReadFile(f.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("receiver: tls: read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("receiver: tls: client CA %s: no PEM certificate in it", f.ClientCAFile)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if len(f.ClientNames) > 0 {
		names := make([]string, len(f.ClientNames))
		for i, n := range f.ClientNames {
			n = strings.ToLower(strings.TrimSpace(n))
			if n == "" || n == "*." || strings.Contains(strings.TrimPrefix(n, "*."), "*") {
				return nil, fmt.Errorf("receiver: tls: client name %q: want a host name or *.domain", f.ClientNames[i])
			}
			names[i] = n
		}
		// VerifyConnection runs after chain verification, inside the
		// handshake, so a refused client gets a bad_certificate alert
		// (its admin sees why) and never sends a message.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errClientRefused
			}
			if clientNameAllowed(cs.PeerCertificates[0], names) {
				return nil
			}
			return fmt.Errorf("%w: certificate names %s", errClientRefused, certNames(cs.PeerCertificates[0]))
		}
	}
	return cfg, nil
}

// errClientRefused marks a handshake that failed on the client-name check,
// so it is counted as tls_client_refused, not as a plain handshake failure.
var errClientRefused = errors.New("client certificate name not allowed")

// certNames are the names a client certificate is known by: its DNS SANs,
// or its CN when it has none (as older syslog PKIs issue them).
func certNames(c *x509.Certificate) []string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames
	}
	if c.Subject.CommonName != "" {
		return []string{c.Subject.CommonName}
	}
	return nil
}

func clientNameAllowed(c *x509.Certificate, allowed []string) bool {
	for _, have := range certNames(c) {
		have = strings.ToLower(have)
		for _, want := range allowed {
			if have == want {
				return true
			}
			if suffix, ok := strings.CutPrefix(want, "*"); ok {
				// "*.example.org" matches "a.example.org", not
				// "a.b.example.org" nor "example.org".
				if label, ok := strings.CutSuffix(have, suffix); ok && label != "" && !strings.Contains(label, ".") {
					return true
				}
			}
		}
	}
	return false
}

// serverTLS is the config a tls listener uses: the caller's, cloned so
// later changes to it do not race with handshakes, with TLS 1.2 as floor.
func serverTLS(cfg *tls.Config) (*tls.Config, error) {
	if cfg == nil {
		return nil, errors.New("tls listener without a TLS configuration (Options.TLS)")
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return nil, errors.New("TLS configuration has no server certificate")
	}
	cfg = cfg.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	return cfg, nil
}

// handshake runs the server handshake on conn within HandshakeTimeout. It
// runs in the connection's goroutine: a client that connects and says
// nothing holds its own slot until the deadline and nothing else.
func (l *streamListener) handshake(conn net.Conn, sender netip.AddrPort, log *slog.Logger) (*tls.Conn, bool) {
	tc := tls.Server(conn, l.tlsCfg)
	deadline := time.Now().Add(l.r.opts.HandshakeTimeout)
	// The context covers the handshake's own steps; the connection
	// deadline also bounds the alert written back to a silent peer.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, false
	}
	err := tc.HandshakeContext(ctx)
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err == nil {
		return tc, true
	}
	if isClosedErr(err) {
		return nil, false // shutting down
	}
	id := reasonTLSHandshake
	if errors.Is(err, errClientRefused) {
		id = reasonTLSClientRefused
	}
	l.r.dropLogged(&l.c, id, l.name, sender,
		"receiver: TLS handshake failed; connection closed (further ones counted, logged every 10s)", "err", err)
	log.Debug("receiver: TLS handshake failed", "sender", sender, "err", err)
	return nil, false
}
