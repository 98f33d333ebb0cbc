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

// readSeed reads a node's nkey seed file (as WriteSeed writes it). The
// file must not be readable by group or others: the seed is the node's
// NATS login and its signing key.
func readSeed(path string) (nkeys.KeyPair, error) {
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

// isPublicKey reports whether s is a user's public nkey ("U..."), as
// opposed to a password, in embedded.nodes.
func isPublicKey(s string) bool { return nkeys.IsValidPublicUserKey(s) }

// TLSFiles name PEM files. On a client (fleet.tls): CA is the CA that
// signed the servers' certificates (empty: the system's roots), Cert and
// Key an optional client certificate. On the embedded server
// (embedded.tls): Cert and Key its certificate, CA the client CA that
// turns on mutual TLS (every client must show a certificate it signed,
// besides its nkey or password).
type TLSFiles struct {
	CA, Cert, Key string
}

func loadClientTLS(f TLSFiles) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", f.CA)
		}
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("cert and key go together")
	}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func loadServerTLS(f TLSFiles) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("cert and key are both required")
	}
	return server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f.Cert, KeyFile: f.Key, CaFile: f.CA, Verify: f.CA != ""})
}

// loadRouteTLS is the clustered servers' route TLS: a route is both client
// and server, so each side verifies the other against the CA (as a
// nats-server cluster tls block does). The certificate must allow both
// server and client authentication.
func loadRouteTLS(f TLSFiles) (*tls.Config, error) {
	if f.CA == "" {
		return nil, errors.New("ca is required: the servers verify each other")
	}
	c, err := loadServerTLS(f)
	if err != nil {
		return nil, err
	}
	c.RootCAs = c.ClientCAs
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
