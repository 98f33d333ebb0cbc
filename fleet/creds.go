package fleet

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// ReadSeed reads a node's nkey seed file (as WriteSeed writes it). The
// file must not be readable by group or others: the seed is the node's
// NATS login and its signing key.
func ReadSeed(path string) (nkeys.KeyPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets group or others read the seed (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > 4096 {
		return nil, fmt.Errorf("%s: larger than a seed file", path)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("%s: not an nkey seed: %w", path, err)
	}
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("%s: not a user nkey seed (want one that starts with SU, as `sysban fleet keygen` writes)", path)
	}
	return kp, nil
}

// WriteSeed makes a new user nkey, writes its seed to path (created with
// mode 0600; an existing file is never overwritten) and returns its public
// key, the one to list in the server's embedded.nodes and the enforcers'
// trustkeys.
func WriteSeed(path string) (public string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	public, err = kp.PublicKey()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", err
	}
	return public, nil
}

// IsPublicKey reports whether s is a user's public nkey ("U..."), as
// opposed to a password, in embedded.nodes.
func IsPublicKey(s string) bool { return nkeys.IsValidPublicUserKey(s) }

// ClientTLS is the TLS configuration a node connects with: the CA that
// signed the servers' certificates (empty: the system's roots) and an
// optional client certificate for servers that require one.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("cert and key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// ServerTLS is the embedded server's TLS configuration: its certificate
// and, with clientCAFile, mutual TLS (every client must show a certificate
// that CA signed, besides its nkey or password).
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("cert and key are both required")
	}
	c, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, CaFile: clientCAFile, Verify: clientCAFile != ""})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// isLoopbackHost: a name or address that never leaves this host.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plaintextURL reports whether connecting to s would send credentials and
// bans in clear to another host: a nats:// URL of a host that is not
// loopback, with no TLS configured.
func plaintextURL(s string, tlsOn bool) bool {
	u, err := url.Parse(s)
	if err != nil || tlsOn || u.Scheme == "tls" {
		return false
	}
	return !isLoopbackHost(u.Hostname())
}
