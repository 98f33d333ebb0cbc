package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/notify"
	"github.com/sysban/sysban/pipeline"
)

// settingKeys are the keys a jail may take from the defaults section;
// jailSettings reads them. defaults accepts exactly these.
var settingKeys = []string{"maxretry", "findtime", "bantime", "bantimeincrement", "ports", "protocol", "verdict", "ignoreip", "usedns", "provenance", "ipv4prefix", "ipv6prefix", "escalate", "countby"}

// jailKeys are the keys of jails.NAME: its own, read by decodeJails, and
// the settings.
var jailKeys = slices.Concat([]string{"enabled", "filter", "mode", "observe"}, settingKeys, []string{"actions"})

// incrementKeys are the keys of defaults.bantimeincrement and
// jails.NAME.bantimeincrement, read by increment.
var incrementKeys = []string{"enabled", "multiplier", "maxtime", "rndtime"}

// escalateKeys are the keys of defaults.escalate and jails.NAME.escalate,
// read by escalate.
var escalateKeys = []string{"count", "within", "ipv6prefix", "ipv4prefix"}

// decodeDefaults reads the defaults section: the settings every jail takes
// unless it sets its own.
func (d *decoder) decodeDefaults(root map[string]any) JailSettings {
	m := d.section(root, "defaults")
	d.checkKeys("defaults", m, settingKeys)
	return d.jailSettings(m, "defaults", JailSettings{IPv4Prefix: DefaultIPv4Prefix, IPv6Prefix: DefaultIPv6Prefix})
}

// decodeJails reads the jails section, every jail enabled or not, in name
// order. filters are the filters a jail may name (pipeline.Filters),
// actions the actions section.
func (d *decoder) decodeJails(root map[string]any, defaults JailSettings, filters map[string]pipeline.FilterSpec, actions map[string]notify.ActionSpec) []Jail {
	var out []Jail
	// The jail's rule of names reads differently from the filters' and
	// actions' (the same rule): kept as users know it.
	const jailRule = "lower-case letters, digits, '-' or '_', at most 32"
	d.namedEntries(root, "jails", "jail", jailRule, strings.Join(jailKeys, ", "), func(key, name string, jm map[string]any) {
		d.checkKeys(key, jm, jailKeys)
		j := Jail{Name: name, Filter: name, Enabled: d.boolean(jm, key+".enabled"), Observe: d.boolean(jm, key+".observe")}
		if s := d.str(jm, key+".filter"); s != "" {
			j.Filter = s
		}
		j.Mode = d.str(jm, key+".mode")
		js := pipeline.JailSpec{Name: name, Filter: j.Filter, Mode: j.Mode}
		d.specErrors(key, pipeline.ValidateJail(js, filters))
		if j.Enabled {
			d.specErrors(key, pipeline.ValidateJailMode(js, filters))
		}
		j.Actions = d.strings(jm, key+".actions")
		for _, a := range j.Actions {
			if _, ok := actions[a]; !ok {
				d.fail(key+".actions", "no action named %q%s", a, didYouMean(a, slices.Sorted(maps.Keys(actions))))
			}
		}
		j.JailSettings = d.jailSettings(jm, key, defaults)
		out = append(out, j)
	})
	return out
}

// jailSettings reads the settingKeys of m, taking absent ones from base.
func (d *decoder) jailSettings(m map[string]any, key string, base JailSettings) JailSettings {
	s := base
	if _, ok := m["maxretry"]; ok {
		s.MaxRetry = d.intRange(m, key+".maxretry", 1, 1<<20)
	}
	if _, ok := m["findtime"]; ok {
		s.FindTime = d.duration(m, key+".findtime", false)
	}
	if _, ok := m["bantime"]; ok {
		s.BanTime = d.duration(m, key+".bantime", true)
	}
	if _, ok := m["bantimeincrement"]; ok {
		s.BanTimeIncrement = d.increment(m, key+".bantimeincrement", s.BanTimeIncrement)
	}
	if _, ok := m["ports"]; ok {
		s.Ports = d.ports(m, key+".ports")
	}
	if _, ok := m["protocol"]; ok {
		s.Protocol = sysban.Protocol(d.oneOf(m, key+".protocol", "tcp", "udp", "all"))
	}
	if _, ok := m["verdict"]; ok {
		s.Verdict = sysban.Verdict(d.oneOf(m, key+".verdict", "drop", "reject"))
	}
	if _, ok := m["ignoreip"]; ok {
		s.IgnoreIP = d.prefixes(m, key+".ignoreip")
	}
	if _, ok := m["usedns"]; ok {
		s.UseDNS = d.oneOf(m, key+".usedns", "yes", "warn", "no")
	}
	if _, ok := m["provenance"]; ok {
		s.Provenance = d.oneOf(m, key+".provenance", pipeline.ProvenanceOff, pipeline.ProvenancePrefer, pipeline.ProvenanceRequire)
	}
	if _, ok := m["ipv4prefix"]; ok {
		s.IPv4Prefix = d.prefixLen(m, key+".ipv4prefix", 32)
	}
	if _, ok := m["ipv6prefix"]; ok {
		s.IPv6Prefix = d.prefixLen(m, key+".ipv6prefix", 128)
	}
	if _, ok := m["countby"]; ok {
		s.CountBy = d.oneOf(m, key+".countby", pipeline.CountByAddress, pipeline.CountByOrigin)
	}
	if _, ok := m["escalate"]; ok {
		s.Escalate = d.escalate(m, key+".escalate", s.Escalate)
	}
	if key == "defaults" {
		return s
	}
	// A jail must end up complete, whichever layer supplied each value.
	if s.MaxRetry == 0 || s.FindTime == 0 || s.BanTime == 0 || s.Protocol == "" || s.Verdict == "" || s.UseDNS == "" {
		d.fail(key, "incomplete: maxretry, findtime, bantime, protocol, verdict and usedns need a value here or in defaults")
	}
	return s
}

