package config

import (
	"path/filepath"
	"strings"

	"github.com/sysban/sysban/fleet"
)

// The keys of the fleet section (see fleet.Config). Maps keyed by host or
// node names are written as "key=value" lists: viper lower-cases map keys
// and splits them at dots, which hostnames contain.
var (
	fleetKeys = []string{"name", "roles", "servers", "user", "password", "nkeyseed", "tls", "allowplaintext", "trustkeys",
		"bucket", "replicas", "scope", "origins", "jails", "maxbantime", "ratecap", "ignoreip", "maxprefix4", "maxprefix6",
		"resync", "outbox", "embedded"}
	fleetEmbeddedKeys = []string{"listen", "maxmemorymib", "maxstoremib", "nodes", "tls", "cluster"}
	fleetClusterKeys  = []string{"name", "listen", "routes", "tls"}
)

// decodeFleet reads the fleet section; nil when there is none (no NATS at
// all). The checks that need no config machinery are fleet.Config.Validate's.
func (d *decoder) decodeFleet(root map[string]any, stateDir string) *fleet.Config {
	if _, ok := root["fleet"]; !ok {
		return nil
	}
	m := d.section(root, "fleet")
	d.checkKeys("fleet", m, fleetKeys)
	c := &fleet.Config{
		Name:     d.str(m, "fleet.name"),
		Servers:  d.strings(m, "fleet.servers"),
		User:     d.str(m, "fleet.user"),
		Password: d.str(m, "fleet.password"),
		Bucket:   d.str(m, "fleet.bucket"),
		Jails:    d.strings(m, "fleet.jails"),
		IgnoreIP: d.prefixes(m, "fleet.ignoreip"),

		AllowPlaintext: d.boolean(m, "fleet.allowplaintext"),
		TrustKeys:      d.pairs(m, "fleet.trustkeys"),
	}
	if has(m, "nkeyseed") {
		c.NKeySeed = d.absPath(m, "fleet.nkeyseed")
	}
	c.TLS = d.tlsFiles(m, "fleet.tls", "ca")
	roles := d.strings(m, "fleet.roles")
	if roles == nil {
		roles = []string{"decide", "enforce"}
	}
	for _, r := range roles {
		switch strings.ToLower(r) {
		case "decide":
			c.Decide = true
		case "enforce":
			c.Enforce = true
		default:
			d.fail("fleet.roles", "%q: want decide and/or enforce", r)
		}
	}
	if has(m, "replicas") {
		c.Replicas = d.intRange(m, "fleet.replicas", 1, 5)
	}
	if has(m, "ratecap") {
		c.RateCap = d.intRange(m, "fleet.ratecap", 0, 1<<24)
	}
	if has(m, "maxprefix4") {
		c.MaxPrefix4 = d.prefixLen(m, "fleet.maxprefix4", 32)
	}
	if has(m, "maxprefix6") {
		c.MaxPrefix6 = d.prefixLen(m, "fleet.maxprefix6", 128)
	}
	if has(m, "outbox") {
		c.OutboxMax = d.intRange(m, "fleet.outbox", 1, 1<<24)
	}
	if has(m, "maxbantime") {
		c.MaxBanTime = d.duration(m, "fleet.maxbantime", false)
	}
	if has(m, "resync") {
		c.Resync = d.duration(m, "fleet.resync", false)
	}
	if pairs := d.pairs(m, "fleet.scope"); pairs != nil {
		c.Scope = map[string]fleet.Scope{}
		for k, v := range pairs {
			c.Scope[k] = fleet.Scope(v)
		}
	}
	c.Origins = d.pairs(m, "fleet.origins")
	if has(m, "embedded") {
		em := d.section(m, "fleet.embedded")
		d.checkKeys("fleet.embedded", em, fleetEmbeddedKeys)
		e := &fleet.Embedded{Listen: d.str(em, "fleet.embedded.listen"), StoreDir: filepath.Join(stateDir, "nats"), Nodes: d.pairs(em, "fleet.embedded.nodes")}
		e.TLS = d.tlsFiles(em, "fleet.embedded.tls", "clientca")
		if has(em, "maxmemorymib") {
			e.MaxMemory = int64(d.intRange(em, "fleet.embedded.maxmemorymib", 1, 1<<20)) << 20
		}
		if has(em, "maxstoremib") {
			e.MaxStore = int64(d.intRange(em, "fleet.embedded.maxstoremib", 1, 1<<24)) << 20
		}
		if has(em, "cluster") {
			cm := d.section(em, "fleet.embedded.cluster")
			d.checkKeys("fleet.embedded.cluster", cm, fleetClusterKeys)
			e.ClusterName = d.str(cm, "fleet.embedded.cluster.name")
			e.ClusterListen = d.str(cm, "fleet.embedded.cluster.listen")
			e.Routes = d.strings(cm, "fleet.embedded.cluster.routes")
			e.ClusterTLS = d.tlsFiles(cm, "fleet.embedded.cluster.tls", "ca")
		}
		c.Embedded = e
	}
	if err := c.Validate(); err != nil {
		d.fail("fleet", "%v", err)
	}
	return c
}

// tlsFiles reads a section of PEM file paths (cert, key and the CA under
// caKey); nil when absent.
func (d *decoder) tlsFiles(m map[string]any, key, caKey string) *fleet.TLSFiles {
	if !has(m, lastKey(key)) {
		return nil
	}
	tm := d.section(m, key)
	d.checkKeys(key, tm, []string{"cert", "key", caKey})
	return &fleet.TLSFiles{Cert: d.optPath(tm, key+".cert"), Key: d.optPath(tm, key+".key"), CA: d.optPath(tm, key+"."+caKey)}
}

// optPath reads an absolute path that may be absent (empty).
func (d *decoder) optPath(m map[string]any, key string) string {
	if !has(m, lastKey(key)) {
		return ""
	}
	return d.absPath(m, key)
}

func has(m map[string]any, key string) bool {
	v, ok := m[key]
	return ok && v != nil
}

// pairs reads a "key=value" list (or a map) into a map; nil when absent.
func (d *decoder) pairs(m map[string]any, key string) map[string]string {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		return nil
	}
	out := map[string]string{}
	if mm, isMap := v.(map[string]any); isMap {
		for k, val := range mm {
			s, isStr := val.(string)
			if !isStr {
				d.fail(key+"."+k, "want a string, got %s", describe(val))
				continue
			}
			out[k] = s
		}
		return out
	}
	for _, p := range d.strings(m, key) {
		k, val, ok := strings.Cut(p, "=")
		if !ok || k == "" || val == "" {
			d.fail(key, "%q: want key=value", p)
			continue
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return out
}
