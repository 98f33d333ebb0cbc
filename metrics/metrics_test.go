package metrics

import (
	"bufio"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// fakeSources stand in for the receiver and the pipeline: the interfaces
// are the seam, and the test moves their counters at will.
type fakeSources struct {
	mu        sync.Mutex
	listeners []receiver.ListenerStats
	pipe      pipeline.Stats
}

func (f *fakeSources) set(fn func(*fakeSources)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

type fakeListeners struct{ *fakeSources }

func (f fakeListeners) Stats() []receiver.ListenerStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]receiver.ListenerStats, len(f.listeners))
	for i, l := range f.listeners {
		l.Dropped = maps.Clone(l.Dropped)
		out[i] = l
	}
	return out
}

type fakePipeline struct{ *fakeSources }

func (f fakePipeline) Stats() pipeline.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.pipe
	st.Jails = maps.Clone(st.Jails)
	st.FilterTimeouts = maps.Clone(st.FilterTimeouts)
	return st
}

// Compile-time checks: the real stages fit the seams, and the nft write
// hook takes the Recorder's method as is.
var (
	_ ListenerSource = (*receiver.Receiver)(nil)
	_ PipelineSource = (*pipeline.Pipeline)(nil)
	_                = nft.Options{ObserveWrite: (*Recorder)(nil).ObserveNFTWrite}
)

// start registers a Recorder on a fresh registry and serves it on a real
// TCP socket; it returns the Recorder, the sources and the /metrics URL.
func start(t *testing.T) (*Recorder, *fakeSources, string) {
	t.Helper()
	src := &fakeSources{
		listeners: []receiver.ListenerStats{{Name: "udp:127.0.0.1:5514"}, {Name: "tcp:127.0.0.1:5514"}},
		pipe: pipeline.Stats{Jails: map[string]pipeline.JailStats{"sshd": {BansByPrefix: map[pipeline.PrefixLen]uint64{{Family: "ipv6", Bits: 64}: 2, {Family: "ipv4", Bits: 32}: 1}}},
			FilterTimeouts: map[string]uint64{"appauth": 0}},
	}
	reg := prometheus.NewRegistry()
	rec, err := New(reg, "v1.2.3", fakeListeners{src}, fakePipeline{src})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, reg, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return rec, src, "http://" + ln.Addr().String() + "/metrics"
}

// scrape fetches the text exposition and parses it.
func scrape(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, b)
	}
	return string(b), fams
}

// value finds the sample of name with exactly these labels (k=v pairs);
// histograms report their sample count.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if !maps.Equal(got, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no sample %s%v", name, want)
	return 0
}

// wanted is every metric name the daemon promises, with its type.
func wanted() map[string]string {
	return map[string]string{
		"sysban_messages_received_total":  "counter",
		"sysban_messages_dropped_total":   "counter",
		"sysban_parse_errors_total":       "counter",
		"sysban_listener_connections":     "gauge",
		"sysban_messages_unrouted_total":  "counter",
		"sysban_failures_total":           "counter",
		"sysban_bans_total":               "counter",
		"sysban_banned":                   "gauge",
		"sysban_unbans_total":             "counter",
		"sysban_tracked_evicted_total":    "counter",
		"sysban_queue_depth":              "gauge",
		"sysban_nft_guard_repairs_total":  "counter",
		"sysban_ban_errors_total":         "counter",
		"sysban_bans_lost_total":          "counter",
		"sysban_nft_write_seconds":        "histogram",
		"sysban_reload_success":           "gauge",
		"sysban_reload_timestamp_seconds": "gauge",
		"sysban_build_info":               "gauge",
	}
}

