package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/control"
	"github.com/sysban/sysban/metrics"
	"github.com/sysban/sysban/nflog"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
	"github.com/sysban/sysban/store"
)

// Compile-time checks that the stages fit the seams they are wired into.
var (
	_ pipeline.OffenceCounter = (*store.Store)(nil)
	_ receiver.Handler        = (*pipeline.Pipeline)(nil)
	_ control.Daemon          = (*service)(nil)
	_ nft.BanSource           = storeSource{}
	_ nflog.Sink              = (*nflogSink)(nil)
)

// Main is the daemon: Run loads the config, builds the nftables table, the
// ban store, the pipeline, the listeners, the control API and metrics, and
// serves until ctx is done.
type Main struct {
	ConfigPath string
	// ObserveAll puts every jail in observe mode (sysban run --observe).
	ObserveAll bool
	Environ    []string
	Stdout     io.Writer
	Stderr     io.Writer
}

// configError marks errors the user fixes in the config (exit code 2).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// load reads and validates the configuration, including what only the
// pipeline can check (filter modes, vars).
func (m *Main) load() (*config.Config, error) {
	cfg, err := config.Load(m.ConfigPath, m.Environ)
	if err != nil {
		return nil, &configError{err}
	}
	if m.ObserveAll {
		for i := range cfg.Jails {
			cfg.Jails[i].Observe = true
		}
	}
	if err := pipeline.Validate(cfg.Pipeline()); err != nil {
		return nil, &configError{fmt.Errorf("config: %w", err)}
	}
	// The certificate files are read now so `sysban check` reports them.
	if cfg.Listen.TLSFiles.CertFile != "" {
		if _, err := receiver.TLSConfig(cfg.Listen.TLSFiles); err != nil {
			return nil, &configError{fmt.Errorf("config: listen.tlscert: %w", err)}
		}
	}
	if cfg.Fleet != nil {
		if err := cfg.Fleet.Load(); err != nil {
			return nil, &configError{fmt.Errorf("config: %s: %w", m.ConfigPath, err)}
		}
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
		fmt.Fprintf(m.Stdout, "listen  %-40s provenance: %s\n", s.Name(), s.Provenance(cfg.Listen.TLSForwarders))
	}
	for _, j := range cfg.Jails {
		state := "disabled"
		if j.Enabled {
			state = "enabled"
		}
		fmt.Fprintf(m.Stdout, "jail    %-16s %-8s filter=%s maxretry=%d findtime=%s bantime=%s rule=%s provenance=%s%s\n",
			j.Name, state, j.Filter, j.MaxRetry, j.FindTime, banTimeString(j.BanTime), j.Rule(), j.Provenance, trustString(cfg, j.Filter))
	}
	if n := cfg.NFLOG; n.Watching() {
		fmt.Fprintf(m.Stdout, "nflog   group=%d rate=%d/s snaplen=%d banned=%v trapports=tcp%v,udp%v\n",
			n.Group, n.Rate, n.Snaplen, n.Banned, n.TrapTCP, n.TrapUDP)
	}
	checkFleet(m.Stdout, cfg.Fleet)
	return 0
}

// trustString is " trust=users" for a filter that declares whom it
// trusts.
func trustString(cfg *config.Config, filter string) string {
	t := pipeline.BuiltinFilters()[filter].Trust
	if f, ok := cfg.Filters[filter]; ok {
		t = f.Trust
	}
	if len(t.Users) == 0 {
		return ""
	}
	return " trust=" + strings.Join(t.Users, ",")
}

func banTimeString(d time.Duration) string {
	if d == sysban.Permanent {
		return "permanent"
	}
	return d.String()
}

