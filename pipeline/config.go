package pipeline

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sysban/sysban"
)

// The pipeline's configuration: the jails it runs and its runtime options.

// JailSpec is one enabled jail: which filter feeds it and when it bans.
type JailSpec struct {
	Name string
	// Filter names the filter (builtin or user-defined) whose failures it
	// counts, or is RecidiveFilter for a jail that counts the bans of the
	// other jails.
	Filter   string
	MaxRetry int           // >= 1
	FindTime time.Duration // > 0
	BanTime  time.Duration // > 0 or sysban.Permanent (-1)
	IgnoreIP []netip.Prefix
	// IPv4Prefix and IPv6Prefix are the prefix lengths the jail counts
	// and bans by: every address of one /64 (IPv6Prefix 64) is one
	// offender. 0 means the whole address (32, 128).
	IPv4Prefix, IPv6Prefix int
	// Escalate bans the network around several prefix bans (escalate.go).
	Escalate Escalation
	// CountBy is CountByAddress ("", the default: the failures of one
	// address count together whichever host logged them) or
	// CountByOrigin (each origin host's failures count apart, and the ban
	// names that origin: see origin.go).
	CountBy string
	// Observe makes the jail's bans observed (sysban.Ban.Observed): decided,
	// recorded and announced, never enforced.
	Observe bool
	// Mode selects the filter's mode ("" = "normal"): FailRegex plus
	// FilterSpec.Modes[Mode]. A mode the filter lacks is an error in New.
	Mode string
	// UseDNS says what to do with hostnames in <HOST> positions: "yes"
	// resolves them (off the hot path) and counts each address, "warn"
	// (the default, "") does the same and logs a warning per lookup, "no"
	// never resolves (the failure counts as unresolved). What does not
	// resolve is never banned.
	UseDNS string
	// Increment lengthens the bans of repeat offenders; it needs
	// Options.Offences (without one every ban gets BanTime).
	Increment BanIncrement
	// Provenance is ProvenanceOff, ProvenancePrefer ("", the default) or
	// ProvenanceRequire: what a failure's Message.Origin must be for it
	// to count (provenance.go). Require needs a filter that declares
	// whom it trusts.
	Provenance string
}

// Config is the pipeline's part of the daemon configuration.
type Config struct {
	Filters    map[string]FilterSpec // user filters; override builtins of the same name
	Jails      []JailSpec            // enabled jails only
	MaxTracked int                   // bound on tracked failing addresses (and on remembered bans) per jail, default 100000
	// Spared are never covered by a prefix ban, though a single address
	// in them may be banned: the allowed syslog senders (listen.allow),
	// so that a /64 ban of an attacker next to a relay never cuts the
	// relay off. A ban that would cover one is narrowed (see narrow).
	// Part of the config, not of Options, so that a reload refreshes it.
	Spared []netip.Prefix
}

// Options are the pipeline's runtime dependencies.
type Options struct {
	Now func() time.Time // injected clock; default time.Now
	// Protected are never banned: the host's own addresses. Loopback,
	// unspecified, multicast and link-local addresses are always protected.
	Protected []netip.Prefix
	Logger    *slog.Logger // default discards
	QueueSize int          // ban queue, default 65536
	// LookupHost resolves hostnames for UseDNS; default the system
	// resolver. Tests inject their own.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
	// MaxPending bounds the multi-line opens remembered per filter
	// correlation, default DefaultMaxPending; beyond it the oldest is
	// evicted (JailStats.PendingEvicted).
	MaxPending int
	// Offences counts an address's earlier bans in a jail, for
	// JailSpec.Increment (store.Store implements it). Nil: no increment.
	Offences OffenceCounter
	// Decided, if set, is handed every ban the moment it is decided, as
	// it is queued for the ban worker (not those lost at shutdown): the
	// fleet publishes from here, so that other hosts need not wait for
	// the batch ahead of it. It must not block.
	Decided func(sysban.Ban)
}

// Defaults for zero Config/Options fields.
const (
	DefaultMaxTracked = 100000
	DefaultQueueSize  = 65536
)