func TestScrape(t *testing.T) {
	rec, src, url := start(t)

	// Before anything happens every metric is already there, with HELP
	// and TYPE, so dashboards and alerts see zeros rather than gaps.
	text, fams := scrape(t, url)
	for name, typ := range wanted() {
		if !strings.Contains(text, "\n# HELP "+name+" ") && !strings.HasPrefix(text, "# HELP "+name+" ") {
			t.Errorf("no HELP for %s", name)
		}
		if !strings.Contains(text, "# TYPE "+name+" "+typ+"\n") {
			t.Errorf("no TYPE %s %s", name, typ)
		}
	}
	if v := value(t, fams, "sysban_build_info", "version", "v1.2.3"); v != 1 {
		t.Errorf("build_info = %v", v)
	}
	for _, reason := range []string{"expired", "manual", "reload"} {
		if v := value(t, fams, "sysban_unbans_total", "jail", "sshd", "reason", reason); v != 0 {
			t.Errorf("unbans %s = %v before any unban", reason, v)
		}
	}
	if v := value(t, fams, "sysban_messages_dropped_total", "listener", "tcp:127.0.0.1:5514", "reason", "too_large"); v != 0 {
		t.Errorf("dropped too_large = %v before any drop", v)
	}

	// The sources move; so must the metrics.
	src.set(func(f *fakeSources) {
		f.listeners[0].Received = 120
		f.listeners[0].ParseErrors = 3
		f.listeners[1].Connections = 4
		f.listeners[1].Dropped = map[string]uint64{"too_large": 2, "sender_not_allowed": 5, "new_reason": 1}
		f.pipe.Queued = 7
		f.pipe.Unrouted = 9
		f.pipe.BanErrors = 1
		f.pipe.BansLost = 2
		f.pipe.Jails["sshd"] = pipeline.JailStats{TotalFailed: 40, TotalBanned: 6, CurrentlyBanned: 5, Evicted: 8}
		f.pipe.Jails["postfix"] = pipeline.JailStats{TotalFailed: 1}
		f.pipe.FilterTimeouts["appauth"] = 3
	})
	rec.Unban("sshd", UnbanExpired, 1)
	rec.Unban("sshd", UnbanManual, 2)
	rec.Unban("sshd", UnbanManual, 0) // nothing lifted: no change
	rec.Unban("gone", UnbanReload, 4) // a jail the reload removed
	rec.ObserveNFTWrite("apply", 3*time.Millisecond, 10)
	rec.ObserveNFTWrite("apply", 2*time.Second, 5000)
	rec.ObserveNFTWrite("remove", time.Millisecond, 1)
	at := time.Date(2026, 11, 21, 19, 30, 0, 0, time.UTC)
	rec.Reload(true, at)
	rec.GuardRepaired("set sshd_v4 missing", 3)
	rec.GuardRepaired("chain input flushed", 0)

	_, fams = scrape(t, url)
	if v := value(t, fams, "sysban_nft_guard_repairs_total"); v != 2 {
		t.Errorf("guard repairs = %v, want 2", v)
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sysban_messages_received_total", []string{"listener", "udp:127.0.0.1:5514"}, 120},
		{"sysban_parse_errors_total", []string{"listener", "udp:127.0.0.1:5514"}, 3},
		{"sysban_listener_connections", []string{"listener", "tcp:127.0.0.1:5514"}, 4},
		{"sysban_messages_dropped_total", []string{"listener", "tcp:127.0.0.1:5514", "reason", "too_large"}, 2},
		{"sysban_messages_dropped_total", []string{"listener", "tcp:127.0.0.1:5514", "reason", "sender_not_allowed"}, 5},
		{"sysban_messages_dropped_total", []string{"listener", "tcp:127.0.0.1:5514", "reason", "new_reason"}, 1},
		{"sysban_queue_depth", nil, 7},
		{"sysban_messages_unrouted_total", nil, 9},
		{"sysban_ban_errors_total", nil, 1},
		{"sysban_bans_lost_total", nil, 2},
		{"sysban_failures_total", []string{"jail", "sshd"}, 40},
		{"sysban_failures_total", []string{"jail", "postfix"}, 1},
		{"sysban_bans_total", []string{"jail", "sshd"}, 6},
		{"sysban_banned", []string{"jail", "sshd"}, 5},
		{"sysban_tracked_evicted_total", []string{"jail", "sshd"}, 8},
		{"sysban_filter_timeouts_total", []string{"filter", "appauth"}, 3},
		{"sysban_unbans_total", []string{"jail", "sshd", "reason", "expired"}, 1},
		{"sysban_unbans_total", []string{"jail", "sshd", "reason", "manual"}, 2},
		{"sysban_unbans_total", []string{"jail", "gone", "reason", "reload"}, 4},
		{"sysban_unbans_total", []string{"jail", "postfix", "reason", "manual"}, 0},
		{"sysban_nft_write_seconds", []string{"op", "apply"}, 2},
		{"sysban_nft_write_seconds", []string{"op", "remove"}, 1},
		{"sysban_nft_write_seconds", []string{"op", "setup"}, 0},
		{"sysban_reload_success", nil, 1},
		{"sysban_reload_timestamp_seconds", nil, float64(at.Unix())},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The 2s write lands in the le=4.0 bucket and not below.
	for _, m := range fams["sysban_nft_write_seconds"].GetMetric() {
		if m.GetLabel()[0].GetValue() != "apply" {
			continue
		}
		if s := m.GetHistogram().GetSampleSum(); s < 2.003-1e-9 || s > 2.003+1e-9 {
			t.Errorf("apply sum = %v, want 2.003", s)
		}
	}

	// A refused reload drops success to 0 and keeps the last good time.
	rec.Reload(false, at.Add(time.Hour))
	_, fams = scrape(t, url)
	if v := value(t, fams, "sysban_reload_success"); v != 0 {
		t.Errorf("reload_success after a refused reload = %v", v)
	}
	if v := value(t, fams, "sysban_reload_timestamp_seconds"); v != float64(at.Unix()) {
		t.Errorf("reload timestamp moved on a refused reload: %v", v)
	}
}

// TestREADMETable checks that the metrics table in this package's
// README.md, and the copy in the repository's README.md once it has one,
// list exactly the metrics a scrape exposes, with their types and labels.
func TestREADMETable(t *testing.T) {
	_, _, url := start(t)
	_, fams := scrape(t, url)
	for _, path := range []string{"README.md", "../README.md"} {
		t.Run(path, func(t *testing.T) {
			checkTable(t, path, fams)
		})
	}
}

func checkTable(t *testing.T, path string, fams map[string]*dto.MetricFamily) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(sysban_[a-z_]+)` \\| (counter|gauge|histogram) \\|([^|]*)\\|")
	documented := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name, typ := m[1], m[2]
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		documented[name] = true
		fam, ok := fams[name]
		if !ok {
			t.Errorf("%s lists %s, which the scrape lacks", path, name)
			continue
		}
		if got := strings.ToLower(fam.GetType().String()); got != typ {
			t.Errorf("%s: %s says %s, scrape says %s", name, path, typ, got)
		}
		if got := labelNames(fam); !slices.Equal(got, labels) {
			t.Errorf("%s: %s labels %v, scrape labels %v", name, path, labels, got)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(documented) == 0 && path != "README.md" {
		t.Skipf("%s has no metrics table yet", path)
	}
	for name := range fams {
		if strings.HasPrefix(name, "sysban_") && !documented[name] {
			t.Errorf("%s is exposed but not in %s", name, path)
		}
	}
	for name := range wanted() {
		if !documented[name] {
			t.Errorf("%s is promised but not in %s", name, path)
		}
	}
}

func labelNames(f *dto.MetricFamily) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range f.GetMetric() {
		for _, lp := range m.GetLabel() {
			if !seen[lp.GetName()] {
				seen[lp.GetName()] = true
				out = append(out, lp.GetName())
			}
		}
	}
	return out
}

func TestNilSourcesAndRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := New(reg, "v", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec.Unban("sshd", UnbanManual, 1)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather with nil sources: %v", err)
	}
	if has(fams, "sysban_failures_total") {
		t.Error("sysban_failures_total exported without a pipeline")
	}
	// Sources given later (the daemon opens nft before the pipeline) are
	// read from then on.
	src := &fakeSources{pipe: pipeline.Stats{Jails: map[string]pipeline.JailStats{"sshd": {TotalFailed: 3}}}}
	rec.SetSources(fakeListeners{src}, fakePipeline{src})
	if fams, _ = reg.Gather(); !has(fams, "sysban_failures_total") {
		t.Error("sysban_failures_total missing after SetSources")
	}
	// Registering twice on one registry is an error, not a panic.
	if _, err := New(reg, "v", nil, nil); err == nil {
		t.Error("second New on the same registry succeeded")
	}
	// Two recorders on two registries are independent (no global state).
	reg2 := prometheus.NewRegistry()
	if _, err := New(reg2, "w", nil, nil); err != nil {
		t.Fatal(err)
	}
	fams, _ = reg2.Gather()
	for _, f := range fams {
		if f.GetName() == "sysban_unbans_total" && len(f.GetMetric()) > 0 {
			t.Errorf("second registry sees the first recorder's unbans: %v", f)
		}
	}
}

func TestServeBadAddr(t *testing.T) {
	err := Serve(context.Background(), "127.0.0.1:notaport", prometheus.NewRegistry(), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "metrics: listen:") {
		t.Errorf("Serve(bad addr) = %v", err)
	}
}

func TestOnlyMetricsPath(t *testing.T) {
	_, _, url := start(t)
	resp, err := http.Get(strings.TrimSuffix(url, "/metrics") + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ = %s, want 404: only /metrics is served", resp.Status)
	}
}

func has(fams []*dto.MetricFamily, name string) bool {
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return true
		}
	}
	return false
}
