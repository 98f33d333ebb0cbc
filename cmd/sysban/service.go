package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/control"
	"github.com/sysban/sysban/fleet"
	"github.com/sysban/sysban/metrics"
	"github.com/sysban/sysban/nflog"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/notify"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
	"github.com/sysban/sysban/store"
)

// service is the running daemon as the control API sees it. Reads take the
// current config under mu; writes (ban, unban, reload) hold mu so that a
// reload never interleaves with a manual ban.
type service struct {
	configPath string
	environ    []string
	observeAll bool // sysban run --observe: every jail in observe mode
	log        *slog.Logger
	started    time.Time
	backend    *nft.Backend
	store      *store.Store
	pl         *pipeline.Pipeline
	rc         *receiver.Receiver
	rec        *metrics.Recorder
	notifier   *notifierRef
	host       string
	// traffic is what NFLOG saw of banned addresses; nil when it is off.
	traffic *nflog.Traffic
	// fleet is this host's fleet node; nil without a fleet section.
	fleet *fleet.Node
	// own are this host's addresses (no fleet ban may cover them).
	own []netip.Prefix

	mu         sync.Mutex
	cfg        *config.Config
	lastReload control.ReloadResult
}

func (s *service) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *service) Status(ctx context.Context) (control.Status, error) {
	s.mu.Lock()
	cfg, last := s.cfg, s.lastReload
	s.mu.Unlock()
	ps := s.pl.Stats()
	st := control.Status{
		Version:       Version(),
		Started:       s.started,
		UptimeSeconds: int64(time.Since(s.started).Seconds()),
		ConfigSources: cfg.Sources,
		LastReload:    last,
		Messages:      ps.Messages,
		QueuedBans:    ps.Queued,
	}
	for _, j := range cfg.Jails {
		js := ps.Jails[j.Name]
		st.Jails = append(st.Jails, control.JailSummary{
			Name: j.Name, Filter: j.Filter, Enabled: j.Enabled,
			CurrentlyFailed: js.CurrentlyFailed, TotalFailed: js.TotalFailed,
			CurrentlyBanned: js.CurrentlyBanned, TotalBanned: js.TotalBanned,
			Observe: js.Observe, Observed: js.Observed,
		})
	}
	for _, l := range s.rc.Stats() {
		st.Listeners = append(st.Listeners, control.ListenerStatus{
			Name: l.Name, Received: l.Received, Dropped: l.Dropped,
			ParseErrors: l.ParseErrors, Connections: l.Connections,
		})
	}
	if s.fleet != nil {
		fs := s.fleet.Status()
		st.Fleet = &fs
	}
	return st, nil
}

// enabledJail returns the enabled jail called name.
func (s *service) enabledJail(cfg *config.Config, name string) (config.Jail, error) {
	for _, j := range cfg.EnabledJails() {
		if j.Name == name {
			return j, nil
		}
	}
	return config.Jail{}, fmt.Errorf("%w %q (enabled jails: %v)", control.ErrUnknownJail, name, jailNames(cfg))
}

func (s *service) JailStatus(ctx context.Context, name string) (control.JailStatus, error) {
	cfg := s.config()
	j, err := s.enabledJail(cfg, name)
	if err != nil {
		return control.JailStatus{}, err
	}
	js := s.pl.Stats().Jails[name]
	out := control.JailStatus{
		Name: j.Name, Filter: j.Filter, MaxRetry: j.MaxRetry,
		FindTimeSeconds: int64(j.FindTime.Seconds()), BanTimeSeconds: int64(j.BanTime.Seconds()),
		CurrentlyFailed: js.CurrentlyFailed, TotalFailed: js.TotalFailed,
		CurrentlyBanned: js.CurrentlyBanned, TotalBanned: js.TotalBanned, Untrusted: js.Untrusted,
	}
	if j.BanTime == sysban.Permanent {
		out.BanTimeSeconds = -1
	}
	out.Programs = cfg.AllFilters()[j.Filter].Programs
	recs, err := s.store.Due(time.Now())
	if err != nil {
		return out, err
	}
	for _, r := range recs {
		if r.Jail == name {
			out.Banned = append(out.Banned, banInfo(r))
		}
	}
	// The store is the truth for what sysban banned; the kernel count is
	// what fail2ban users compare against.
	out.CurrentlyBanned = len(out.Banned)
	return out, nil
}

func banInfo(r store.Record) control.BanInfo {
	bi := control.BanInfo{
		Jail: r.Jail, Prefix: r.Network(), Addr: r.Addr, Start: r.Start, Until: r.Expiry(), Permanent: r.Permanent(),
		Offences: r.Offences, Failures: r.Failures, Lines: r.Lines, Manual: r.Source == "manual",
		Observed: r.Observed,
	}
	bi.FleetNode, bi.Origin, _ = parseFleetSource(r.Source)
	return bi
}

