package main

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/control"
	"github.com/sysban/sysban/fleet"
	"github.com/sysban/sysban/metrics"
	"github.com/sysban/sysban/notify"
)

// Reload re-reads the configuration, validates all of it before touching
// anything, then swaps it in: the kernel ruleset atomically, then the
// pipeline (which keeps the counters and bans of jails that stay), then the
// actions. Bans of jails no longer enabled are lifted. A refused config
// changes nothing.
func (s *service) Reload(ctx context.Context) (control.ReloadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	refuse := func(err error) (control.ReloadResult, error) {
		s.lastReload = control.ReloadResult{OK: false, Time: now, Error: err.Error()}
		s.rec.Reload(false, now)
		s.log.Error("reload refused; the old config keeps running", "err", err)
		return s.lastReload, fmt.Errorf("%w: %v", control.ErrConfigRefused, err)
	}
	cfg, err := (&Main{ConfigPath: s.configPath, Environ: s.environ, ObserveAll: s.observeAll}).load()
	if err != nil {
		return refuse(err)
	}
	if err := restartOnly(s.cfg, cfg); err != nil {
		return refuse(err)
	}
	notifier, err := buildNotifier(cfg, s.log, s.host)
	if err != nil {
		return refuse(err)
	}

	// The NFLOG settings cannot change here (restartOnly), but the jails
	// whose banned traffic is logged can: the log rules follow them.
	if err := s.backend.SetupNFLOG(ctx, cfg.Rules(), nftNFLOG(cfg)); err != nil {
		notifier.Close()
		return control.ReloadResult{}, fmt.Errorf("reload: %w", err)
	}
	if err := s.pl.Reload(cfg.Pipeline()); err != nil {
		// Validated above, so this is a bug; put the old rules back.
		notifier.Close()
		if rerr := s.backend.SetupNFLOG(ctx, s.cfg.Rules(), nftNFLOG(s.cfg)); rerr != nil {
			s.log.Error("reload: restoring the old ruleset failed", "err", rerr)
		}
		return refuse(err)
	}
	s.rc.SetAllow(cfg.Listen.Allow)
	old := s.notifier.swap(notifier)
	go old.Close()
	s.enforceObserved(ctx, s.cfg, cfg)
	if s.fleet != nil {
		// Cannot fail: restartOnly refused what the node cannot take.
		// It resyncs, so the new trust rules apply to what is in force.
		if err := s.fleet.Reload(cfg.Fleet, fleetNever(cfg, s.own), jailNames(cfg)); err != nil {
			s.log.Error("reload: fleet", "err", err)
		}
	}

	res := control.ReloadResult{OK: true, Time: now, Sources: cfg.Sources, Jails: jailNames(cfg)}
	for _, j := range jailNames(s.cfg) {
		if slices.Contains(res.Jails, j) {
			continue
		}
		res.Removed = append(res.Removed, j)
		lifted, err := s.store.RemoveJail(j, "reload")
		if err != nil {
			s.log.Error("reload: lift bans of removed jail", "jail", j, "err", err)
			continue
		}
		res.Unbanned += len(lifted)
		s.rec.Unban(j, metrics.UnbanReload, len(lifted))
		for _, r := range lifted {
			s.pl.Forget(j, r.Network())
			s.notifier.Notify(notify.Event{Kind: notify.KindUnban, Ban: r.Ban, Reason: notify.ReasonReload, Host: s.host})
		}
	}
	s.cfg = cfg
	s.lastReload = res
	s.rec.Reload(true, now)
	s.log.Info("config reloaded", "sources", cfg.Sources, "jails", res.Jails, "removed", res.Removed, "unbanned", res.Unbanned)
	// A reload decodes and compiles as start-up does (8 MiB more RSS
	// measured after one SIGHUP), and is as rare.
	returnStartupMemory(s.log)
	return res, nil
}

// restartOnly refuses changes a running daemon cannot take: they name
// resources it holds (sockets, the table, the state file).
func restartOnly(old, cur *config.Config) error {
	var changed []string
	// listen.allow alone is reloaded: the receiver and the pipeline's
	// spared senders take it (Reload).
	oldListen, curListen := old.Listen, cur.Listen
	oldListen.Allow, curListen.Allow = nil, nil
	if !reflect.DeepEqual(oldListen, curListen) {
		changed = append(changed, "listen")
	}
	if old.NFT != cur.NFT {
		changed = append(changed, "nft")
	}
	if old.State.Dir != cur.State.Dir {
		changed = append(changed, "state.dir")
	}
	if old.Control != cur.Control {
		changed = append(changed, "control")
	}
	if old.Metrics != cur.Metrics {
		changed = append(changed, "metrics")
	}
	if old.Log != cur.Log {
		changed = append(changed, "log")
	}
	// The NFLOG group is bound at start, and Guard restores the log rules
	// it was started with.
	if !reflect.DeepEqual(old.NFLOG, cur.NFLOG) {
		changed = append(changed, "nflog")
	}
	// A fleet section added or dropped needs a new node; within it, what
	// needs a new connection or server (fleet.RestartKeys). The rest of it
	// (trust, scopes, origins, resync) is reloaded live.
	switch {
	case (old.Fleet == nil) != (cur.Fleet == nil):
		changed = append(changed, "fleet")
	case old.Fleet != nil:
		changed = append(changed, fleet.RestartKeys(old.Fleet, cur.Fleet)...)
	}
	if len(changed) > 0 {
		return fmt.Errorf("config: %v changed: these need a restart (systemctl restart sysban); nothing was reloaded", changed)
	}
	return nil
}

// enforceObserved puts in the kernel the observed bans, not yet expired, of
// the jails that were in observe mode in prev and are not in next: turning
// observe off enforces what the jail decided while it watched.
func (s *service) enforceObserved(ctx context.Context, prev, next *config.Config) {
	was := map[string]bool{}
	for _, j := range prev.EnabledJails() {
		was[j.Name] = j.Observe
	}
	for _, j := range next.EnabledJails() {
		if !was[j.Name] || j.Observe {
			continue
		}
		recs, err := s.store.Enforce(j.Name, time.Now())
		if err != nil {
			s.log.Error("reload: enforce observed bans", "jail", j.Name, "err", err)
			continue
		}
		bans := make([]sysban.Ban, len(recs))
		for i, r := range recs {
			bans[i] = r.Ban
		}
		if err := s.backend.Apply(ctx, bans); err != nil {
			// The store has them as enforced: the guard puts them in.
			s.log.Error("reload: enforce observed bans", "jail", j.Name, "bans", len(bans), "err", err)
		}
		s.log.Info("observe mode off: observed bans enforced", "jail", j.Name, "bans", len(bans))
	}
}
