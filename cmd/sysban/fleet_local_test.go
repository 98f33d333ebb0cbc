package main

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/fleet"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/store"
)

// A daemon that listens remembers the fleet's bans in its pipeline, so
// that failures its own logs still show from a banned address do not ban
// it twice; a daemon without a listener (an enforce-only host) never
// sees a failure, and skips that memory (fleetLocal.deaf). Both are read
// here from the config as startFleet reads it, through ApplyFleet.
//
// The backend is an nft.Backend with no jails, so the test needs no root:
// Apply refuses the bans for an unknown jail before it would touch the
// kernel (its error is expected), and ApplyFleet goes on to the store and
// the pipeline as it does after a kernel error.
func TestFleetLocalMarksOnlyWhenListening(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	now := time.Now()
	entries := []fleet.Entry{
		{Key: fleet.Key{Jail: "sshd", Node: "hosta", Prefix: netip.MustParsePrefix("192.0.2.44/32")},
			Value: fleet.Value{Start: now, Expiry: now.Add(time.Hour), Node: "hosta", Scope: fleet.ScopeFleet}},
		{Key: fleet.Key{Jail: "sshd", Node: "hosta", Prefix: netip.MustParsePrefix("2001:db8::44/128")},
			Value: fleet.Value{Start: now, Node: "hosta", Scope: fleet.ScopeFleet}}, // permanent
	}
	for _, tc := range []struct {
		name       string
		listeners  bool
		wantMarked int
	}{
		{"listening node marks the fleet's bans", true, len(entries)},
		{"deaf node (no listener) marks none", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load("", nil) // built-in: listeners and the sshd jail
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Listen.Specs) == 0 {
				t.Fatal("the built-in config has no listener")
			}
			if !tc.listeners {
				cfg.Listen.Specs = nil
			}
			st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			pl, err := pipeline.New(cfg.Pipeline(), &countingBanner{}, pipeline.Options{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			fr, err := startFleet(ctx, cfg, st, &nft.Backend{}, nil, prometheus.NewRegistry(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			fr.local.pl.Store(pl)
			if err := fr.local.ApplyFleet(ctx, entries); err == nil {
				t.Fatal("a backend without jails applied the bans: the test would touch a kernel")
			}
			if got := pl.Stats().Jails["sshd"].CurrentlyBanned; got != tc.wantMarked {
				t.Errorf("pipeline remembers %d bans, want %d", got, tc.wantMarked)
			}
			// Either way the store records them, for Restore after a reboot.
			fr.local.recorder.sync()
			if due, err := st.Due(now); err != nil || len(due) != len(entries) {
				t.Errorf("store holds %d records (%v), want %d", len(due), err, len(entries))
			}
		})
	}
}
