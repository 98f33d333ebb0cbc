package config

import (
	"regexp"
)

// decode reads viper's merged settings section by section. Each section
// has its own decoder, in its own file, with the keys it accepts declared
// beside the code that reads them (listen.go, jails.go, filters.go,
// nflog.go, actions.go, sections.go, fleet.go); adding a key to a section is a change
// there only: strict key checking and the SYSBAN_* variables (envKeys)
// follow the same list. Specs another package owns are validated by it
// (pipeline.ValidateFilter, pipeline.ValidateJail, notify's
// ActionSpec.Validate); the decoder only puts the file and the key in
// front of their reasons.

// topKeys are the config's sections (and maxtracked), read by decode.
var topKeys = []string{"listen", "defaults", "maxtracked", "jails", "filters", "nft", "log", "state", "control", "metrics", "actions", "notify", "nflog", "fleet"}

// nameRE bounds jail and filter names: they become nftables set names
// ("<jail>_v4") and must survive viper's lower-casing and dot splitting.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// nameRule is nameRE in words, for errors.
const nameRule = "a lower-case letter, then letters, digits, '-' or '_', at most 32"

func (d *decoder) decode(root map[string]any) *Config {
	d.checkKeys("", root, topKeys)
	cfg := &Config{}
	cfg.Listen = d.decodeListen(root)
	cfg.Defaults = d.decodeDefaults(root)
	cfg.MaxTracked = d.intRange(root, "maxtracked", 1, 1<<26)
	cfg.Filters = d.decodeFilters(root)
	cfg.Actions = d.decodeActions(root)
	cfg.Notify = d.decodeNotify(root)
	cfg.Jails = d.decodeJails(root, cfg.Defaults, cfg.AllFilters(), cfg.Actions)
	cfg.NFT = d.decodeNFT(root)
	cfg.State = d.decodeState(root)
	cfg.Control = d.decodeControl(root)
	cfg.Metrics = d.decodeMetrics(root)
	cfg.NFLOG = d.decodeNFLOG(root)
	d.checkProbeJails(cfg.Jails, cfg.NFLOG)
	cfg.Log = d.decodeLog(root)
	cfg.Fleet = d.decodeFleet(root, cfg.State.Dir)
	return cfg
}

// envKeys are the keys a SYSBAN_* variable may set besides those the
// layers already hold: every key of every section, and of every jail and
// filter the layers define.
func envKeys(jails, filters []string) []string {
	var keys []string
	add := func(prefix string, fields []string) {
		for _, f := range fields {
			keys = append(keys, prefix+"."+f)
		}
	}
	add("listen", listenKeys)
	add("defaults", settingKeys)
	add("defaults.bantimeincrement", incrementKeys)
	add("defaults.escalate", escalateKeys)
	add("state", stateKeys)
	add("control", controlKeys)
	add("metrics", metricsKeys)
	add("nft", nftKeys)
	add("log", logKeys)
	add("nflog", nflogKeys)
	add("nflog.trapports", trapKeys)
	add("fleet", fleetKeys)
	add("fleet.embedded", fleetEmbeddedKeys)
	add("fleet.embedded.cluster", fleetClusterKeys)
	keys = append(keys, "maxtracked")
	for _, name := range jails {
		add("jails."+name, jailKeys)
		add("jails."+name+".bantimeincrement", incrementKeys)
		add("jails."+name+".escalate", escalateKeys)
	}
	for _, name := range filters {
		add("filters."+name, filterKeys)
	}
	return keys
}
