package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban/config"
)

// TestRestartOnlyListen: a reload takes a new listen.allow (the receiver
// and the pipeline's spared senders follow it) and refuses any other
// change of listen.
func TestRestartOnlyListen(t *testing.T) {
	base := func() *config.Config {
		c := &config.Config{}
		c.Listen.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}
		c.Listen.IdleTimeout = time.Minute
		return c
	}
	tests := []struct {
		name    string
		change  func(*config.Config)
		refused string // "" when the reload goes through
	}{
		{"allow changed", func(c *config.Config) {
			c.Listen.Allow = append(c.Listen.Allow, netip.MustParsePrefix("2001:db8::10/128"))
		}, ""},
		{"allow emptied", func(c *config.Config) { c.Listen.Allow = nil }, ""},
		{"idle timeout changed", func(c *config.Config) { c.Listen.IdleTimeout = time.Hour }, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := base()
			tt.change(cur)
			err := restartOnly(base(), cur)
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Errorf("error %v, want one naming %s", err, tt.refused)
			}
		})
	}
}

// TestRestartOnlyFleet: on reload the fleet's trust, scopes, origins and
// resync period change live; a fleet section added or dropped, or a key
// that needs a new connection or server, is refused, naming the key.
func TestRestartOnlyFleet(t *testing.T) {
	const base = "fleet: {name: hostb, servers: [\"nats://10.0.0.1:4222\"], allowplaintext: true, password: pw%s}\n"
	parse := func(yaml string) *config.Config {
		t.Helper()
		cfg, err := config.Parse("test.yaml", []byte("jails: {sshd: {enabled: true}}\n"+yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old := parse(strings.Replace(base, "%s", "", 1))
	tests := []struct {
		name, yaml, refused string
	}{
		{"trust", strings.Replace(base, "%s", ", ignoreip: [10.0.0.0/8], maxbantime: 1d, ratecap: 10, maxprefix6: 64, jails: [sshd], scope: [sshd=origin], origins: [h=hostb], resync: 1m", 1), ""},
		{"servers", strings.Replace(base, "10.0.0.1", "10.0.0.2", 1), "fleet.servers"},
		{"password", strings.Replace(base, "%s", "2", 1), "fleet.password"},
		{"roles", strings.Replace(base, "%s", ", roles: [enforce]", 1), "fleet.roles"},
		{"dropped", "", "fleet"},
	}
	for _, tt := range tests {
		err := restartOnly(old, parse(tt.yaml))
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
			t.Errorf("%s: %v, want a refusal naming %s", tt.name, err, tt.refused)
		}
	}
}
