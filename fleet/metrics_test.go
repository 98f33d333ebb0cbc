package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sysban/sysban"
)

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func histogramCount(t testing.TB, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// Each ban passes every stage once: stored by the server (at the decider),
// delivered by the watch and put in force (at the enforcer), in that order
// of time from the decision.
func TestStageHistograms(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	collector := startNode(t, cc, srv)
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)
	within(t, 10*time.Second, "hostb's first resync", func() bool {
		select {
		case <-b.Joined():
			return true
		default:
			return false
		}
	})
	pub := collector.Publisher(nopApplier{})
	if err := pub.Apply(context.Background(), []sysban.Ban{ban("sshd", "203.0.113.7", time.Hour), ban("sshd", "2001:db8::7", sysban.Permanent)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hostb applies both bans", func() bool {
		return b.local.has("sshd", "203.0.113.7") && b.local.has("sshd", "2001:db8::7")
	})
	for _, h := range []struct {
		name string
		h    prometheus.Histogram
	}{{"collector stored", collector.stats.stored}, {"hostb delivered", b.stats.delivered}, {"hostb propagation", b.stats.propagation}} {
		if got := histogramCount(t, h.h); got != 2 {
			t.Errorf("%s: %d bans, want 2", h.name, got)
		}
	}
	sum := func(h prometheus.Histogram) float64 {
		var m dto.Metric
		_ = h.Write(&m)
		return m.GetHistogram().GetSampleSum()
	}
	if d, p := sum(b.stats.delivered), sum(b.stats.propagation); d <= 0 || d > p {
		t.Errorf("delivered after %v s in all, in force after %v s: want 0 < delivered ≤ in force", d, p)
	}
}
