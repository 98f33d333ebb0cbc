package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// ListenerSource gives a snapshot of the listeners' counters;
// *receiver.Receiver implements it.
type ListenerSource interface {
	Stats() []receiver.ListenerStats
}

// PipelineSource gives a snapshot of the pipeline's counters;
// *pipeline.Pipeline implements it.
type PipelineSource interface {
	Stats() pipeline.Stats
}

// Unban reasons, the values of sysban_unbans_total's reason label.
const (
	UnbanExpired = "expired" // the ban's time ran out
	UnbanManual  = "manual"  // sysban unban
	UnbanReload  = "reload"  // the jail left the configuration
)

// nftOps are the nftables writes the nft package makes (Backend.Setup,
// Apply and Remove); their latency series exist from the start so that
// dashboards and alerts see zeros rather than nothing.
func nftOps() []string { return []string{"setup", "apply", "remove"} }

// dropReasons are the receiver's drop reasons, exported as zeros before
// the first drop for the same reason.
func dropReasons() []string { return receiver.Reasons() }

func unbanReasons() []string { return []string{UnbanExpired, UnbanManual, UnbanReload} }

// Recorder owns sysban's metrics on one registry. The snapshot metrics are
// read from the sources at each scrape; the daemon reports the events no
// stage counts through Unban, ObserveNFTWrite and Reload. Its methods are
// safe for concurrent use.
type Recorder struct {
	nftWrite     *prometheus.HistogramVec
	guardRepairs prometheus.Counter
	reloadOK     prometheus.Gauge
	reloadTime   prometheus.Gauge

	mu        sync.Mutex
	listeners ListenerSource
	pipe      PipelineSource
	unbans    map[[2]string]uint64 // jail, reason -> count; bounded by jails x reasons, both daemon-chosen
	// bannedPackets: jail -> packets of banned addresses the kernel logged
	// (nflog). The daemon passes only configured jails, so it is bounded.
	bannedPackets map[string]uint64

	received, dropped, parseErrors, connections                 *prometheus.Desc
	failures, bans, banned, unbansDesc, evicted, untrusted      *prometheus.Desc
	queueDepth, unrouted, banErrors, bansLost                   *prometheus.Desc
	bannedPacketsDesc                                           *prometheus.Desc
	bansByPrefix, narrowed, observed, escalated, filterTimeouts *prometheus.Desc
	buildInfo                                                   *prometheus.Desc
	version                                                     string
}

