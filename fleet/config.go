package fleet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// DefaultBucket is the bans bucket's name (stream KV_<bucket>).
const DefaultBucket = "sysban_bans"

// Config is the fleet: section. The zero value is not usable; config/
// decodes the section and calls Validate.
type Config struct {
	Name    string // this node's name: its key prefix and NATS user
	Decide  bool   // publish the bans this node's jails decide
	Enforce bool   // apply the fleet's bans to this node's kernel

	// Servers are the NATS URLs to connect to. Empty with Embedded set:
	// connect to the embedded server in-process.
	Servers  []string
	User     string // default: Name
	Password string
	// NKeySeed is this node's nkey seed file (fleet.nkeyseed): its NATS
	// login, preferred over a password, and the key it signs its values
	// with.
	NKeySeed string
	// TLS is the client side towards Servers (fleet.tls); nil: none, and
	// then a nats:// server that is not loopback is refused unless
	// AllowPlaintext: passwords and bans would cross the network in clear.
	TLS            *TLSFiles
	AllowPlaintext bool
	// TrustKeys are fleet nodes' public nkeys: values from these nodes
	// are applied only with a good signature. The embedded server's
	// nodes listed with a key are added.
	TrustKeys map[string]string

	// Read by Load from the files above.
	nkey      nkeys.KeyPair
	clientTLS *tls.Config
	// Embedded runs a NATS server with JetStream inside `sysban run`.
	Embedded *Embedded

	Bucket   string
	Replicas int // stream replicas when this node creates the bucket (1, 3 or 5)

	// Scope maps a jail to its scope; jails not listed are ScopeFleet.
	Scope map[string]Scope
	// Origins maps a syslog hostname or sender address to the node name
	// of the enforcer that host is; unmapped hosts are their own names.
	Origins map[string]string

	// Trust: what this node accepts from the fleet.
	Jails      []string       // jails accepted from the fleet; empty: every enabled jail
	MaxBanTime time.Duration  // longer (and permanent) fleet bans are cut to it; 0: no cap
	RateCap    int            // new bans per minute accepted per deciding node; 0: no cap
	IgnoreIP   []netip.Prefix // never applied from the fleet (besides loopback and own addresses)
	// MaxPrefix4 and MaxPrefix6 are the widest prefixes accepted from the
	// fleet (24 and 48 by default): a compromised node must not ban
	// 0.0.0.0/1. Wider ones are refused.
	MaxPrefix4, MaxPrefix6 int

	Resync    time.Duration // full resync period
	OutboxMax int           // publications kept while NATS is unreachable
}

// The widest prefixes an enforcer accepts from the fleet unless
// fleet.maxprefix4 and fleet.maxprefix6 say otherwise: the escalation
// limits' defaults.
const (
	DefaultMaxPrefix4 = 24
	DefaultMaxPrefix6 = 48
)

// Embedded is the in-process server's configuration.
type Embedded struct {
	Listen    string // host:port for the fleet's nodes
	StoreDir  string // JetStream store; the daemon puts it under the state dir
	MaxMemory int64
	MaxStore  int64
	// Nodes are the fleet's nodes and each one's public nkey ("U...",
	// IsPublicKey) or password. Each may publish only under its own name.
	Nodes map[string]string
	// TLS is the client listener's TLS; with a CA (the client CA) the
	// server requires client certificates that CA signed, too.
	TLS       *TLSFiles
	serverTLS *tls.Config
	// Cluster: three sysbans with embedded servers form one JetStream
	// cluster (R3 bucket). Empty ClusterListen: a single server.
	ClusterName   string
	ClusterListen string
	Routes        []string
	// ClusterTLS secures the routes: each server shows its certificate
	// and requires one from its peer, both signed by CA.
	ClusterTLS *TLSFiles
	routeTLS   *tls.Config
}

