package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// Compile-time checks that the stages fit the seams they are wired into.
var (
	_ pipeline.Banner  = (*nft.Backend)(nil)
	_ receiver.Handler = (*pipeline.Pipeline)(nil)
)

// Main is the daemon: Run loads the config, builds the nftables table,
// the pipeline and the listeners, and serves until ctx is done.
type Main struct {
	ConfigPath string
	Environ    []string
	Stdout     io.Writer
	Stderr     io.Writer
}

// configError marks errors the user fixes in the config (exit code 2).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func (m *Main) load() (*config.Config, error) {
	cfg, err := config.Load(m.ConfigPath, m.Environ)
	if err != nil {
		return nil, &configError{err}
	}
	return cfg, nil
}

// Check validates the configuration and prints a summary; exit code 0 or 2.
func (m *Main) Check() int {
	cfg, err := m.load()
	if err != nil {
		fmt.Fprintf(m.Stderr, "sysban: %v\n", err)
		return 2
	}
	fmt.Fprintf(m.Stdout, "config ok (%s)\n", strings.Join(cfg.Sources, " + "))
	for _, s := range cfg.Listen.Specs {
		fmt.Fprintf(m.Stdout, "listen  %s\n", s.Name())
	}
	for _, j := range cfg.Jails {
		state := "disabled"
		if j.Enabled {
			state = "enabled"
		}
		bantime := j.BanTime.String()
		if j.BanTime == sysban.Permanent {
			bantime = "permanent"
		}
		fmt.Fprintf(m.Stdout, "jail    %-16s %-8s filter=%s maxretry=%d findtime=%s bantime=%s rule=%s\n",
			j.Name, state, j.Filter, j.MaxRetry, j.FindTime, bantime, j.Rule())
	}
	return 0
}

// Run serves until ctx is cancelled or a stage fails.
func (m *Main) Run(ctx context.Context) error {
	cfg, err := m.load()
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, m.Stderr)

	backend, err := nft.Open(nft.Options{
		Table:    cfg.NFT.Table,
		Priority: &cfg.NFT.Priority,
		Logger:   logger.With("component", "nft"),
	})
	if err != nil {
		return err
	}
	defer backend.Close()
	if err := backend.Setup(ctx, cfg.Rules()); err != nil {
		return err
	}

	protected, err := hostPrefixes()
	if err != nil {
		// Without our own addresses we could ban ourselves; refuse to start.
		return fmt.Errorf("list interface addresses: %w", err)
	}
	pl, err := pipeline.New(cfg.Pipeline(), backend, pipeline.Options{
		Protected: protected,
		Logger:    logger.With("component", "pipeline"),
	})
	if err != nil {
		return &configError{err}
	}
	rc, err := receiver.New(cfg.Listen.Specs, pl, receiver.Options{
		Allow:          cfg.Listen.Allow,
		ReadBuffer:     cfg.Listen.ReadBuffer,
		MaxMessageSize: cfg.Listen.MaxMessageSize,
		MaxConnections: cfg.Listen.MaxConnections,
		IdleTimeout:    cfg.Listen.IdleTimeout,
		Logger:         logger.With("component", "receiver"),
	})
	if err != nil {
		return err
	}

	// SIGHUP's default action would kill the daemon; until live reload
	// lands, say so instead of dying.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// The receiver stops first so that the pipeline can flush every ban
	// decided from messages already received.
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	defer stopPipe()
	recvDone := make(chan error, 1)
	pipeDone := make(chan error, 1)
	go func() { recvDone <- rc.Run(recvCtx) }()
	go func() { pipeDone <- pl.Run(pipeCtx) }()

	var names []string
	for _, a := range rc.Addrs() {
		names = append(names, a.Network()+":"+a.String())
	}
	var jails []string
	for _, r := range cfg.Rules() {
		jails = append(jails, r.String())
	}
	logger.Info("sysban started", "version", Version(), "config", strings.Join(cfg.Sources, " + "),
		"listeners", names, "jails", jails, "table", "inet "+cfg.NFT.Table)

	var runErr error
loop:
	for {
		select {
		case <-hup:
			logger.Warn("SIGHUP: live reload is not implemented yet; restart sysban to apply a new config")
		case err := <-recvDone:
			recvDone = nil
			if err != nil {
				runErr = fmt.Errorf("receiver: %w", err)
			}
			break loop
		case err := <-pipeDone:
			pipeDone = nil
			if err != nil {
				runErr = fmt.Errorf("pipeline: %w", err)
			}
			break loop
		}
	}
	stopRecv()
	if recvDone != nil {
		if err := <-recvDone; err != nil && runErr == nil {
			runErr = fmt.Errorf("receiver: %w", err)
		}
	}
	stopPipe()
	if pipeDone != nil {
		if err := <-pipeDone; err != nil && runErr == nil {
			runErr = fmt.Errorf("pipeline: %w", err)
		}
	}
	for _, ls := range rc.Stats() {
		logger.Info("listener counters", "listener", ls.Name, "received", ls.Received,
			"parse_errors", ls.ParseErrors, "dropped", ls.Dropped)
	}
	st := pl.Stats()
	for _, name := range sortedKeys(st.Jails) {
		js := st.Jails[name]
		logger.Info("jail counters", "jail", name, "total_failed", js.TotalFailed,
			"total_banned", js.TotalBanned, "currently_banned", js.CurrentlyBanned, "evicted", js.Evicted)
	}
	logger.Info("sysban stopped; bans stay in the kernel", "table", "inet "+cfg.NFT.Table,
		"messages", st.Messages, "bans_lost", st.BansLost)
	return runErr
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
