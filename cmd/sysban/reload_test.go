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