// Validate checks c and fills defaults.
func (c *Config) Validate() error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("fleet.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !validNode(c.Name) {
		fail("name", "%q: want 1-64 letters, digits, '-' or '_'", c.Name)
	}
	if !c.Decide && !c.Enforce {
		fail("roles", "neither decide nor enforce: drop the fleet section instead")
	}
	if c.User == "" {
		c.User = c.Name
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if !validNode(c.Bucket) {
		fail("bucket", "%q: want letters, digits, '-' or '_'", c.Bucket)
	}
	switch c.Replicas {
	case 0:
		c.Replicas = 1
	case 1, 3, 5:
	default:
		fail("replicas", "%d: want 1, 3 or 5", c.Replicas)
	}
	if len(c.Servers) == 0 && c.Embedded == nil {
		fail("servers", "no servers and no embedded server: nothing to connect to")
	}
	for _, s := range c.Servers {
		if u, err := url.Parse(s); err != nil || !slices.Contains([]string{"nats", "tls"}, u.Scheme) || u.Host == "" {
			fail("servers", "%q: want nats://host:port or tls://host:port", s)
		} else if plaintextURL(s, c.TLS != nil) && !c.AllowPlaintext {
			fail("servers", "%q: plaintext to a host that is not loopback: the password and the bans would cross the network in clear; "+
				"use tls:// with fleet.tls.ca (and embedded.tls on the server), or set fleet.allowplaintext: true to allow it", s)
		}
	}
	if t := c.TLS; t != nil && (t.Cert == "") != (t.Key == "") {
		fail("tls", "cert and key go together")
	}
	if c.NKeySeed != "" && c.Password != "" {
		fail("nkeyseed", "set nkeyseed or password, not both")
	}
	for node, key := range c.TrustKeys {
		if !validNode(node) || !isPublicKey(key) {
			fail("trustkeys."+node, "%q: want a node name and its public nkey (U..., as `sysban fleet keygen` prints)", key)
		}
	}
	for jail, s := range c.Scope {
		if !validJail(jail) || (s != ScopeFleet && s != ScopeOrigin) {
			fail("scope."+jail, "%q: want fleet or origin", s)
		}
	}
	for host, node := range c.Origins {
		if !validNode(node) || host == "" {
			fail("origins."+host, "%q: want a node name", node)
		}
	}
	for _, j := range c.Jails {
		if !validJail(j) {
			fail("jails", "%q: not a jail name", j)
		}
	}
	if c.MaxBanTime < 0 || c.RateCap < 0 {
		fail("maxbantime", "maxbantime and ratecap must not be negative")
	}
	if c.MaxPrefix4 == 0 {
		c.MaxPrefix4 = DefaultMaxPrefix4
	} else if c.MaxPrefix4 < 8 || c.MaxPrefix4 > 32 {
		fail("maxprefix4", "%d: want 8 to 32", c.MaxPrefix4)
	}
	if c.MaxPrefix6 == 0 {
		c.MaxPrefix6 = DefaultMaxPrefix6
	} else if c.MaxPrefix6 < 16 || c.MaxPrefix6 > 128 {
		fail("maxprefix6", "%d: want 16 to 128", c.MaxPrefix6)
	}
	if c.Resync == 0 {
		c.Resync = 5 * time.Minute
	} else if c.Resync < 10*time.Second {
		fail("resync", "%v: at least 10s", c.Resync)
	}
	if c.OutboxMax == 0 {
		c.OutboxMax = 100000
	} else if c.OutboxMax < 0 {
		fail("outbox", "must not be negative")
	}
	if e := c.Embedded; e != nil {
		if _, _, err := net.SplitHostPort(e.Listen); err != nil {
			fail("embedded.listen", "%q: want host:port", e.Listen)
		}
		if e.MaxMemory == 0 {
			e.MaxMemory = 64 << 20
		}
		if e.MaxStore == 0 {
			e.MaxStore = 1 << 30
		}
		if e.MaxMemory < 1<<20 || e.MaxStore < 1<<20 {
			fail("embedded.maxmemory", "maxmemory and maxstore: at least 1MiB each")
		}
		if _, ok := e.Nodes[c.Name]; !ok && len(e.Nodes) > 0 {
			fail("embedded.nodes", "this node (%s) is not listed", c.Name)
		}
		for n, cred := range e.Nodes {
			if !validNode(n) || (!isPublicKey(cred) && len(cred) < 12) {
				fail("embedded.nodes."+n, "want a node name and its public nkey (U...) or a password of at least 12 characters")
			}
			if k, ok := c.TrustKeys[n]; ok && isPublicKey(cred) && k != cred {
				fail("trustkeys."+n, "%s differs from embedded.nodes' key %s", k, cred)
			}
		}
		if cred, ok := e.Nodes[c.Name]; ok {
			switch {
			case isPublicKey(cred) && c.NKeySeed == "":
				fail("nkeyseed", "embedded.nodes gives this node (%s) the key %s: set fleet.nkeyseed to its seed file", c.Name, cred)
			case c.NKeySeed != "" && !isPublicKey(cred):
				fail("nkeyseed", "embedded.nodes gives this node (%s) a password: give it this node's public key instead", c.Name)
			}
		}
		if t := e.TLS; t != nil && (t.Cert == "" || t.Key == "") {
			fail("embedded.tls", "cert and key are both required")
		}
		if host, _, err := net.SplitHostPort(e.Listen); err == nil && e.TLS == nil && !c.AllowPlaintext && !isLoopbackHost(host) {
			fail("embedded.listen", "%q without embedded.tls: other hosts would send passwords and bans in clear; "+
				"set embedded.tls.cert and .key, or fleet.allowplaintext: true to allow it", e.Listen)
		}
		if e.ClusterListen != "" && (e.ClusterName == "" || len(e.Routes) == 0) {
			fail("embedded.cluster", "a cluster needs a name and routes")
		}
		if t := e.ClusterTLS; t != nil && (t.Cert == "" || t.Key == "" || t.CA == "") {
			fail("embedded.cluster.tls", "cert, key and ca are all required (routes verify each other)")
		}
		for _, r := range e.Routes {
			if plaintextURL(r, e.ClusterTLS != nil) && !c.AllowPlaintext {
				fail("embedded.cluster.routes", "%q: plaintext to a host that is not loopback: the bans would cross the network in clear; "+
					"set embedded.cluster.tls, or fleet.allowplaintext: true to allow it", r)
			}
		}
	}
	return errors.Join(errs...)
}

