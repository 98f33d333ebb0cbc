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
var settingKeys = []string{"maxretry", "findtime", "bantime", "bantimeincrement", "ports", "protocol", "verdict", "ignoreip", "usedns", "provenance"}

// jailKeys are the keys of jails.NAME: its own, read by decodeJails, and
// the settings.
var jailKeys = slices.Concat([]string{"enabled", "filter", "mode"}, settingKeys, []string{"actions"})

// incrementKeys are the keys of defaults.bantimeincrement and
// jails.NAME.bantimeincrement, read by increment.
var incrementKeys = []string{"enabled", "multiplier", "maxtime", "rndtime"}

// decodeDefaults reads the defaults section: the settings every jail takes
// unless it sets its own.
func (d *decoder) decodeDefaults(root map[string]any) JailSettings {
	m := d.section(root, "defaults")
	d.checkKeys("defaults", m, settingKeys)
	return d.jailSettings(m, "defaults", JailSettings{})
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
		j := Jail{Name: name, Filter: name, Enabled: d.boolean(jm, key+".enabled")}
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
