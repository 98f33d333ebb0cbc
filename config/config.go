package config

import (
	"net/netip"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/fleet"
	"github.com/sysban/sysban/notify"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// Config is a loaded, validated configuration. It is immutable once Load
// returns: reload builds a new one and swaps it.
type Config struct {
	Listen     Listen
	Defaults   JailSettings
	MaxTracked int
	Jails      []Jail // every jail in the config, enabled or not, sorted by name
	Filters    map[string]pipeline.FilterSpec
	NFT        NFT
	Log        Log
	State      State
	Control    Control
	Metrics    Metrics
	Actions    map[string]notify.ActionSpec
	Notify     Notify
	NFLOG      NFLOG
	Fleet      *fleet.Config // nil: no fleet section, no NATS

	// Sources lists the layers the config was built from, in order
	// ("built-in", file paths, "environment").
	Sources []string
}

// Listen is the receiver section.
type Listen struct {
	Specs          []receiver.ListenerSpec
	Allow          []netip.Prefix
	ReadBuffer     int
	MaxMessageSize int
	MaxConnections int
	IdleTimeout    time.Duration

	MaxConnectionsPerSource int
	FrameTimeout            time.Duration // slowloris: a frame must complete this soon after it starts
	HandshakeTimeout        time.Duration
	RatePerSender           float64 // UDP messages/s per sender address; 0 = no limit
	RateBurst               int
	RateMaxSenders          int
	RemoteStreamOnly        bool     // UDP only from loopback; remote senders must use TCP/TLS
	JournalPrograms         []string // tags of `journalctl | logger` pipes: their text is a journal line
	TLSFiles                receiver.TLSFiles

	FirstFrameTimeout time.Duration // a stream must send one whole frame this soon
	Forwarders        []uint32      // local uids that relay others' lines (their SD names the author)
	TLSForwarders     bool          // verified TLS clients are forwarders
	UnixGroup         int           // group of the unix socket files; -1: root's
}

// JailSettings are the values a jail takes from defaults unless it sets its own.
type JailSettings struct {
	MaxRetry int
	FindTime time.Duration
	BanTime  time.Duration // sysban.Permanent for -1
	// BanTimeIncrement lengthens repeat offenders' bans. It counts the
	// earlier bans the state's history remembers, so state.dbpurgeage is
	// also how long an offence counts.
	BanTimeIncrement pipeline.BanIncrement
	Ports            []sysban.PortRange
	Protocol         sysban.Protocol
	Verdict          sysban.Verdict
	IgnoreIP         []netip.Prefix
	UseDNS           string // yes, warn or no: what a hostname in a <HOST> position does
	Provenance       string // off, prefer or require: whose lines count (pipeline.JailSpec.Provenance)
	// IPv4Prefix and IPv6Prefix are the prefix lengths failures are
	// counted and bans made by: every address of one /64 is one offender.
	IPv4Prefix, IPv6Prefix int
	// Escalate bans the network around several prefix bans close together.
	Escalate pipeline.Escalation
	// CountBy is address (the default) or origin: whether the failures of
	// one address logged by different hosts count together or apart.
	CountBy string
}

// Default prefix lengths: a /64 is one subscriber almost everywhere, while
// anything wider than /32 in IPv4 hits the bystanders behind a CGNAT.
const (
	DefaultIPv4Prefix = 32
	DefaultIPv6Prefix = 64
)

// Jail is one jail with its defaults applied.
type Jail struct {
	Name    string
	Enabled bool
	// Filter is the filter it counts failures of, or
	// pipeline.RecidiveFilter: the bans of the other jails.
	Filter  string
	Mode    string   // filter mode; "" is the filter's normal mode
	Actions []string // names of the actions run on its bans and unbans
	// Observe makes the jail decide, record and announce bans without
	// enforcing them (observe mode).
	Observe bool
	JailSettings
}

// State is where durable state (bans and their history) lives.
type State struct {
	Dir      string
	PurgeAge time.Duration // history older than this is deleted
}

// Control is the local control API.
type Control struct {
	Socket string // unix socket path, mode 0600
}

// Metrics is the Prometheus endpoint; Listen is empty when it is off.
type Metrics struct {
	Listen string
}

// NFT is the nftables section.
type NFT struct {
	Table    string
	Priority int
}

// NFLOG is the nflog section: which traffic the kernel copies to an NFLOG
// group for sysban to watch.
type NFLOG struct {
	Enabled bool
	Group   uint16 // NFLOG group sysban reads
	Rate    int    // packets/s each log rule passes on at most
	Snaplen int    // bytes of each packet copied (headers)
	Banned  bool   // log packets of banned addresses
	// Trap ports: ports nothing on the host serves; new connections to
	// them are probes for the portprobe filter.
	TrapTCP, TrapUDP []sysban.PortRange
}

// Watching reports whether anything is logged: enabled, and banned traffic
// or trap ports asked for.
func (n NFLOG) Watching() bool {
	return n.Enabled && (n.Banned || len(n.TrapTCP)+len(n.TrapUDP) > 0)
}

// Log is the logging section.
type Log struct {
	Level  string
	Format string
}

// Rule is the kernel rule for the jail.
func (j Jail) Rule() sysban.JailRule {
	return sysban.JailRule{Name: j.Name, Ports: j.Ports, Protocol: j.Protocol, Verdict: j.Verdict}
}

// EnabledJails returns the enabled jails in name order.
func (c *Config) EnabledJails() []Jail {
	var out []Jail
	for _, j := range c.Jails {
		if j.Enabled {
			out = append(out, j)
		}
	}
	return out
}

// Rules returns the kernel rules of the enabled jails.
func (c *Config) Rules() []sysban.JailRule {
	var out []sysban.JailRule
	for _, j := range c.EnabledJails() {
		out = append(out, j.Rule())
	}
	return out
}

// AllFilters returns the filters the config's jails can name: the built-in
// ones with the config's filters laid over them (pipeline.Filters).
func (c *Config) AllFilters() map[string]pipeline.FilterSpec {
	return pipeline.Filters(c.Filters)
}

// Pipeline returns the pipeline configuration of the enabled jails.
func (c *Config) Pipeline() pipeline.Config {
	pc := pipeline.Config{Filters: c.Filters, MaxTracked: c.MaxTracked, Spared: c.Listen.Allow}
	for _, j := range c.EnabledJails() {
		pc.Jails = append(pc.Jails, pipeline.JailSpec{
			Name:       j.Name,
			Filter:     j.Filter,
			MaxRetry:   j.MaxRetry,
			FindTime:   j.FindTime,
			BanTime:    j.BanTime,
			IgnoreIP:   j.IgnoreIP,
			Mode:       j.Mode,
			UseDNS:     j.UseDNS,
			Increment:  j.BanTimeIncrement,
			Provenance: j.Provenance,

			IPv4Prefix: j.IPv4Prefix,
			IPv6Prefix: j.IPv6Prefix,
			Observe:    j.Observe,
			Escalate:   j.Escalate,
			CountBy:    j.CountBy,
		})
	}
	return pc
}