func (s *service) Ban(ctx context.Context, jail string, prefix netip.Prefix, d time.Duration) (control.BanInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.enabledJail(s.cfg, jail)
	if err != nil {
		return control.BanInfo{}, err
	}
	prefix = sysban.CanonicalPrefix(prefix)
	if why := s.pl.Protects(jail, prefix); why != "" {
		return control.BanInfo{}, fmt.Errorf("%w: %s %s; sysban never bans it", control.ErrBadRequest, prefix, isOrCovers(why))
	}
	if d == 0 {
		d = j.BanTime
	}
	b := sysban.Ban{Jail: jail, Prefix: prefix, Start: time.Now(), Duration: d}
	if prefix.IsSingleIP() {
		b.Addr = prefix.Addr()
	}
	if err := s.store.Record([]store.Record{{Ban: b, Source: "manual"}}); err != nil {
		return control.BanInfo{}, err
	}
	if err := s.backend.Apply(ctx, []sysban.Ban{b}); err != nil {
		return control.BanInfo{}, err
	}
	s.pl.MarkBanned(b)
	s.pl.CountBan(b) // a manual ban is an offence for recidive jails too
	if s.fleet != nil {
		s.fleet.PublishManual(b) // like a jail's ban, with the jail's scope
	}
	s.notifier.Notify(notify.Event{Kind: notify.KindBan, Ban: b, Host: s.host})
	s.log.Info("ban", "jail", jail, "prefix", prefix, "bantime", banTimeString(d), "source", "manual")
	recs, err := s.store.Lookup(prefix)
	if err != nil {
		return control.BanInfo{}, err
	}
	for _, r := range recs {
		if r.Jail == jail && r.Network() == prefix {
			return banInfo(r), nil
		}
	}
	return control.BanInfo{Jail: jail, Prefix: prefix, Addr: b.Addr, Start: b.Start, Until: b.Expiry(), Permanent: b.Permanent(), Manual: true}, nil
}

// fleetBanInfos describes fleet bans this host does not hold, one per
// jail and prefix.
func fleetBanInfos(es []fleet.Entry) []control.BanInfo {
	var out []control.BanInfo
	seen := map[string]bool{}
	for _, e := range es {
		if id := e.Key.Jail + " " + e.Key.Prefix.String(); !seen[id] {
			seen[id] = true
			b := e.Ban()
			out = append(out, control.BanInfo{Jail: b.Jail, Prefix: b.Network(), Addr: b.Addr, Start: b.Start, Until: b.Expiry(),
				Permanent: b.Permanent(), Failures: b.Failures, FleetNode: e.Key.Node, Origin: e.Value.Origin})
		}
	}
	return out
}

// isOrCovers phrases Protects' answer: "is loopback", "covers ignoreip ...".
func isOrCovers(why string) string {
	if strings.HasPrefix(why, "covers ") {
		return why
	}
	return "is " + why
}

// Unban lifts the bans that cover prefix in jail (every jail when ""): its
// own ban and any wider one, so that the address asked for is free; bans
// of narrower prefixes inside it stay.
func (s *service) Unban(ctx context.Context, prefix netip.Prefix, jail string) ([]control.BanInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if jail != "" {
		if _, err := s.enabledJail(s.cfg, jail); err != nil {
			return nil, err
		}
	}
	prefix = sysban.CanonicalPrefix(prefix)
	covering, err := s.store.Lookup(prefix)
	if err != nil {
		return nil, err
	}
	nets := []netip.Prefix{prefix}
	for _, r := range covering {
		if (jail == "" || r.Jail == jail) && !slices.Contains(nets, r.Network()) {
			nets = append(nets, r.Network())
		}
	}
	var fromFleet []fleet.Entry
	if s.fleet != nil && jail == "" {
		// Lifted on every node, and kept lifted: a tombstone, not a
		// delete another node's resync could undo. It lifts the fleet
		// bans covering prefix, as nets here.
		fromFleet = s.fleet.Unban(prefix)
	}
	removed, err := s.store.Remove(jail, nets, "manual")
	if err != nil {
		return nil, err
	}
	// The kernel may hold bans the store lost track of (a ban whose store
	// write failed); lift those too.
	jails := []string{jail}
	if jail == "" {
		jails = jailNames(s.cfg)
	}
	for _, j := range jails {
		if err := s.backend.Remove(ctx, j, nets); err != nil {
			return nil, err
		}
		for _, p := range nets {
			s.pl.Forget(j, p)
		}
	}
	if len(removed) == 0 && len(fromFleet) > 0 {
		// Not in force here (refused by this host's trust rules, or
		// not applied yet), but lifted from every node that has it.
		return fleetBanInfos(fromFleet), nil
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("%w: %s", control.ErrNotBanned, prefix)
	}
	var out []control.BanInfo
	for _, r := range removed {
		s.rec.Unban(r.Jail, metrics.UnbanManual, 1)
		s.notifier.Notify(notify.Event{Kind: notify.KindUnban, Ban: r.Ban, Reason: notify.ReasonManual, Host: s.host})
		s.log.Info("unban", "jail", r.Jail, "prefix", r.Network(), "asked", prefix, "reason", "manual")
		out = append(out, banInfo(r))
	}
	return out, nil
}

