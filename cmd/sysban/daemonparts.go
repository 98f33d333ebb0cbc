package main

// The pieces Run (daemon.go) builds from the config or the host: the NFLOG
// ruleset and the sink of its events, the notifier, the logger, the host's
// own addresses, and the clean-up of jails a config dropped.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/metrics"
	"github.com/sysban/sysban/nflog"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/notify"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/store"
)

// nftNFLOG is the NFLOG part of the ruleset cfg asks for; nil when it
// watches nothing.
func nftNFLOG(cfg *config.Config) *nft.NFLOG {
	n := cfg.NFLOG
	if !n.Watching() {
		return nil
	}
	return &nft.NFLOG{
		Group:   n.Group,
		Rate:    uint64(n.Rate),
		Snaplen: uint32(n.Snaplen),
		Banned:  n.Banned,
		TrapTCP: n.TrapTCP,
		TrapUDP: n.TrapUDP,
	}
}

// nflogSink takes the NFLOG watcher's events: probes go to the pipeline
// like syslog messages; packets of banned addresses are counted per jail
// (metrics) and per address (traffic).
type nflogSink struct {
	rec     *metrics.Recorder
	traffic *nflog.Traffic
	pl      *pipeline.Pipeline
	svc     *service
	log     *slog.Logger
}

func (s *nflogSink) Handle(m *sysban.Message) { s.pl.Handle(m) }

// BannedPacket counts a packet of jail. Only enabled jails count, which
// bounds the metric's labels whatever another rule logs to the group.
func (s *nflogSink) BannedPacket(jail string, p nflog.Packet, at time.Time) {
	if _, err := s.svc.enabledJail(s.svc.config(), jail); err != nil {
		s.log.Debug("nflog: packet logged for a jail not enabled; ignored", "jail", jail, "src", p.Src)
		return
	}
	s.rec.BannedPackets(jail, 1)
	s.traffic.Add(jail, p.Src, at)
}

func wrapErr(what string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// dropRemovedJails lifts the stored bans of jails the config no longer
// enables; the nft Setup already dropped their sets.
func dropRemovedJails(st *store.Store, cfg *config.Config) (int, error) {
	due, err := st.Due(time.Now())
	if err != nil {
		return 0, err
	}
	enabled := map[string]bool{}
	for _, j := range cfg.EnabledJails() {
		enabled[j.Name] = true
	}
	gone := map[string]bool{}
	for _, r := range due {
		if !enabled[r.Jail] {
			gone[r.Jail] = true
		}
	}
	n := 0
	for jail := range gone {
		removed, err := st.RemoveJail(jail, "reload")
		if err != nil {
			return n, err
		}
		n += len(removed)
	}
	return n, nil
}

// buildNotifier builds the actions the config defines and maps jails to them.
func buildNotifier(cfg *config.Config, logger *slog.Logger, host string) (*notify.Dispatcher, error) {
	whois := notify.NewWhois(cfg.Notify.Whois)
	actions := map[string]notify.Action{}
	for name, spec := range cfg.Actions {
		a, err := spec.Build(notify.BuildOptions{Logger: logger.With("component", "notify", "action", name), Whois: whois, Hostname: host})
		if err != nil {
			return nil, fmt.Errorf("config: actions.%s: %w", name, err)
		}
		actions[name] = a
	}
	jailActions := map[string][]string{}
	for _, j := range cfg.EnabledJails() {
		if len(j.Actions) > 0 {
			jailActions[j.Name] = j.Actions
		}
	}
	return notify.New(actions, jailActions, notify.Options{
		QueueSize:    cfg.Notify.QueueSize,
		DrainTimeout: cfg.Notify.DrainTimeout,
		Logger:       logger.With("component", "notify"),
	})
}

func ruleNames(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Rules() {
		out = append(out, r.String())
	}
	return out
}

func jailNames(cfg *config.Config) []string {
	var out []string
	for _, j := range cfg.EnabledJails() {
		out = append(out, j.Name)
	}
	return out
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// hostPrefixes returns the host's own addresses as single-address prefixes,
// so that no log line can make sysban ban the machine it protects.
func hostPrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = sysban.CanonicalAddr(ip)
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}
