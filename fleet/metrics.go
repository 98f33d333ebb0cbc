package fleet

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons: why an enforcer did not apply a fleet ban.
const (
	RefusedInvalid   = "invalid"   // key or value failed validation
	RefusedProtected = "protected" // never-ban list: ignoreip, loopback, own addresses
	RefusedJail      = "jail"      // jail not accepted from the fleet here
	RefusedPrefix    = "prefix"    // a prefix wider than fleet.maxprefix4 or fleet.maxprefix6
	RefusedRate      = "rate"      // held: the deciding node is over its rate cap
	RefusedSignature = "signature" // missing or bad signature from a node with a known key
)

// refusedReasons are every reason, for the metric's series and the status.
var refusedReasons = []string{RefusedInvalid, RefusedProtected, RefusedJail, RefusedPrefix, RefusedRate, RefusedSignature}

// stats are the fleet's Prometheus metrics.
type stats struct {
	published   prometheus.Counter
	applied     prometheus.Counter
	lifted      prometheus.Counter
	refused     *prometheus.CounterVec
	capped      prometheus.Counter
	narrowed    prometheus.Counter
	dropped     prometheus.Counter
	resyncs     prometheus.Counter
	propagation prometheus.Histogram
	// The stages before it, from the same decision time: a decider's
	// publication stored by the fleet (the server's ack: an R3 bucket's
	// quorum), and an enforcer's watch delivering a ban. With
	// propagation, they say which stage a slow ban spent its time in.
	stored    prometheus.Histogram
	delivered prometheus.Histogram
}

// stageBuckets bound the stage histograms: fine below 10 ms, where the
// targets (5 ms idle, 50 ms in a storm) are.
var stageBuckets = []float64{.00025, .0005, .00075, .001, .0015, .002, .003, .004, .005, .0075, .01, .02, .05, .1, .5, 1, 5}

func newStats(reg prometheus.Registerer, n *Node) (*stats, error) {
	s := &stats{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysban_fleet_published_total",
			Help: "Bans, deletes and unbans this node published to the fleet bucket (acknowledged by the server)."}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysban_fleet_applied_total",
			Help: "Fleet bans of other nodes this node put in force."}),
		lifted: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysban_fleet_lifted_total",
			Help: "Fleet bans this node lifted because the fleet deleted or unbanned them."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysban_fleet_refused_total",
			Help: "Fleet bans this node did not apply, by reason (invalid, protected, jail, prefix, rate, signature)."}, []string{"reason"}),
		capped: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysban_fleet_capped_total",
			Help: "Fleet bans shortened to fleet.maxbantime."}),
		narrowed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysban_fleet_narrowed_total",
			Help: "Fleet prefix bans narrowed here because they covered addresses this node never bans."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysban_fleet_outbox_dropped_total",
			Help: "Publications dropped because the outbox was full (the bans stay in force locally)."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysban_fleet_resyncs_total",
			Help: "Full resyncs of the local ban set against the fleet bucket."}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sysban_fleet_propagation_seconds",
			Help:    "Decision time at the deciding node to ban in force here, for bans seen live.",
			Buckets: stageBuckets}),
		stored: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sysban_fleet_stored_seconds",
			Help:    "Decision time to the server's acknowledgement (stored by the fleet), for this node's published bans.",
			Buckets: stageBuckets}),
		delivered: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sysban_fleet_delivered_seconds",
			Help:    "Decision time at the deciding node to this node's watch delivering the ban, for bans seen live.",
			Buckets: stageBuckets}),
	}
	for _, r := range refusedReasons {
		s.refused.WithLabelValues(r)
	}
	if reg == nil {
		return s, nil
	}
	cs := []prometheus.Collector{s.published, s.applied, s.lifted, s.refused, s.capped, s.narrowed, s.dropped, s.resyncs, s.propagation, s.stored, s.delivered,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sysban_fleet_outbox_depth",
			Help: "Publications waiting in the outbox for NATS."}, func() float64 { return float64(n.outboxLen()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sysban_fleet_connected",
			Help: "1 while connected to NATS."}, func() float64 {
			if n.connected.Load() {
				return 1
			}
			return 0
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}
