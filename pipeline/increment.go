package pipeline

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/sysban/sysban"
)

// OffenceCounter tells how often a prefix (an address is a /32 or /128)
// was banned in a jail before:
// the input of BanIncrement. store.Store implements it from its ban
// history, which forgets what is older than state.dbpurgeage, so an
// address that stays quiet that long starts again at the base bantime.
type OffenceCounter interface {
	Offences(jail string, prefix netip.Prefix) (int, error)
}

// Defaults for zero BanIncrement fields.
const (
	DefaultIncrementMultiplier = 2
	DefaultIncrementMaxTime    = 7 * 24 * time.Hour
)

// BanIncrement lengthens the bans of repeat offenders (fail2ban's
// bantime.increment): the n-th ban of an address in a jail lasts
// BanTime * Multiplier^(n-1), plus a random part below RndTime, capped at
// MaxTime but never shorter than BanTime. Permanent jails stay permanent.
type BanIncrement struct {
	Enabled    bool
	Multiplier float64       // >= 1; 0 means DefaultIncrementMultiplier
	MaxTime    time.Duration // cap; 0 means DefaultIncrementMaxTime
	// RndTime adds a random duration below it to every increased ban, so
	// a botnet cannot time its return to the second; 0 adds nothing.
	RndTime time.Duration
}

// BanTime returns the length of a ban in a jail whose bantime is base, for
// an address banned prior times before in that jail, with jitter (below
// RndTime, chosen by the caller) added before the cap. A first offence
// (prior 0) or a disabled increment gets base unchanged.
func (inc BanIncrement) BanTime(base time.Duration, prior int, jitter time.Duration) time.Duration {
	if !inc.Enabled || base <= 0 || prior <= 0 {
		return base
	}
	mult := inc.Multiplier
	if mult == 0 {
		mult = DefaultIncrementMultiplier
	}
	limit := inc.MaxTime
	if limit <= 0 {
		limit = DefaultIncrementMaxTime
	}
	// A cap below bantime would make repeat offenders get shorter bans
	// than first offenders.
	limit = max(limit, base)
	// Float arithmetic: Multiplier^prior overflows int64 nanoseconds long
	// before prior gets large, and +Inf compares above the cap.
	d := float64(base)*math.Pow(mult, float64(prior)) + float64(max(jitter, 0))
	if math.IsNaN(d) || d >= float64(limit) {
		return limit
	}
	return time.Duration(d)
}

// banTime is the length of the ban jail j is deciding for prefix: its
// bantime, increased for repeat offenders when the jail asks for it. It is
// called only when a ban is decided, so the store read it may do is off the
// per-message path. A failing counter costs the increment, never the ban.
func (p *Pipeline) banTime(j *jail, prefix netip.Prefix) time.Duration {
	base := j.spec.BanTime
	inc := j.spec.Increment
	if !inc.Enabled || base == sysban.Permanent || p.offences == nil {
		return base
	}
	prior, err := p.offences.Offences(j.spec.Name, prefix)
	if err != nil {
		p.log.Warn("bantime increment: cannot count earlier bans; using the base bantime",
			"jail", j.spec.Name, "prefix", prefix, "err", err)
		return base
	}
	var jitter time.Duration
	if inc.RndTime > 0 && prior > 0 {
		jitter = time.Duration(rand.Int64N(int64(inc.RndTime)))
	}
	return inc.BanTime(base, prior, jitter)
}

// checkIncrement validates a jail's BanIncrement (zero fields take the
// defaults, so only values that are set can be wrong).
func checkIncrement(inc BanIncrement) string {
	switch {
	case inc.Multiplier != 0 && (math.IsNaN(inc.Multiplier) || math.IsInf(inc.Multiplier, 0) || inc.Multiplier < 1):
		return "multiplier must be a number of at least 1"
	case inc.MaxTime < 0:
		return "maxtime must be positive"
	case inc.RndTime < 0:
		return "rndtime must not be negative"
	}
	return ""
}
