package config

import (
	"testing"
	"time"

	"github.com/sysban/sysban/fleet"
)

// testPub is a user's public nkey (fleet keygen prints one).
const testPub = "UADQXJTRDPUGD65DBPPWITJT7PKSZ6P7JFGC5R2YUCCDREX4IEJAWQQB"

func TestFleetSection(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte("jails: {sshd: {enabled: true}}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fleet != nil {
		t.Fatalf("no fleet section, but Fleet = %+v", cfg.Fleet)
	}
	tests := []struct {
		name    string
		yaml    string
		want    func(c *fleet.Config) bool
		wantErr string
	}{
		{
			name: "collector with embedded server",
			yaml: `fleet:
  name: collector
  password: collector-secret-1
  scope: {postfix: origin}
  origins: ["mail.example.org=hosta", "10.0.0.7=hostb"]
  maxbantime: 7d
  ratecap: 600
  allowplaintext: true
  embedded:
    listen: 0.0.0.0:4222
    maxmemorymib: 32
    nodes: ["collector=collector-secret-1", "hosta=hosta-secret-12"]`,
			want: func(c *fleet.Config) bool {
				return c.Name == "collector" && c.Decide && c.Enforce && c.ScopeOf("postfix") == fleet.ScopeOrigin &&
					c.ScopeOf("sshd") == fleet.ScopeFleet && c.OriginNode("mail.example.org") == "hosta" &&
					c.MaxBanTime == 7*24*time.Hour && c.RateCap == 600 && c.Embedded.MaxMemory == 32<<20 &&
					c.Embedded.StoreDir != "" && c.Embedded.Nodes["hosta"] == "hosta-secret-12" && c.Resync == 5*time.Minute &&
					c.MaxPrefix4 == fleet.DefaultMaxPrefix4 && c.MaxPrefix6 == fleet.DefaultMaxPrefix6
			},
		},
		{
			name: "widest prefixes accepted",
			yaml: "fleet: {name: hostb, servers: [nats://127.0.0.1:4222], maxprefix4: 32, maxprefix6: /56}",
			want: func(c *fleet.Config) bool { return c.MaxPrefix4 == 32 && c.MaxPrefix6 == 56 },
		},
		{name: "maxprefix4 too wide", yaml: "fleet: {name: a, servers: [nats://h:1], maxprefix4: 1}", wantErr: "fleet.maxprefix4"},
		{name: "maxprefix6 too long", yaml: "fleet: {name: a, servers: [nats://h:1], maxprefix6: 129}", wantErr: "fleet.maxprefix6"},
		{
			name: "enforce-only host",
			yaml: "fleet: {name: hostb, roles: [enforce], servers: [nats://10.0.0.1:4222], password: x, allowplaintext: true}",
			want: func(c *fleet.Config) bool { return !c.Decide && c.Enforce && c.User == "hostb" && c.AllowPlaintext },
		},
		{
			name: "nkeys and TLS",
			yaml: `fleet:
  name: hosta
  servers: ["tls://10.0.0.1:4222"]
  nkeyseed: /etc/sysban/fleet.seed
  tls: {ca: /etc/sysban/fleet-ca.pem, cert: /etc/sysban/hosta.pem, key: /etc/sysban/hosta.key}
  trustkeys: ["collector=` + testPub + `"]`,
			want: func(c *fleet.Config) bool {
				return c.NKeySeed == "/etc/sysban/fleet.seed" && c.TLS.CA == "/etc/sysban/fleet-ca.pem" && c.TLS.Key == "/etc/sysban/hosta.key" &&
					c.TrustKeys["collector"] == testPub
			},
		},
		{
			name: "embedded TLS and node keys",
			yaml: `fleet:
  name: collector
  nkeyseed: /etc/sysban/fleet.seed
  embedded:
    listen: 10.0.0.1:4222
    tls: {cert: /etc/sysban/nats.pem, key: /etc/sysban/nats.key, clientca: /etc/sysban/fleet-ca.pem}
    nodes: ["collector=` + testPub + `", "hosta=hosta-password-12"]`,
			want: func(c *fleet.Config) bool {
				return c.Embedded.TLS.Cert == "/etc/sysban/nats.pem" && c.Embedded.TLS.CA == "/etc/sysban/fleet-ca.pem" && c.Embedded.Nodes["collector"] == testPub
			},
		},
		{name: "plaintext to another host", yaml: "fleet: {name: a, servers: [nats://10.0.0.1:4222]}", wantErr: "set fleet.allowplaintext: true to allow it"},
		{name: "plaintext embedded listener", yaml: "fleet: {name: a, embedded: {listen: '10.0.0.1:4222'}}", wantErr: "set embedded.tls.cert and .key"},
		{name: "relative seed path", yaml: "fleet: {name: a, servers: [tls://h:1], nkeyseed: fleet.seed}", wantErr: `fleet.nkeyseed: "fleet.seed": want an absolute path`},
		{name: "seed and password", yaml: "fleet: {name: a, servers: [tls://h:1], nkeyseed: /s, password: pw}", wantErr: "set nkeyseed or password, not both"},
		{name: "tls typo", yaml: "fleet: {name: a, servers: [tls://h:1], tls: {cafile: /ca.pem}}", wantErr: "fleet.tls.cafile: unknown key"},
		{name: "bad trust key", yaml: "fleet: {name: a, servers: [tls://h:1], trustkeys: [hosta=UNOTAKEY]}", wantErr: "fleet.trustkeys.hosta"},
		{
			name: "cluster routes over TLS",
			yaml: `fleet:
  name: n1
  password: n1-password-123
  embedded:
    listen: 127.0.0.1:4222
    cluster: {name: sysban, listen: "10.0.0.1:6222", routes: ["tls://10.0.0.2:6222"], tls: {cert: /etc/sysban/n1.pem, key: /etc/sysban/n1.key, ca: /etc/sysban/fleet-ca.pem}}`,
			want: func(c *fleet.Config) bool {
				return c.Embedded.ClusterTLS.CA == "/etc/sysban/fleet-ca.pem" && !c.AllowPlaintext
			},
		},
		{name: "plaintext routes", yaml: "fleet: {name: a, embedded: {listen: '127.0.0.1:1', cluster: {name: c, listen: '10.0.0.1:6222', routes: ['nats://10.0.0.2:6222']}}}", wantErr: "set embedded.cluster.tls"},
		{name: "embedded tls without key", yaml: "fleet: {name: a, embedded: {listen: ':4222', tls: {cert: /c.pem}}}", wantErr: "fleet.embedded.tls: cert and key are both required"},
		{name: "no server", yaml: "fleet: {name: a}", wantErr: "nothing to connect to"},
		{name: "bad role", yaml: "fleet: {name: a, roles: [judge], servers: [nats://h:1]}", wantErr: `"judge": want decide and/or enforce`},
		{name: "bad scope", yaml: "fleet: {name: a, servers: [nats://h:1], scope: {sshd: world}}", wantErr: "fleet.scope.sshd"},
		{name: "bad url", yaml: "fleet: {name: a, servers: [http://h]}", wantErr: "want nats://host:port"},
		{name: "typo", yaml: "fleet: {name: a, server: [nats://h:1]}", wantErr: `fleet.server: unknown key`},
		{name: "short node password", yaml: "fleet: {name: a, embedded: {listen: ':4222', nodes: [a=short]}}", wantErr: "at least 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseCase(t, tt.yaml, nil, tt.wantErr)
			if cfg == nil {
				return
			}
			if cfg.Fleet == nil || !tt.want(cfg.Fleet) {
				t.Errorf("fleet = %+v", cfg.Fleet)
			}
		})
	}
}