// Run serves until ctx is cancelled or a stage fails.
func (m *Main) Run(ctx context.Context) error {
	cfg, err := m.load()
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, m.Stderr)
	started := time.Now()
	sd, err := newSystemd(m.Environ, os.Getpid())
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	rec, err := metrics.New(reg, Version(), nil, nil)
	if err != nil {
		return err
	}

	// NFLOG is opened before the ruleset logs to it: a kernel without
	// nfnetlink_log, or a group another program reads, stops the start
	// here with a clear error, before any rule is changed.
	logRules := nftNFLOG(cfg)
	var watcher *nflog.Reader
	if logRules != nil {
		if watcher, err = nflog.Open(nflog.Options{
			Group:   cfg.NFLOG.Group,
			Snaplen: uint32(cfg.NFLOG.Snaplen),
			Logger:  logger.With("component", "nflog"),
		}); err != nil {
			return err
		}
		defer watcher.Close()
	}

	backend, err := nft.Open(nft.Options{
		Table:        cfg.NFT.Table,
		Priority:     &cfg.NFT.Priority,
		Logger:       logger.With("component", "nft"),
		ObserveWrite: rec.ObserveNFTWrite,
	})
	if err != nil {
		return err
	}
	defer backend.Close()
	if err := backend.SetupNFLOG(ctx, cfg.Rules(), logRules); err != nil {
		return err
	}

	st, err := store.Open(filepath.Join(cfg.State.Dir, store.FileName), store.Options{Logger: logger.With("component", "store")})
	if err != nil {
		return err
	}
	defer st.Close()
	// Bans of jails no longer in the config are lifted, like on reload.
	if n, err := dropRemovedJails(st, cfg); err != nil {
		return err
	} else if n > 0 {
		logger.Info("lifted bans of jails no longer enabled", "bans", n)
	}
	// Straight to the kernel, not through the journal: a restart is not a
	// new offence.
	restored, err := st.Restore(ctx, backend, time.Now(), 10000)
	if err != nil {
		return err
	}

	host := hostname()
	first, err := buildNotifier(cfg, logger, host)
	if err != nil {
		return &configError{err}
	}
	notifier := &notifierRef{}
	notifier.swap(first)
	defer func() { notifier.p.Load().Close() }()

	protected, err := hostPrefixes()
	if err != nil {
		// Without our own addresses we could ban ourselves; refuse to start.
		return fmt.Errorf("list interface addresses: %w", err)
	}
	journal := store.NewJournal(st, backend)
	// The fleet (no section: no NATS at all): bans this host decides are
	// published beside the journal; the fleet's bans come in through
	// fleetLocal.
	fr, err := startFleet(ctx, cfg, st, backend, protected, reg, logger.With("component", "fleet"))
	if err != nil {
		return err
	}
	defer fr.close()
	chain := &announcer{next: fr.publisher(journal), notifier: notifier, host: host}
	pl, err := pipeline.New(cfg.Pipeline(), chain, pipeline.Options{
		Protected: protected,
		Logger:    logger.With("component", "pipeline"),
		Offences:  st, // bantime increment counts the store's ban history
		Decided:   fr.decided(),
	})
	if err != nil {
		return &configError{err}
	}
	fr.local.pl.Store(pl)
	// A daemon with no listener counts nothing, so it need not remember
	// the bans in force (fleetLocal.deaf says why that matters).
	if len(cfg.Listen.Specs) > 0 {
		if due, err := st.Due(time.Now()); err == nil {
			for _, r := range due {
				pl.MarkBanned(r.Ban)
			}
		}
	}
	if w := pl.RecidiveWindow(); w > 0 {
		// Recidive counts live in memory; replay the store's recent bans
		// so a restart does not forgive repeat offenders.
		if hist, err := st.BansSince(time.Now().Add(-w)); err != nil {
			logger.Warn("recidive: ban history unreadable; counting starts afresh", "err", err)
		} else {
			bans := make([]sysban.Ban, len(hist))
			for i, e := range hist {
				bans[i] = sysban.Ban{Jail: e.Jail, Prefix: e.Prefix(), Addr: e.Addr, Start: e.Time, Duration: e.Duration, Failures: e.Failures}
			}
			if n := pl.SeedRecidive(bans); n > 0 {
				logger.Info("recidive: counted bans from before the restart", "bans", n, "window", w)
			}
		}
	}

	// The receiver before the control socket: it creates /run/sysban 0755
	// for the syslog socket; control would create a missing one 0700.
	var tlsConfig *tls.Config
	if cfg.Listen.TLSFiles.CertFile != "" {
		if tlsConfig, err = receiver.TLSConfig(cfg.Listen.TLSFiles); err != nil {
			return &configError{err}
		}
	}
	rc, err := receiver.New(cfg.Listen.Specs, pl, receiver.Options{
		Allow:                   cfg.Listen.Allow,
		ReadBuffer:              cfg.Listen.ReadBuffer,
		ReservedPrograms:        []string{nflog.AppName},
		MaxMessageSize:          cfg.Listen.MaxMessageSize,
		MaxConnections:          cfg.Listen.MaxConnections,
		MaxConnectionsPerSource: cfg.Listen.MaxConnectionsPerSource,
		IdleTimeout:             cfg.Listen.IdleTimeout,
		FrameTimeout:            cfg.Listen.FrameTimeout,
		FirstFrameTimeout:       cfg.Listen.FirstFrameTimeout,
		Forwarders:              cfg.Listen.Forwarders,
		TLSForwarders:           cfg.Listen.TLSForwarders,
		SocketGroup:             max(cfg.Listen.UnixGroup, 0),
		HandshakeTimeout:        cfg.Listen.HandshakeTimeout,
		TLS:                     tlsConfig,
		RatePerSender:           cfg.Listen.RatePerSender,
		RateBurst:               cfg.Listen.RateBurst,
		RateMaxSenders:          cfg.Listen.RateMaxSenders,
		RemoteStreamOnly:        cfg.Listen.RemoteStreamOnly,
		JournalPrograms:         cfg.Listen.JournalPrograms,
		Logger:                  logger.With("component", "receiver"),
	})
	if err != nil {
		return err
	}
	rec.SetSources(rc, pl)
	rec.Reload(true, started)

	svc := &service{
		configPath: m.ConfigPath,
		environ:    m.Environ,
		observeAll: m.ObserveAll,
		log:        logger,
		started:    started,
		backend:    backend,
		store:      st,
		pl:         pl,
		rc:         rc,
		rec:        rec,
		notifier:   notifier,
		host:       host,
		cfg:        cfg,
		fleet:      fr.node,
		own:        protected,
		lastReload: control.ReloadResult{OK: true, Time: started, Sources: cfg.Sources, Jails: jailNames(cfg)},
	}
	if watcher != nil {
		svc.traffic = nflog.NewTraffic(0)
	}
	ctl, err := control.NewServer(cfg.Control.Socket, svc, logger.With("component", "control"))
	if err != nil {
		rc.Close()
		return err
	}
	// Bound now, so a taken port stops the start with a clear error and
	// the endpoint answers as soon as "started" is logged.
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			rc.Close()
			ctl.Close()
			return fmt.Errorf("metrics: listen %s: %w", cfg.Metrics.Listen, err)
		}
	}

	// Lifetimes: the receiver stops first so the pipeline can flush every
	// ban decided from messages already received; the rest stops after.
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	defer stopPipe()
	svcCtx, stopSvc := context.WithCancel(context.Background())
	defer stopSvc()

	recvDone := make(chan error, 1)
	pipeDone := make(chan error, 1)
	svcErr := make(chan error, 4)
	go func() { recvDone <- rc.Run(recvCtx) }()
	go func() { pipeDone <- pl.Run(pipeCtx) }()
	go func() { svcErr <- wrapErr("control", ctl.Serve(svcCtx)) }()
	if metricsLn != nil {
		go func() {
			svcErr <- wrapErr("metrics", metrics.ServeListener(svcCtx, metricsLn, reg, logger.With("component", "metrics")))
		}()
	}
	go func() {
		// Guard logs each repair itself. It starts after the restore above,
		// so the restore's bans are not mistaken for missing ones, and on
		// an enforcer after its first fleet resync (bounded): a late
		// joiner's element checks would read its filling sets for nothing.
		fr.joined(svcCtx, fleetJoinGuardWait)
		svcErr <- wrapErr("nft guard", backend.Guard(svcCtx, storeSource{st}, nft.GuardOptions{NFLOG: logRules, OnHeal: rec.GuardRepaired}))
	}()
	if watcher != nil {
		// Probes feed the pipeline like a listener, so the watcher stops
		// with the listeners. A failed watcher costs counts and probes,
		// not bans: it is logged and the daemon goes on.
		sink := &nflogSink{rec: rec, traffic: svc.traffic, pl: pl, svc: svc, log: logger.With("component", "nflog")}
		go func() {
			if err := watcher.Run(recvCtx, sink); err != nil {
				logger.Error("nflog: watching stopped; banned-packet counts and port probes are no longer seen (bans are unaffected)", "err", err)
			}
		}()
	}
	go svc.housekeeping(svcCtx, cfg.State.PurgeAge)
	fr.start(svcCtx)
	go sd.runWatchdog(svcCtx, workerHealth(pl), logger.With("component", "systemd"))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var names, provenance []string
	for i, a := range rc.Addrs() {
		names = append(names, a.Network()+":"+a.String())
		provenance = append(provenance, cfg.Listen.Specs[i].Name()+": "+cfg.Listen.Specs[i].Provenance(cfg.Listen.TLSForwarders))
	}
	logger.Info("sysban started", "version", Version(), "config", strings.Join(cfg.Sources, " + "),
		"listeners", names, "jails", ruleNames(cfg), "table", "inet "+cfg.NFT.Table,
		"bans_restored", restored, "control", cfg.Control.Socket, "metrics", cfg.Metrics.Listen, "provenance", provenance)

	// About 10 MiB of an idle daemon's RSS was start-up's.
	returnStartupMemory(logger)
	// Ready only now: listeners bound, table built, bans restored.
	if err := sd.notify("READY=1\nSTATUS=serving"); err != nil {
		logger.Warn("systemd: readiness not sent", "err", err)
	}
	var runErr error
loop:
	for {
		select {
		case <-hup:
			_ = sd.notify(sdReloading())
			res, err := svc.Reload(ctx)
			_ = sd.notify("READY=1")
			if err != nil {
				logger.Error("SIGHUP: reload refused; the old config keeps running", "err", err)
			} else {
				logger.Info("SIGHUP: reloaded", "jails", res.Jails, "removed", res.Removed)
			}
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
		case err := <-svcErr:
			if err != nil {
				runErr = err
				break loop
			}
		}
	}
	_ = sd.notify("STOPPING=1")
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
	stopSvc()
	fr.wait() // its outbox is written before the node closes
	svc.logCounters()
	logger.Info("sysban stopped; bans stay in the kernel and the store", "table", "inet "+cfg.NFT.Table)
	return runErr
}
