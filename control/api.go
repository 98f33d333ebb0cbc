package control

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/sysban/sysban/fleet"
)

// Daemon is what the control server needs from the running daemon. Every
// method may be called concurrently with the others and with the daemon's
// own work.
//
// Errors should wrap one of the sentinel errors below (ErrUnknownJail,
// ErrBadRequest, ErrNotBanned, ErrConfigRefused) when one applies, so that
// the client gets the right status code; any other error is a daemon
// failure (500).
type Daemon interface {
	// Status reports the jails, the listeners and the daemon itself.
	Status(ctx context.Context) (Status, error)
	// JailStatus reports one jail's counters and its banned addresses.
	JailStatus(ctx context.Context, jail string) (JailStatus, error)
	// Ban bans prefix (an address is a /32 or /128) in jail for d: 0
	// means the jail's bantime, sysban.Permanent (-1) forever.
	Ban(ctx context.Context, jail string, prefix netip.Prefix, d time.Duration) (BanInfo, error)
	// Unban lifts the bans in jail, or in every jail when jail is "",
	// that cover prefix (its own and wider ones, so that the address is
	// free; narrower bans inside it stay), and returns the bans it lifted.
	Unban(ctx context.Context, prefix netip.Prefix, jail string) ([]BanInfo, error)
	// UnbanAll lifts every ban of every jail and returns how many.
	UnbanAll(ctx context.Context) (int, error)
	// Banned lists the bans that cover prefix, or every ban when prefix
	// is the zero (invalid) Prefix.
	Banned(ctx context.Context, prefix netip.Prefix) ([]BanInfo, error)
	// Reload re-reads, validates and swaps the configuration. An error
	// means the new configuration was refused and the old one still runs.
	Reload(ctx context.Context) (ReloadResult, error)
}

// Sentinel errors a Daemon wraps to choose the status code, and that a
// Client's errors match with errors.Is.
var (
	ErrBadRequest    = errors.New("bad request")       // 400: bad address, duration or body
	ErrUnknownJail   = errors.New("unknown jail")      // 404
	ErrNotBanned     = errors.New("not banned")        // 404
	ErrConfigRefused = errors.New("config refused")    // 409: the old configuration keeps running
	ErrTooLarge      = errors.New("request too large") // 413
	// ErrUnreachable: the client could not connect to the daemon's socket.
	ErrUnreachable = errors.New("daemon unreachable")
)

// errorCodes maps each sentinel to its JSON code and HTTP status. It is a
// function rather than a package-level map so there is no mutable global.
func errorCodes() []struct {
	err    error
	code   string
	status int
} {
	return []struct {
		err    error
		code   string
		status int
	}{
		{ErrBadRequest, "bad_request", http.StatusBadRequest},
		{ErrUnknownJail, "unknown_jail", http.StatusNotFound},
		{ErrNotBanned, "not_banned", http.StatusNotFound},
		{ErrConfigRefused, "config_refused", http.StatusConflict},
		{ErrTooLarge, "too_large", http.StatusRequestEntityTooLarge},
	}
}

// Status is the daemon's overview: GET /v1/status.
type Status struct {
	Version       string           `json:"version"`
	Started       time.Time        `json:"started"`
	UptimeSeconds int64            `json:"uptime_seconds"`
	ConfigSources []string         `json:"config_sources"`
	LastReload    ReloadResult     `json:"last_reload"` // the start counts as the first load
	Jails         []JailSummary    `json:"jails"`
	Listeners     []ListenerStatus `json:"listeners"`
	Messages      uint64           `json:"messages"`    // messages handled by the pipeline
	QueuedBans    int              `json:"queued_bans"` // bans decided and not yet kept (stored)
	// Fleet is the fleet node's view; nil without a fleet section.
	Fleet *fleet.Status `json:"fleet,omitempty"`
}

// JailSummary is one jail's line in Status.
type JailSummary struct {
	Name            string `json:"name"`
	Filter          string `json:"filter"`
	Enabled         bool   `json:"enabled"`
	CurrentlyFailed int    `json:"currently_failed"`
	TotalFailed     uint64 `json:"total_failed"`
	CurrentlyBanned int    `json:"currently_banned"`
	TotalBanned     uint64 `json:"total_banned"`
	// Observe says the jail runs in observe mode: its bans are decided
	// and recorded, never enforced; Observed counts them (TotalBanned too).
	Observe  bool   `json:"observe,omitempty"`
	Observed uint64 `json:"observed,omitempty"`
}