func (s *service) UnbanAll(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fleet != nil {
		if n := s.fleet.UnbanAll(); n > 0 {
			s.log.Info("unban all: lifted from the fleet", "addresses", n)
		}
	}
	removed, err := s.store.RemoveJail("", "manual")
	if err != nil {
		return 0, err
	}
	byJail := map[string][]netip.Prefix{}
	for _, r := range removed {
		byJail[r.Jail] = append(byJail[r.Jail], r.Network())
	}
	for jail, addrs := range byJail {
		if err := s.backend.Remove(ctx, jail, addrs); err != nil {
			return 0, err
		}
		for _, a := range addrs {
			s.pl.Forget(jail, a)
		}
		s.rec.Unban(jail, metrics.UnbanManual, len(addrs))
	}
	for _, r := range removed {
		s.notifier.Notify(notify.Event{Kind: notify.KindUnban, Ban: r.Ban, Reason: notify.ReasonManual, Host: s.host})
	}
	s.log.Info("unban all", "bans", len(removed))
	return len(removed), nil
}

func (s *service) Banned(ctx context.Context, prefix netip.Prefix) ([]control.BanInfo, error) {
	var recs []store.Record
	var err error
	if prefix.IsValid() {
		recs, err = s.store.Lookup(prefix)
	} else {
		recs, err = s.store.Due(time.Now())
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]control.BanInfo, 0, len(recs))
	for _, r := range recs {
		if !r.Permanent() && !r.Expiry().After(now) {
			continue
		}
		out = append(out, s.withTraffic(banInfo(r)))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Jail != out[j].Jail {
			return out[i].Jail < out[j].Jail
		}
		return comparePrefixes(out[i].Prefix, out[j].Prefix) < 0
	})
	return out, nil
}

// withTraffic adds what NFLOG saw of the ban's address in its jail.
func (s *service) withTraffic(bi control.BanInfo) control.BanInfo {
	if s.traffic == nil {
		return bi
	}
	addr := bi.Addr
	if !addr.IsValid() {
		addr = bi.Prefix.Addr()
	}
	for _, seen := range s.traffic.Lookup(addr) {
		if seen.Jail == bi.Jail {
			bi.BlockedPackets, bi.LastBlocked = seen.Packets, seen.Last
		}
	}
	return bi
}

// housekeeping moves bans the kernel has expired out of the store (counted
// and announced as unbans) every few seconds, and purges old history hourly.
func (s *service) housekeeping(ctx context.Context, purgeAge time.Duration) {
	expireTick := time.NewTicker(5 * time.Second)
	defer expireTick.Stop()
	purgeTick := time.NewTicker(time.Hour)
	defer purgeTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-expireTick.C:
			expired, err := s.store.Expire(now, 10000)
			if err != nil {
				s.log.Error("expire bans", "err", err)
				continue
			}
			for _, r := range expired {
				s.rec.Unban(r.Jail, metrics.UnbanExpired, 1)
				s.notifier.Notify(notify.Event{Kind: notify.KindUnban, Ban: r.Ban, Reason: notify.ReasonExpired, Host: s.host})
				s.log.Info("unban", "jail", r.Jail, "prefix", r.Network(), "reason", "expired")
			}
		case now := <-purgeTick.C:
			if n, err := s.store.Purge(now.Add(-purgeAge)); err != nil {
				s.log.Error("purge ban history", "err", err)
			} else if n > 0 {
				s.log.Info("purged ban history", "entries", n, "older_than", purgeAge)
			}
		}
	}
}

func (s *service) logCounters() {
	for _, ls := range s.rc.Stats() {
		s.log.Info("listener counters", "listener", ls.Name, "received", ls.Received,
			"parse_errors", ls.ParseErrors, "dropped", ls.Dropped)
	}
	st := s.pl.Stats()
	for _, name := range slices.Sorted(maps.Keys(st.Jails)) {
		js := st.Jails[name]
		s.log.Info("jail counters", "jail", name, "total_failed", js.TotalFailed,
			"total_banned", js.TotalBanned, "currently_banned", js.CurrentlyBanned, "evicted", js.Evicted, "untrusted", js.Untrusted)
	}
	s.log.Info("pipeline counters", "messages", st.Messages, "bans_lost", st.BansLost)
}