// Load reads the files c names (the nkey seed, TLS certificates and
// keys), after Validate. The daemon calls it on start, `sysban check` and
// reload, so that a bad file is refused like a bad key.
func (c *Config) Load() error {
	var errs []error
	if c.NKeySeed != "" {
		kp, err := readSeed(c.NKeySeed)
		if err != nil {
			errs = append(errs, fmt.Errorf("fleet.nkeyseed: %w", err))
		} else if pub, _ := kp.PublicKey(); c.Embedded != nil && c.Embedded.Nodes[c.Name] != "" && c.Embedded.Nodes[c.Name] != pub {
			errs = append(errs, fmt.Errorf("fleet.nkeyseed: its public key %s is not this node's in fleet.embedded.nodes (%s)", pub, c.Embedded.Nodes[c.Name]))
		} else {
			c.nkey = kp
		}
	}
	if t := c.TLS; t != nil {
		var err error
		if c.clientTLS, err = loadClientTLS(*t); err != nil {
			errs = append(errs, fmt.Errorf("fleet.tls: %w", err))
		}
	}
	if e := c.Embedded; e != nil && e.TLS != nil {
		var err error
		if e.serverTLS, err = loadServerTLS(*e.TLS); err != nil {
			errs = append(errs, fmt.Errorf("fleet.embedded.tls: %w", err))
		}
	}
	if e := c.Embedded; e != nil && e.ClusterTLS != nil {
		var err error
		if e.routeTLS, err = loadRouteTLS(*e.ClusterTLS); err != nil {
			errs = append(errs, fmt.Errorf("fleet.embedded.cluster.tls: %w", err))
		}
	}
	return errors.Join(errs...)
}

// loaded fails when a file c names was not read: a node must never fall
// back to plaintext or unsigned values because Load was not called.
func (c *Config) loaded() error {
	if (c.NKeySeed != "" && c.nkey == nil) || (c.TLS != nil && c.clientTLS == nil) ||
		(c.Embedded != nil && ((c.Embedded.TLS != nil && c.Embedded.serverTLS == nil) || (c.Embedded.ClusterTLS != nil && c.Embedded.routeTLS == nil))) {
		return errors.New("fleet: the seed or TLS files were not loaded (Config.Load)")
	}
	return nil
}

// trustedKeys are the public keys whose nodes' values must be signed:
// fleet.trustkeys and the embedded server's nodes listed with a key.
func (c *Config) trustedKeys() map[string]string {
	keys := map[string]string{}
	if c.Embedded != nil {
		for n, cred := range c.Embedded.Nodes {
			if isPublicKey(cred) {
				keys[n] = cred
			}
		}
	}
	for n, k := range c.TrustKeys {
		keys[n] = k
	}
	return keys
}

// ScopeOf is jail's scope.
func (c *Config) ScopeOf(jail string) Scope {
	if s, ok := c.Scope[jail]; ok {
		return s
	}
	return ScopeFleet
}

// OriginNode maps a log's origin (syslog hostname, else sender address) to
// the node name of the enforcer on that host.
func (c *Config) OriginNode(origin string) string {
	if n, ok := c.Origins[origin]; ok {
		return n
	}
	return origin
}

// maxPrefix is the widest prefix length accepted from the fleet for p's
// family.
func (c *Config) maxPrefix(p netip.Prefix) int {
	if p.Addr().Is4() {
		return c.MaxPrefix4
	}
	return c.MaxPrefix6
}

// liveFields are the Config fields Node.Reload applies to a running node:
// what it accepts from the fleet, the scopes, the origins and the resync
// period. Every other field needs a new connection, server or outbox.
var liveFields = map[string]bool{
	"Scope": true, "Origins": true, "Jails": true, "MaxBanTime": true, "RateCap": true,
	"IgnoreIP": true, "MaxPrefix4": true, "MaxPrefix6": true, "Resync": true,
}

// fieldKeys are the config keys of the fields whose key is not their
// name in lower case.
var fieldKeys = map[string]string{"Decide": "roles", "Enforce": "roles", "OutboxMax": "outbox"}

// sameSetting compares two config values by what the config says: their
// exported fields, through pointers; unexported ones hold what Load read
// from the files the exported ones name (TLS configurations, keys), new
// at every load.
func sameSetting(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameSetting(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() && !sameSetting(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// RestartKeys names the keys ("fleet.servers") that differ between old
// and cur and that a running node cannot take (a restart can). A field
// added to Config later needs a restart unless liveFields lists it.
func RestartKeys(old, cur *Config) []string {
	var keys []string
	ov, cv := reflect.ValueOf(old).Elem(), reflect.ValueOf(cur).Elem()
	for i := range ov.NumField() {
		f := ov.Type().Field(i)
		if !f.IsExported() || liveFields[f.Name] || sameSetting(ov.Field(i), cv.Field(i)) {
			continue
		}
		key := fieldKeys[f.Name]
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		if key = "fleet." + key; !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}