// New registers sysban's metrics on reg. listeners and pipe are read at
// every scrape; a nil source exports nothing of its own until SetSources
// provides it (the nft backend, which reports to ObserveNFTWrite, is
// opened before the pipeline and the receiver exist).
func New(reg prometheus.Registerer, version string, listeners ListenerSource, pipe PipelineSource) (*Recorder, error) {
	r := &Recorder{
		listeners: listeners,
		pipe:      pipe,
		version:   version,
		unbans:    make(map[[2]string]uint64),

		bannedPackets: make(map[string]uint64),
		nftWrite: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sysban_nft_write_seconds",
			Help: "Time taken by one nftables netlink batch, by operation (setup, apply, remove).",
			// 100µs to ~6.5s: a single ban is well under a millisecond,
			// a setup carrying a large ban list takes seconds.
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, []string{"op"}),
		guardRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sysban_nft_guard_repairs_total",
			Help: "Times the nft guard found sysban's table damaged outside sysban and rebuilt it.",
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysban_reload_success",
			Help: "Whether the last configuration load succeeded (1) or was refused (0).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sysban_reload_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
		received:    prometheus.NewDesc("sysban_messages_received_total", "Syslog messages received and parsed, by listener.", []string{"listener"}, nil),
		dropped:     prometheus.NewDesc("sysban_messages_dropped_total", "Syslog messages or frames dropped, by listener and reason.", []string{"listener", "reason"}, nil),
		parseErrors: prometheus.NewDesc("sysban_parse_errors_total", "Messages delivered with a parse error (raw text kept), by listener.", []string{"listener"}, nil),
		connections: prometheus.NewDesc("sysban_listener_connections", "Stream connections open now, by listener.", []string{"listener"}, nil),
		failures:    prometheus.NewDesc("sysban_failures_total", "Failures counted, by jail (including from already banned addresses).", []string{"jail"}, nil),
		bans:        prometheus.NewDesc("sysban_bans_total", "Bans kept (recorded in the store, then in the kernel), by jail.", []string{"jail"}, nil),
		banned:      prometheus.NewDesc("sysban_banned", "Addresses banned now, by jail.", []string{"jail"}, nil),
		unbansDesc:  prometheus.NewDesc("sysban_unbans_total", "Bans lifted, by jail and reason (expired, manual, reload).", []string{"jail", "reason"}, nil),
		evicted:     prometheus.NewDesc("sysban_tracked_evicted_total", "Failing addresses dropped from tracking because maxtracked was reached, by jail.", []string{"jail"}, nil),
		untrusted:   prometheus.NewDesc("sysban_failures_untrusted_total", "Failures dropped because their origin was not one the filter trusts (or missing under provenance: require), by jail.", []string{"jail"}, nil),
		queueDepth:  prometheus.NewDesc("sysban_queue_depth", "Bans decided and not yet kept: in the bounded ban queue or the batch being recorded.", nil, nil),
		unrouted:    prometheus.NewDesc("sysban_messages_unrouted_total", "Messages whose program no enabled jail's filter reads.", nil, nil),
		banErrors:   prometheus.NewDesc("sysban_ban_errors_total", "Failed nftables ban batches (retried).", nil, nil),
		bansLost:    prometheus.NewDesc("sysban_bans_lost_total", "Bans given up on after retries or at shutdown.", nil, nil),
		bannedPacketsDesc: prometheus.NewDesc("sysban_banned_packets_total",
			"Packets of banned addresses the kernel logged through NFLOG before dropping them, by jail (0 unless nflog.banned is on; each log rule is rate-limited).",
			[]string{"jail"}, nil),
		bansByPrefix: prometheus.NewDesc("sysban_bans_by_prefix_total",
			"Bans kept, by jail, family (ipv4, ipv6) and prefix length (32 and 128: single addresses).", []string{"jail", "family", "bits"}, nil),
		narrowed: prometheus.NewDesc("sysban_bans_narrowed_total",
			"Prefix bans made narrower than the jail's prefix because it covered a protected address (ignoreip, own, allowed sender, loopback), by jail.", []string{"jail"}, nil),
		observed: prometheus.NewDesc("sysban_bans_observed_total",
			"Bans decided and recorded in observe mode, not enforced (sysban_bans_total has them too), by jail.", []string{"jail"}, nil),
		filterTimeouts: prometheus.NewDesc("sysban_filter_timeouts_total",
			"Matches of backtracking patterns (filters with engine backtrack) that ran out of their matchtimeout and counted as no match, by filter.", []string{"filter"}, nil),
		escalated: prometheus.NewDesc("sysban_escalations_total",
			"Network bans decided by escalation (several prefix bans inside one network within the jail's window), by jail.", []string{"jail"}, nil),
		buildInfo: prometheus.NewDesc("sysban_build_info", "Always 1; the version label says which sysban runs.", []string{"version"}, nil),
	}
	for _, op := range nftOps() {
		r.nftWrite.WithLabelValues(op)
	}
	for _, c := range []prometheus.Collector{r.nftWrite, r.guardRepairs, r.reloadOK, r.reloadTime, snapshot{r}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return r, nil
}

// SetSources replaces the sources read at scrape time: at start once the
// stages exist, and after a reload that rebuilt one of them.
func (r *Recorder) SetSources(listeners ListenerSource, pipe PipelineSource) {
	r.mu.Lock()
	r.listeners, r.pipe = listeners, pipe
	r.mu.Unlock()
}

// Unban counts n bans of jail lifted for reason (UnbanExpired,
// UnbanManual, UnbanReload).
func (r *Recorder) Unban(jail, reason string, n int) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	r.unbans[[2]string{jail, reason}] += uint64(n)
	r.mu.Unlock()
}

// BannedPackets counts n logged packets of addresses banned in jail. The
// nflog reader's events feed it; jail must be a configured jail.
func (r *Recorder) BannedPackets(jail string, n int) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	r.bannedPackets[jail] += uint64(n)
	r.mu.Unlock()
}

// ObserveNFTWrite records one nftables batch: its operation ("setup",
// "apply", "remove"), how long it took and how many elements it carried.
// It has the shape of the nft package's write hook.
func (r *Recorder) ObserveNFTWrite(op string, d time.Duration, n int) {
	r.nftWrite.WithLabelValues(op).Observe(d.Seconds())
}

// GuardRepaired counts one repair of the nftables table; it has the shape
// of nft.GuardOptions.OnHeal (the reason and ban count are logged there).
func (r *Recorder) GuardRepaired(reason string, restored int) {
	r.guardRepairs.Inc()
}

// Reload records a configuration load (the first one at start, then every
// reload): ok says whether it was accepted, at when it happened.
func (r *Recorder) Reload(ok bool, at time.Time) {
	if !ok {
		r.reloadOK.Set(0)
		return
	}
	r.reloadOK.Set(1)
	r.reloadTime.Set(float64(at.UnixNano()) / 1e9)
}

