package fleet

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Status is what `sysban fleet status` shows.
type Status struct {
	Name        string    `json:"name"`
	Decide      bool      `json:"decide"`
	Enforce     bool      `json:"enforce"`
	Servers     []string  `json:"servers"`
	Embedded    string    `json:"embedded,omitempty"` // the embedded server's listen address
	Connected   bool      `json:"connected"`
	ConnectedTo string    `json:"connected_to,omitempty"`
	LastResync  time.Time `json:"last_resync,omitzero"`
	// LagSeconds is the last live ban's delay from decision to in force here.
	LagSeconds float64 `json:"lag_seconds"`
	// Bans counts the bucket's bans by deciding node and scope.
	Bans      map[string]map[Scope]int `json:"bans"`
	Unbans    int                      `json:"unbans"`
	Outbox    int                      `json:"outbox"`
	Held      int                      `json:"held"`
	Published uint64                   `json:"published"`
	Applied   uint64                   `json:"applied"`
	Refused   map[string]uint64        `json:"refused"`
	// Narrowed counts fleet prefixes narrowed here around protected
	// addresses (at each resync again).
	Narrowed uint64 `json:"narrowed"`
	// In a cluster: the server leading the bucket's stream (every
	// publication is stored through it) and the server holding this
	// node's watch (its consumer: where this node's bans are delivered
	// from). Empty on a single server or when unknown.
	StreamLeader string `json:"stream_leader,omitempty"`
	WatchServer  string `json:"watch_server,omitempty"`
}

// Status reports the node's view of the fleet.
func (n *Node) Status() Status {
	st := Status{
		Name: n.cfg().Name, Decide: n.cfg().Decide, Enforce: n.cfg().Enforce, Servers: n.cfg().Servers,
		Connected: n.connected.Load(), Outbox: n.outbox.Len(),
		Bans: map[string]map[Scope]int{}, Refused: map[string]uint64{},
		Published: counter(n.stats.published), Applied: counter(n.stats.applied),
		Narrowed: counter(n.stats.narrowed),
	}
	if n.cfg().Embedded != nil {
		st.Embedded = n.cfg().Embedded.Listen
	}
	if st.Connected {
		st.ConnectedTo = n.nc.ConnectedUrlRedacted()
	}
	for _, r := range refusedReasons {
		st.Refused[r] = counter(n.stats.refused.WithLabelValues(r))
	}
	st.StreamLeader = n.streamLeader()
	n.mu.Lock()
	defer n.mu.Unlock()
	st.WatchServer = n.watchedAt
	st.LastResync, st.LagSeconds, st.Held, st.Unbans = n.lastResync, n.lag.Seconds(), len(n.held), len(n.tombs.at)
	st.Bans = n.known.byNode()
	return st
}

// streamLeader asks the server which server leads the bucket's stream;
// "" when it cannot say within a second or runs alone.
func (n *Node) streamLeader() string {
	if !n.connected.Load() {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := n.js.Stream(ctx, "KV_"+n.cfg().Bucket)
	if err != nil {
		return ""
	}
	if info := s.CachedInfo(); info != nil && info.Cluster != nil && len(info.Cluster.Replicas) > 0 {
		return info.Cluster.Leader
	}
	return ""
}

func counter(c prometheus.Counter) uint64 {
	var m dto.Metric
	if c.Write(&m) != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}