// increment reads a bantimeincrement map; the keys it sets replace base's
// (a jail that only says enabled: true keeps the defaults' multiplier).
func (d *decoder) increment(m map[string]any, key string, base pipeline.BanIncrement) pipeline.BanIncrement {
	inc := base
	im := d.section(m, key)
	d.checkKeys(key, im, incrementKeys)
	if _, ok := im["enabled"]; ok {
		inc.Enabled = d.boolean(im, key+".enabled")
	}
	if _, ok := im["multiplier"]; ok {
		inc.Multiplier = d.multiplier(im, key+".multiplier")
	}
	if v, ok := im["maxtime"]; ok {
		if s := strings.TrimSpace(fmt.Sprint(v)); s == "-1" || s == "-1s" {
			d.fail(key+".maxtime", "-1: maxtime caps increased bans and must be a duration; for bans that never end set bantime: -1")
		} else {
			inc.MaxTime = d.duration(im, key+".maxtime", false)
		}
	}
	if v, ok := im["rndtime"]; ok {
		// 0 turns the jitter off; otherwise a duration like any other.
		if s := strings.TrimSpace(fmt.Sprint(v)); s == "0" || s == "0s" {
			inc.RndTime = 0
		} else {
			inc.RndTime = d.duration(im, key+".rndtime", false)
		}
	}
	return inc
}

// multiplier reads the growth factor of bantime increments: a finite number
// of at least 1 (below 1, repeat offenders would get shorter bans).
func (d *decoder) multiplier(m map[string]any, key string) float64 {
	v := m[lastKey(key)]
	var f float64
	switch t := v.(type) {
	case int:
		f = float64(t)
	case int64:
		f = float64(t)
	case float64:
		f = t
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(t), 64); err != nil {
			d.fail(key, "%q: want a number of at least 1, e.g. 2 or 1.5", t)
			return 0
		}
	default:
		d.fail(key, "want a number of at least 1, got %s", describe(v))
		return 0
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 1 || f > 1000 {
		d.fail(key, "%v: want a number of at least 1 (and at most 1000), e.g. 2 or 1.5", f)
		return 0
	}
	return f
}

// escalate reads an escalate map; the keys it sets replace base's.
// count: 0 turns escalation off.
func (d *decoder) escalate(m map[string]any, key string, base pipeline.Escalation) pipeline.Escalation {
	e := base
	em := d.section(m, key)
	d.checkKeys(key, em, escalateKeys)
	if _, ok := em["count"]; ok {
		e.Count = d.intRange(em, key+".count", 0, 1<<16)
		if e.Count == 1 {
			d.fail(key+".count", "1: at least 2 prefixes make a network (0 turns escalation off)")
		}
	}
	if _, ok := em["within"]; ok {
		e.Within = d.duration(em, key+".within", false)
	}
	if _, ok := em["ipv6prefix"]; ok {
		e.IPv6Prefix = d.prefixLen(em, key+".ipv6prefix", 128)
	}
	if _, ok := em["ipv4prefix"]; ok {
		e.IPv4Prefix = d.prefixLen(em, key+".ipv4prefix", 32)
	}
	if e.Count > 0 && e.Within == 0 {
		d.fail(key+".within", "missing: how close together the bans must be (e.g. 1h)")
	}
	return e
}

// prefixLen reads a prefix length of at most maxBits: 64 or "/64". Below
// /8 of the family (/4, /16) a prefix ban would block a good part of the
// Internet for one attacker, which is never what was meant.
func (d *decoder) prefixLen(m map[string]any, key string, maxBits int) int {
	if s, ok := m[lastKey(key)].(string); ok {
		m = map[string]any{lastKey(key): strings.TrimPrefix(strings.TrimSpace(s), "/")}
	}
	return d.intRange(m, key, maxBits/8, maxBits)
}