// snapshot is the collector of the metrics read from the sources. It is
// a separate type so Recorder's exported method set stays the daemon's API.
type snapshot struct{ r *Recorder }

func (s snapshot) Describe(ch chan<- *prometheus.Desc) {
	r := s.r
	for _, d := range []*prometheus.Desc{
		r.received, r.dropped, r.parseErrors, r.connections,
		r.failures, r.bans, r.banned, r.unbansDesc, r.evicted, r.untrusted,
		r.queueDepth, r.unrouted, r.banErrors, r.bansLost, r.bannedPacketsDesc, r.buildInfo,
		r.bansByPrefix, r.narrowed, r.observed, r.escalated, r.filterTimeouts,
	} {
		ch <- d
	}
}

func (s snapshot) Collect(ch chan<- prometheus.Metric) {
	r := s.r
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(r.buildInfo, 1, r.version)

	r.mu.Lock()
	listeners, pipe := r.listeners, r.pipe
	unbans := make(map[[2]string]uint64, len(r.unbans))
	for k, v := range r.unbans {
		unbans[k] = v
	}
	bannedPackets := maps.Clone(r.bannedPackets)
	r.mu.Unlock()

	// The sources are read without the lock: a Stats call may take a
	// while (the pipeline prunes expired state) and must not hold up
	// Unban from the daemon's hot paths.
	if listeners != nil {
		for _, ls := range listeners.Stats() {
			counter(r.received, ls.Received, ls.Name)
			counter(r.parseErrors, ls.ParseErrors, ls.Name)
			gauge(r.connections, float64(ls.Connections), ls.Name)
			reasons := dropReasons()
			for _, reason := range reasons {
				counter(r.dropped, ls.Dropped[reason], ls.Name, reason)
			}
			for _, reason := range slices.Sorted(maps.Keys(ls.Dropped)) {
				if !known(reasons, reason) {
					counter(r.dropped, ls.Dropped[reason], ls.Name, reason)
				}
			}
		}
	}

	if pipe != nil {
		st := pipe.Stats()
		gauge(r.queueDepth, float64(st.Queued))
		counter(r.unrouted, st.Unrouted)
		counter(r.banErrors, st.BanErrors)
		counter(r.bansLost, st.BansLost)
		for _, filter := range slices.Sorted(maps.Keys(st.FilterTimeouts)) {
			counter(r.filterTimeouts, st.FilterTimeouts[filter], filter)
		}
		for _, jail := range slices.Sorted(maps.Keys(st.Jails)) {
			js := st.Jails[jail]
			counter(r.failures, js.TotalFailed, jail)
			counter(r.bans, js.TotalBanned, jail)
			gauge(r.banned, float64(js.CurrentlyBanned), jail)
			counter(r.evicted, js.Evicted, jail)
			counter(r.untrusted, js.Untrusted, jail)
			counter(r.narrowed, js.Narrowed, jail)
			counter(r.observed, js.Observed, jail)
			counter(r.escalated, js.Escalated, jail)
			for _, pl := range slices.SortedFunc(maps.Keys(js.BansByPrefix), comparePrefixLen) {
				counter(r.bansByPrefix, js.BansByPrefix[pl], jail, pl.Family, strconv.Itoa(pl.Bits))
			}
			// Every running jail has its series, zero until used.
			if _, ok := bannedPackets[jail]; !ok {
				bannedPackets[jail] = 0
			}
			for _, reason := range unbanReasons() {
				k := [2]string{jail, reason}
				if _, ok := unbans[k]; !ok {
					unbans[k] = 0
				}
			}
		}
	}
	// Jails removed by a reload keep their unban counts: counters must not
	// vanish while Prometheus still computes rates over them.
	for k, v := range unbans {
		counter(r.unbansDesc, v, k[0], k[1])
	}
	for jail, v := range bannedPackets {
		counter(r.bannedPacketsDesc, v, jail)
	}
}

func known(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Handler serves reg's metrics in the Prometheus exposition formats.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Serve listens on addr (host:port) and serves /metrics until ctx is done.
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen: %w", err)
	}
	return ServeListener(ctx, ln, reg, log)
}

// ServeListener is Serve on a listener of the caller's (port 0 in tests).
// It closes ln when it returns.
func ServeListener(ctx context.Context, ln net.Listener, reg *prometheus.Registry, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg, log))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stopped := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	err := srv.Serve(ln)
	close(done)
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
}

// slogPrinter adapts a *slog.Logger to promhttp's Logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: scrape: " + fmt.Sprint(v...)) }

func comparePrefixLen(a, b pipeline.PrefixLen) int {
	if a.Family != b.Family {
		return strings.Compare(a.Family, b.Family)
	}
	return a.Bits - b.Bits
}