// ListenerStatus is one syslog listener's counters.
type ListenerStatus struct {
	Name        string            `json:"name"`
	Received    uint64            `json:"received"`
	Dropped     map[string]uint64 `json:"dropped,omitempty"` // by reason
	ParseErrors uint64            `json:"parse_errors"`
	Connections int               `json:"connections"` // stream connections open now
}

// JailStatus is one jail in detail: GET /v1/jails/{jail}. The counters
// are named after fail2ban-client status.
type JailStatus struct {
	Name            string   `json:"name"`
	Filter          string   `json:"filter"`
	Programs        []string `json:"programs"`
	MaxRetry        int      `json:"maxretry"`
	FindTimeSeconds int64    `json:"findtime_seconds"`
	BanTimeSeconds  int64    `json:"bantime_seconds"` // -1: permanent
	CurrentlyFailed int      `json:"currently_failed"`
	TotalFailed     uint64   `json:"total_failed"`
	CurrentlyBanned int      `json:"currently_banned"`
	TotalBanned     uint64   `json:"total_banned"`
	// Untrusted counts failures dropped for their origin (provenance).
	Untrusted uint64    `json:"untrusted"`
	Banned    []BanInfo `json:"banned"`
}

// BanInfo is one ban: which jail bans which prefix, since and until when,
// and why.
type BanInfo struct {
	Jail string `json:"jail"`
	// Prefix is what is banned: a single address is a /32 or /128.
	Prefix netip.Prefix `json:"prefix"`
	// Addr is the address that offended last, inside Prefix; zero for a
	// manual prefix ban.
	Addr      netip.Addr `json:"addr,omitzero"`
	Start     time.Time  `json:"start,omitzero"`
	Until     time.Time  `json:"until,omitzero"` // zero when Permanent
	Permanent bool       `json:"permanent"`
	Offences  int        `json:"offences,omitempty"` // times this prefix has been banned (repeat offenders)
	Failures  int        `json:"failures,omitempty"` // failures inside findtime that led to it
	Lines     []string   `json:"lines,omitempty"`    // the failure lines, when kept
	Manual    bool       `json:"manual,omitempty"`   // banned with `sysban ban`
	// FleetNode is the node that decided a fleet ban, Origin the host
	// whose log showed the failures; both empty for this host's own bans.
	FleetNode string `json:"fleet_node,omitempty"`
	Origin    string `json:"origin,omitempty"`
	Observed  bool   `json:"observed,omitempty"` // observe mode: recorded, not in the kernel
	// BlockedPackets and LastBlocked are the banned traffic NFLOG saw from
	// this address in this jail (rate-limited, so a floor); zero when the
	// nflog section is off or the address sent nothing since sysban started.
	BlockedPackets uint64    `json:"blocked_packets,omitempty"`
	LastBlocked    time.Time `json:"last_blocked,omitzero"`
}

// ReloadResult says how a configuration load went: POST /v1/reload, and
// Status.LastReload.
type ReloadResult struct {
	OK       bool      `json:"ok"`
	Time     time.Time `json:"time"`
	Error    string    `json:"error,omitempty"` // why the last load was refused
	Sources  []string  `json:"sources,omitempty"`
	Jails    []string  `json:"jails,omitempty"`    // enabled jails after the load
	Removed  []string  `json:"removed,omitempty"`  // jails dropped, their bans lifted
	Unbanned int       `json:"unbanned,omitempty"` // bans lifted with them
}

// BanRequest is the body of POST /v1/jails/{jail}/ban.
type BanRequest struct {
	Addr string `json:"addr"` // an address or a prefix ("2001:db8::/64")
	// DurationSeconds: 0 means the jail's bantime, -1 permanent.
	DurationSeconds int64 `json:"duration_seconds"`
}

// UnbanRequest is the body of POST /v1/unban. An empty Jail means every
// jail.
type UnbanRequest struct {
	Addr string `json:"addr"` // an address or a prefix: the bans covering it are lifted
	Jail string `json:"jail,omitempty"`
}

// UnbanAllResult is the answer of POST /v1/unban-all.
type UnbanAllResult struct {
	Unbanned int `json:"unbanned"`
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}
