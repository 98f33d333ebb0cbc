package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/sysban/sysban"
)

// newNKey is a fresh user nkey.
func newNKey(t testing.TB) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return kp, pub
}

// keyedServer starts an embedded server whose collector and hosta log in
// with nkeys and hostb with a password; tune may add TLS.
func keyedServer(t *testing.T, tune func(*Config)) (cc *Config, srv *Server, hostaKey nkeys.KeyPair) {
	t.Helper()
	collectorKey, collectorPub := newNKey(t)
	hostaKey, hostaPub := newNKey(t)
	cc = &Config{Name: "collector", Decide: true, Enforce: true, NKeySeed: "(in memory)", nkey: collectorKey,
		Embedded: &Embedded{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(),
			Nodes: map[string]string{"collector": collectorPub, "hosta": hostaPub, "hostb": testPassword}}}
	if tune != nil {
		tune(cc)
	}
	if err := cc.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := StartServer(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return cc, srv, hostaKey
}

// nkeyJS is a raw JetStream client logged in with kp (as pub).
func nkeyJS(t *testing.T, url, pub string, kp nkeys.KeyPair) (jetstream.JetStream, error) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Nkey(pub, kp.Sign), nats.MaxReconnects(0))
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	return jetstream.New(nc)
}

func TestNKeys(t *testing.T) {
	cc, srv, hostaKey := keyedServer(t, nil)
	collector := startNode(t, cc, srv)
	ac := &Config{Name: "hosta", Decide: true, Enforce: true, NKeySeed: "(in memory)", nkey: hostaKey, Servers: []string{srv.ClientURL()}}
	a := startNode(t, ac, nil)
	hostaPub := cc.Embedded.Nodes["hosta"]
	bc := nodeConfig("hostb", srv.ClientURL())
	bc.TrustKeys = map[string]string{"hosta": hostaPub}
	b := startNode(t, bc, nil)

	// hosta decides with its nkey and signs; hostb (password) checks the
	// signature and applies; the collector knows hosta's key from its
	// nodes and checks too.
	if err := a.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{ban("sshd", "203.0.113.21", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb and the collector apply hosta's signed ban", func() bool {
		return b.local.has("sshd", "203.0.113.21") && collector.local.has("sshd", "203.0.113.21")
	})
	// hosta's signed unban (a tombstone alone: the ban is the
	// collector's) lifts the collector's ban on hostb.
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{ban("sshd", "203.0.113.22", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb applies the collector's ban", func() bool { return b.local.has("sshd", "203.0.113.22") })
	a.Unban(mustPrefix("203.0.113.22"))
	eventually(t, "hosta's signed unban honoured", func() bool { return !b.local.has("sshd", "203.0.113.22") })
	if got := counterValue(t, b.stats.refused.WithLabelValues(RefusedSignature)); got != 0 {
		t.Errorf("a good signature was refused %v times", got)
	}

	// A wrong seed for hosta's key, and a key the server does not list,
	// are refused at login.
	wrong, wrongPub := newNKey(t)
	if _, err := nkeyJS(t, srv.ClientURL(), hostaPub, wrong); err == nil {
		t.Error("hosta's public key with another seed logged in")
	}
	if _, err := nkeyJS(t, srv.ClientURL(), wrongPub, wrong); err == nil {
		t.Error("an unlisted nkey logged in")
	}

	// hosta's nkey publishes under its own name only.
	ajs, err := nkeyJS(t, srv.ClientURL(), hostaPub, hostaKey)
	if err != nil {
		t.Fatal(err)
	}
	// Allowed: 30 s. Refused (never acked): a short wait, after the
	// allowed publish showed the connection working.
	okCtx, okCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer okCancel()
	if _, err := ajs.Publish(okCtx, "$KV."+DefaultBucket+".hosta.sshd.1-2-3-4_32", []byte("{}")); err != nil {
		t.Fatalf("hosta publishing under its own name: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := ajs.Publish(ctx, "$KV."+DefaultBucket+".collector.sshd.1-2-3-5_32", []byte("{}")); err == nil {
		t.Error("hosta's nkey published under collector's name")
	}
}

// hosta's entries as a compromised server (or a rogue client with hosta's
// rights but not its seed) could write them: the enforcers refuse every
// one that is not signed by hosta's key.
func TestSignaturesRefused(t *testing.T) {
	cc, srv, hostaKey := keyedServer(t, nil)
	collector := startNode(t, cc, srv)
	hostaPub := cc.Embedded.Nodes["hosta"]
	bc := nodeConfig("hostb", srv.ClientURL())
	bc.TrustKeys = map[string]string{"hosta": hostaPub}
	b := startNode(t, bc, nil)
	eventually(t, "hostb connected", func() bool { return b.connected.Load() })

	ajs, err := nkeyJS(t, srv.ClientURL(), hostaPub, hostaKey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSigner(hostaKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	put := func(addr string, v Value) {
		t.Helper()
		k := Key{Node: "hosta", Jail: "sshd", Prefix: AddrKey(netip.MustParseAddr(addr))}
		data, _ := json.Marshal(v)
		if _, err := ajs.Publish(context.Background(), "$KV."+DefaultBucket+"."+k.String(), data); err != nil {
			t.Fatal(err)
		}
	}
	signed := func(addr string, v Value) Value {
		k := Key{Node: "hosta", Jail: "sshd", Prefix: AddrKey(netip.MustParseAddr(addr))}
		sv, err := s.sign(k.String(), v)
		if err != nil {
			t.Fatal(err)
		}
		return sv
	}
	val := Value{Start: now, Expiry: now.Add(time.Hour), Node: "hosta", Scope: ScopeFleet, Failures: 5}

	put("203.0.113.31", val) // unsigned
	tampered := signed("203.0.113.32", val)
	tampered.Expiry = time.Time{} // made permanent on the way
	put("203.0.113.32", tampered)
	moved := signed("203.0.113.33", val) // a good signature, for another address
	put("203.0.113.34", moved)
	put("203.0.113.35", signed("203.0.113.35", val))

	eventually(t, "the good one applied", func() bool { return b.local.has("sshd", "203.0.113.35") && collector.local.has("sshd", "203.0.113.35") })
	for _, addr := range []string{"203.0.113.31", "203.0.113.32", "203.0.113.34"} {
		if b.local.has("sshd", addr) || collector.local.has("sshd", addr) {
			t.Errorf("%s: applied without hosta's signature over it", addr)
		}
	}
	refused := func(n testNode) float64 { return counterValue(t, n.stats.refused.WithLabelValues(RefusedSignature)) }
	if refused(b) != 3 || refused(collector) != 3 {
		t.Errorf("refused for signature: hostb %v, collector %v; want 3 each", refused(b), refused(collector))
	}

	// An unsigned unban in hosta's name lifts nothing.
	tomb := Key{Node: "hosta", Jail: unbanJail, Prefix: AddrKey(netip.MustParseAddr("203.0.113.35"))}
	data, _ := json.Marshal(Value{Start: time.Now(), Node: "hosta", Scope: ScopeFleet})
	if _, err := ajs.Publish(context.Background(), "$KV."+DefaultBucket+"."+tomb.String(), data); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the forged unban refused", func() bool { return refused(b) == 4 })
	if !b.local.has("sshd", "203.0.113.35") {
		t.Error("an unsigned unban lifted a ban")
	}
}

func TestSignCheck(t *testing.T) {
	kp, pub := newNKey(t)
	s, err := newSigner(kp)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := newTrustKeys(map[string]string{"hosta": pub})
	if err != nil {
		t.Fatal(err)
	}
	const key = "hosta.sshd.203-0-113-7_32"
	now := time.Date(2026, 6, 1, 12, 0, 0, 123456789, time.FixedZone("CEST", 7200))
	v := Value{Start: now, Expiry: now.Add(time.Hour), Node: "hosta", Origin: "web1", Scope: ScopeFleet, Filter: "sshd", Failures: 5,
		Lines: []string{"Failed password for \xff\xfe root", "<script>&"}}
	good, err := s.sign(key, v)
	if err != nil {
		t.Fatal(err)
	}
	// What an enforcer checks is what it decoded from the bucket.
	decoded := func(v Value) Value {
		data, _ := json.Marshal(v)
		var out Value
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	mut := func(f func(*Value)) Value { v := good; v.Lines = append([]string(nil), good.Lines...); f(&v); return v }
	for _, tc := range []struct {
		name string
		key  string
		v    Value
		want error
	}{
		{"good", key, good, nil},
		{"unsigned", key, mut(func(v *Value) { v.Sig = "" }), errUnsigned},
		{"expiry changed", key, mut(func(v *Value) { v.Expiry = v.Expiry.Add(time.Hour) }), errBadSig},
		{"made permanent", key, mut(func(v *Value) { v.Expiry = time.Time{} }), errBadSig},
		{"scope changed", key, mut(func(v *Value) { v.Scope = ScopeOrigin }), errBadSig},
		{"line changed", key, mut(func(v *Value) { v.Lines[1] = "x" }), errBadSig},
		{"other address", "hosta.sshd.203-0-113-8_32", good, errBadSig},
		{"other jail", "hosta.postfix.203-0-113-7_32", good, errBadSig},
		{"not base64", key, mut(func(v *Value) { v.Sig = "!!" }), errBadSig},
		{"short", key, mut(func(v *Value) { v.Sig = v.Sig[:20] }), errBadSig},
		{"unknown node, unsigned", "hostb.sshd.203-0-113-7_32", mut(func(v *Value) { v.Node = "hostb"; v.Sig = "" }), nil},
	} {
		if got := trust.check(tc.key, decoded(tc.v)); got != tc.want {
			t.Errorf("%s: check = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Another node's key does not verify hosta's value.
	_, other := newNKey(t)
	wrong, _ := newTrustKeys(map[string]string{"hosta": other})
	if err := wrong.check(key, decoded(good)); err != errBadSig {
		t.Errorf("another key: check = %v", err)
	}
}

// FuzzSignedEntry: whatever a (possibly compromised) server hands an
// enforcer, decoding and checking never panic, and nothing unsigned or
// altered from hosta passes; whatever hosta signs, the enforcer accepts.
func FuzzSignedEntry(f *testing.F) {
	kp, pub := newNKey(f)
	s, _ := newSigner(kp)
	trust, _ := newTrustKeys(map[string]string{"hosta": pub})
	f.Add("hosta.sshd.203-0-113-7_32", []byte(`{"start":"2026-01-01T00:00:00Z","node":"hosta","scope":"fleet","sig":"AAAA"}`), "web1", "line \xff")
	f.Add("hosta._unban.203-0-113-7_32", []byte(`{"start":"2026-01-01T00:00:00Z","node":"hosta","scope":"fleet"}`), "", "")
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, key string, data []byte, origin, line string) {
		if e, err := decodeEntry(key, data, now); err == nil {
			if trust.check(key, e.Value) == nil && e.Key.Node == "hosta" {
				t.Fatalf("accepted %q %q from hosta without its signature", key, data)
			}
		}
		k := "hosta.sshd.203-0-113-7_32"
		v := Value{Start: now.Add(-time.Minute), Node: "hosta", Origin: origin, Scope: ScopeFleet, Lines: []string{line}}
		sv, err := s.sign(k, v)
		if err != nil {
			return
		}
		enc, _ := json.Marshal(sv)
		e, err := decodeEntry(k, enc, now)
		if err != nil {
			return // an origin the decoder refuses is not the signature's business
		}
		if err := trust.check(k, e.Value); err != nil {
			t.Fatalf("hosta's own signed value %s refused: %v", enc, err)
		}
	})
}

// writeTestSeed writes a new seed to dir/name with WriteSeed.
func writeTestSeed(t *testing.T, dir, name string) (path, pub string) {
	t.Helper()
	path = filepath.Join(dir, name)
	pub, err := WriteSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, pub
}

func TestReadSeed(t *testing.T) {
	dir := t.TempDir()
	good, pub := writeTestSeed(t, dir, "node.seed")
	if st, _ := os.Stat(good); st.Mode().Perm() != 0o600 {
		t.Errorf("seed file mode %v, want 0600", st.Mode().Perm())
	}
	kp, err := readSeed(good)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := kp.PublicKey(); got != pub || !isPublicKey(pub) {
		t.Errorf("read back %s, wrote %s", got, pub)
	}
	if _, err := WriteSeed(good); err == nil {
		t.Error("WriteSeed overwrote an existing file")
	}
	account, _ := nkeys.CreateAccount()
	accountSeed, _ := account.Seed()
	userSeed, _ := os.ReadFile(good)
	for name, tc := range map[string]struct {
		data []byte
		mode os.FileMode
		want string
	}{
		"group-readable": {userSeed, 0o640, "chmod 600"},
		"world-readable": {userSeed, 0o604, "chmod 600"},
		"garbage":        {[]byte("hello\n"), 0o600, "not an nkey seed"},
		"account seed":   {accountSeed, 0o600, "not a user nkey seed"},
		"huge":           {make([]byte, 5000), 0o600, "larger than a seed file"},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, tc.data, tc.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, tc.mode)
		if _, err := readSeed(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in a temporary directory.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCA                                          string // a CA that signed nothing here
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serial := int64(1)
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		return cert, key, der
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte { b, _ := x509.MarshalECPrivateKey(k); return b }
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	ca, caKey, caDER := issue(caTmpl("fleet test CA"), nil, nil)
	_, _, otherDER := issue(caTmpl("other CA"), nil, nil)
	_, sKey, sDER := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "collector"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature,
		// Server and client: a cluster route is both.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, ca, caKey)
	_, cKey, cDER := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "hostb"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	return testPKI{
		ca: write("ca.pem", "CERTIFICATE", caDER), otherCA: write("other.pem", "CERTIFICATE", otherDER),
		serverCert: write("server.pem", "CERTIFICATE", sDER), serverKey: write("server.key", "EC PRIVATE KEY", keyDER(sKey)),
		clientCert: write("client.pem", "CERTIFICATE", cDER), clientKey: write("client.key", "EC PRIVATE KEY", keyDER(cKey)),
	}
}

func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	cc, srv, _ := keyedServer(t, func(c *Config) {
		c.Embedded.TLS = &TLSFiles{Cert: pki.serverCert, Key: pki.serverKey, CA: pki.ca}
		var err error
		if c.Embedded.serverTLS, err = loadServerTLS(*c.Embedded.TLS); err != nil {
			t.Fatal(err)
		}
	})
	collector := startNode(t, cc, srv) // in-process: no TLS needed
	url := strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)

	bc := nodeConfig("hostb", url)
	bc.TLS = &TLSFiles{CA: pki.ca, Cert: pki.clientCert, Key: pki.clientKey}
	if err := bc.Load(); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, bc, nil)
	if err := collector.Publisher(nopApplier{}).Apply(context.Background(), []sysban.Ban{ban("sshd", "203.0.113.41", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb applies the ban over TLS", func() bool { return b.local.has("sshd", "203.0.113.41") })

	noCA, _ := loadClientTLS(TLSFiles{Cert: pki.clientCert, Key: pki.clientKey})
	wrongCA, _ := loadClientTLS(TLSFiles{CA: pki.otherCA, Cert: pki.clientCert, Key: pki.clientKey})
	noCert, _ := loadClientTLS(TLSFiles{CA: pki.ca})
	for name, opt := range map[string]nats.Option{
		"no CA (system roots)":         nats.Secure(noCA),
		"another CA":                   nats.Secure(wrongCA),
		"no client certificate":        nats.Secure(noCert),
		"nats:// without TLS settings": func(*nats.Options) error { return nil },
	} {
		u := url
		if strings.HasPrefix(name, "nats://") {
			u = srv.ClientURL()
		}
		nc, err := nats.Connect(u, opt, nats.UserInfo("hostb", testPassword), nats.MaxReconnects(0), nats.Timeout(2*time.Second))
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestValidateTrust(t *testing.T) {
	_, pub := newNKey(t)
	_, otherPub := newNKey(t)
	tlsFiles := &TLSFiles{Cert: "/c.pem", Key: "/k.pem"}
	for _, tc := range []struct {
		name string
		c    Config
		want string // "" = valid
	}{
		{"loopback plaintext", Config{Servers: []string{"nats://127.0.0.1:4222", "nats://localhost:4222", "nats://[::1]:4222"}}, ""},
		{"remote plaintext", Config{Servers: []string{"nats://10.0.0.1:4222"}}, "fleet.allowplaintext: true"},
		{"remote plaintext allowed", Config{Servers: []string{"nats://10.0.0.1:4222"}, AllowPlaintext: true}, ""},
		{"remote tls://", Config{Servers: []string{"tls://10.0.0.1:4222"}}, ""},
		{"remote nats:// with fleet.tls", Config{Servers: []string{"nats://nats.example.org:4222"}, TLS: &TLSFiles{CA: "/ca.pem"}}, ""},
		{"client cert without key", Config{Servers: []string{"tls://h:1"}, TLS: &TLSFiles{Cert: "/c.pem"}}, "fleet.tls"},
		{"nkey and password", Config{Servers: []string{"tls://h:1"}, NKeySeed: "/seed", Password: "x"}, "not both"},
		{"bad trust key", Config{Servers: []string{"tls://h:1"}, TrustKeys: map[string]string{"hosta": "SUAxyz"}}, "fleet.trustkeys.hosta"},
		{"embedded remote plaintext", Config{Embedded: &Embedded{Listen: "10.0.0.1:4222"}}, "embedded.tls"},
		{"embedded wildcard plaintext", Config{Embedded: &Embedded{Listen: ":4222"}}, "embedded.tls"},
		{"embedded remote TLS", Config{Embedded: &Embedded{Listen: "10.0.0.1:4222", TLS: tlsFiles}}, ""},
		{"embedded TLS without key", Config{Embedded: &Embedded{Listen: "10.0.0.1:4222", TLS: &TLSFiles{Cert: "/c.pem"}}}, "both required"},
		{"embedded nkeys", Config{NKeySeed: "/seed", Embedded: &Embedded{Listen: "127.0.0.1:4222", Nodes: map[string]string{"a": pub, "b": otherPub}}}, ""},
		{"own key, password listed", Config{NKeySeed: "/seed", Embedded: &Embedded{Listen: "127.0.0.1:4222", Nodes: map[string]string{"a": testPassword}}}, "a password"},
		{"key listed, none here", Config{Password: testPassword, Embedded: &Embedded{Listen: "127.0.0.1:4222", Nodes: map[string]string{"a": pub}}}, "set fleet.nkeyseed"},
		{"trustkeys disagree with nodes", Config{NKeySeed: "/seed", TrustKeys: map[string]string{"a": otherPub}, Embedded: &Embedded{Listen: "127.0.0.1:4222", Nodes: map[string]string{"a": pub}}}, "differs"},
		{"plaintext routes", Config{Embedded: &Embedded{Listen: "127.0.0.1:4222", ClusterName: "c", ClusterListen: "10.0.0.1:6222", Routes: []string{"nats://10.0.0.2:6222"}}}, "routes"},
		{"TLS routes", Config{Embedded: &Embedded{Listen: "127.0.0.1:4222", ClusterName: "c", ClusterListen: "10.0.0.1:6222", Routes: []string{"nats://10.0.0.2:6222"},
			ClusterTLS: &TLSFiles{Cert: "/c.pem", Key: "/k.pem", CA: "/ca.pem"}}}, ""},
		{"route TLS without CA", Config{Embedded: &Embedded{Listen: "127.0.0.1:4222", ClusterName: "c", ClusterListen: "127.0.0.1:6222", Routes: []string{"nats://127.0.0.2:6222"},
			ClusterTLS: &TLSFiles{Cert: "/c.pem", Key: "/k.pem"}}}, "ca are all required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Name, c.Decide = "a", true
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Errorf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// Load reads the seed and TLS files; a node whose files were not read
// refuses to start rather than log in without them.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	seed, pub := writeTestSeed(t, dir, "a.seed")
	_, otherPub := newNKey(t)
	pki := newTestPKI(t)
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"seed matches nodes", Config{NKeySeed: seed, Embedded: &Embedded{Nodes: map[string]string{"a": pub}}}, ""},
		{"seed is not the listed key", Config{NKeySeed: seed, Embedded: &Embedded{Nodes: map[string]string{"a": otherPub}}}, "fleet.nkeyseed: its public key"},
		{"no seed file", Config{NKeySeed: filepath.Join(dir, "none")}, "fleet.nkeyseed: open"},
		{"client TLS", Config{TLS: &TLSFiles{CA: pki.ca, Cert: pki.clientCert, Key: pki.clientKey}}, ""},
		{"CA not PEM", Config{TLS: &TLSFiles{CA: seed}}, "fleet.tls: " + seed + ": no PEM certificate"},
		{"client key of another cert", Config{TLS: &TLSFiles{Cert: pki.clientCert, Key: pki.serverKey}}, "fleet.tls"},
		{"server TLS", Config{Embedded: &Embedded{TLS: &TLSFiles{Cert: pki.serverCert, Key: pki.serverKey, CA: pki.ca}}}, ""},
		{"server cert missing", Config{Embedded: &Embedded{TLS: &TLSFiles{Cert: filepath.Join(dir, "none"), Key: pki.serverKey}}}, "fleet.embedded.tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Name = "a"
			err := c.Load()
			if tc.want == "" && err != nil {
				t.Errorf("Load: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Load = %v, want %q", err, tc.want)
			}
			if tc.want == "" && c.loaded() != nil {
				t.Errorf("loaded after a good Load: %v", c.loaded())
			}
		})
	}
	c := Config{Name: "a", Decide: true, NKeySeed: seed, Servers: []string{"nats://127.0.0.1:1"}}
	if _, err := New(context.Background(), Options{Config: &c, OutboxPath: filepath.Join(dir, OutboxFile)}); err == nil || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("New without Load = %v, want a refusal", err)
	}
}

// BenchmarkSignedEntry is what a signature costs: signing on the decider,
// decoding and checking one entry on an enforcer (each resync reads every
// entry). Compare BenchmarkUnsignedEntry.
func BenchmarkSignedEntry(b *testing.B) {
	kp, pub := newNKey(b)
	s, _ := newSigner(kp)
	trust, _ := newTrustKeys(map[string]string{"hosta": pub})
	now := time.Now()
	k := Key{Node: "hosta", Jail: "sshd", Prefix: AddrKey(netip.MustParseAddr("203.0.113.7"))}.String()
	v := Value{Start: now, Expiry: now.Add(time.Hour), Node: "hosta", Origin: "web1", Scope: ScopeFleet, Filter: "sshd", Failures: 5,
		Lines: []string{"Failed password for root from 203.0.113.7 port 52113 ssh2"}}
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.sign(k, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	sv, _ := s.sign(k, v)
	data, _ := json.Marshal(sv)
	b.Run("decode+check", func(b *testing.B) {
		for b.Loop() {
			e, err := decodeEntry(k, data, now)
			if err != nil || trust.check(k, e.Value) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("decode+check already checked", func(b *testing.B) {
		c := newCheckedSet()
		c.add(c.sum(k, data), func() int { return 1 })
		for b.Loop() {
			if _, err := decodeEntry(k, data, now); err != nil || !c.has(c.sum(k, data)) {
				b.Fatal("not remembered")
			}
		}
	})
	b.Run("decode only (unsigned)", func(b *testing.B) {
		plain, _ := json.Marshal(v)
		for b.Loop() {
			if _, err := decodeEntry(k, plain, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The set of checked entries skips the verification of bytes already
// checked under the same key, never of other bytes or another key.
func TestCheckedSet(t *testing.T) {
	kp, pub := newNKey(t)
	s, _ := newSigner(kp)
	trust, _ := newTrustKeys(map[string]string{"hosta": pub})
	n := &Node{trust: trust, checked: newCheckedSet(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), known: newKnown()}
	var err error
	if n.stats, err = newStats(nil, n); err != nil {
		t.Fatal(err)
	}
	const key = "hosta.sshd.203-0-113-7_32"
	now := time.Now()
	v, _ := s.sign(key, Value{Start: now, Expiry: now.Add(time.Hour), Node: "hosta", Scope: ScopeFleet})
	good, _ := json.Marshal(v)
	v.Expiry = v.Expiry.Add(time.Hour)
	tampered, _ := json.Marshal(v)
	refused := func(key string, data []byte) bool {
		e, err := decodeEntry(key, data, now)
		if err != nil {
			t.Fatal(err)
		}
		return n.signatureRefused(key, data, e.Value)
	}
	for range 2 {
		if refused(key, good) {
			t.Fatal("good entry refused")
		}
	}
	if !n.checked.has(n.checked.sum(key, good)) || len(n.checked.sums) != 1 {
		t.Errorf("good entry not remembered once: %d sums", len(n.checked.sums))
	}
	if !refused(key, tampered) || !refused("hosta.sshd.203-0-113-8_32", good) {
		t.Error("an entry passed on another's check")
	}

	// Growth while the bucket's size is unknown, a fresh start once the
	// set is more than twice the bucket.
	c := newCheckedSet()
	for i := range 10000 {
		c.add(uint64(i), func() int { return 0 })
	}
	if len(c.sums) != 10000 {
		t.Errorf("first snapshot: %d sums kept, want 10000", len(c.sums))
	}
	for i := 10000; len(c.sums) >= 100; i++ {
		c.add(uint64(i), func() int { return 100 })
		if i > 100000 {
			t.Fatal("never started afresh")
		}
	}
	if c.limit != 4096 {
		t.Errorf("limit after a fresh start %d, want 4096", c.limit)
	}
}

// Two embedded servers route to each other over TLS, each verifying the
// other against the fleet's CA; a server that trusts another CA gets no
// route from them.
func TestClusterRouteTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a JetStream cluster (a few seconds)")
	}
	pki := newTestPKI(t)
	start := func(names []string, cas []string) []*Server {
		clients, routes := make([]string, len(names)), make([]string, len(names))
		for i := range names {
			clients[i], routes[i] = freePort(t), freePort(t)
		}
		srvs := make([]*Server, len(names))
		started := make(chan error, len(names))
		for i, n := range names {
			rs := routesExcept(routes, i, "tls://")
			c := &Config{Name: n, Decide: true, Password: testPassword, Embedded: &Embedded{Listen: clients[i], StoreDir: t.TempDir(),
				ClusterName: "sysban", ClusterListen: routes[i], Routes: rs,
				ClusterTLS: &TLSFiles{Cert: pki.serverCert, Key: pki.serverKey, CA: cas[i]}}}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := c.Load(); err != nil {
				t.Fatal(err)
			}
			go func() {
				var err error
				srvs[i], err = StartServer(c)
				started <- err
			}()
		}
		for range names {
			if err := <-started; err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range srvs {
			t.Cleanup(s.Close)
		}
		return srvs
	}
	good := start([]string{"n1", "n2"}, []string{pki.ca, pki.ca})
	eventually(t, "a TLS route between n1 and n2", func() bool { return good[0].srv.NumRoutes() > 0 && good[1].srv.NumRoutes() > 0 })

	bad := start([]string{"n3", "n4"}, []string{pki.ca, pki.otherCA})
	time.Sleep(2 * time.Second) // routes retry every second
	if bad[0].srv.NumRoutes() != 0 || bad[1].srv.NumRoutes() != 0 {
		t.Errorf("a route formed with a server that does not trust the peer's CA")
	}
}
