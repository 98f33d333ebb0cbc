package fail2ban

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/pipeline"
)

// errOutputInvalid marks a translation that sysban's own config loader
// refuses: always a bug here, never the user's input.
var errOutputInvalid = errors.New("the translated config does not load")

// Result is an import: sysban's YAML and the report.
type Result struct {
	YAML   []byte
	Report *Report
}

// Output shapes, in sysban's keys (README "Configuration").
type (
	outConfig struct {
		Defaults *outSettings         `yaml:"defaults,omitempty"`
		Jails    map[string]*outJail  `yaml:"jails,omitempty"`
		Filters  map[string]outFilter `yaml:"filters,omitempty"`
		Actions  map[string]outAction `yaml:"actions,omitempty"`
		State    map[string]string    `yaml:"state,omitempty"`
		Log      map[string]string    `yaml:"log,omitempty"`
	}
	outSettings struct {
		MaxRetry         int           `yaml:"maxretry,omitempty"`
		FindTime         string        `yaml:"findtime,omitempty"`
		BanTime          string        `yaml:"bantime,omitempty"`
		BanTimeIncrement *outIncrement `yaml:"bantimeincrement,omitempty"`
		Ports            *[]string     `yaml:"ports,omitempty"`
		Protocol         string        `yaml:"protocol,omitempty"`
		Verdict          string        `yaml:"verdict,omitempty"`
		IgnoreIP         *[]string     `yaml:"ignoreip,omitempty"`
		UseDNS           string        `yaml:"usedns,omitempty"`
	}
	outIncrement struct {
		Enabled    bool    `yaml:"enabled"`
		Multiplier float64 `yaml:"multiplier,omitempty"`
		MaxTime    string  `yaml:"maxtime,omitempty"`
		RndTime    string  `yaml:"rndtime,omitempty"`
	}
	outJail struct {
		Enabled     bool   `yaml:"enabled"`
		Filter      string `yaml:"filter,omitempty"`
		Mode        string `yaml:"mode,omitempty"`
		outSettings `yaml:",inline"`
		Actions     []string `yaml:"actions,omitempty"`
	}
	outFilter struct {
		Programs    []string `yaml:"programs"`
		Engine      string   `yaml:"engine,omitempty"`
		FailRegex   []string `yaml:"failregex"`
		IgnoreRegex []string `yaml:"ignoreregex,omitempty"`
	}
	outAction struct {
		On   []string `yaml:"on,omitempty"`
		Mail *outMail `yaml:"mail,omitempty"`
	}
	outMail struct {
		Server string   `yaml:"server"`
		TLS    string   `yaml:"tls"`
		From   string   `yaml:"from"`
		To     []string `yaml:"to"`
		Whois  bool     `yaml:"whois,omitempty"`
	}
)

// importer carries one import's state.
type importer struct {
	fsys    fs.FS
	jails   *Layers
	out     outConfig
	report  *Report
	filters map[string]FilterResult // by fail2ban filter text, shared by jails
	names   map[string]string       // sysban jail name -> fail2ban section
}

// Import reads the fail2ban configuration in fsys (the contents of
// /etc/fail2ban) and translates it. dir only labels the report. An error
// means the jail files could not be read at all (malformed, too large);
// everything else is in the report.
func Import(fsys fs.FS, dir string) (*Result, error) {
	jails, err := readLayers(fsys, "jail")
	if err != nil {
		return nil, fmt.Errorf("fail2ban: %w", err)
	}
	im := &importer{
		fsys: fsys, jails: jails,
		out:     outConfig{Jails: map[string]*outJail{}, Filters: map[string]outFilter{}, Actions: map[string]outAction{}},
		report:  &Report{Dir: dir, Files: jails.Files()},
		filters: map[string]FilterResult{}, names: map[string]string{},
	}
	if err := im.general(); err != nil {
		return nil, err
	}
	im.out.Defaults = im.settings(DefaultSection, &im.report.General)
	im.otherKeys(DefaultSection, &im.report.General)
	for _, sec := range jails.Sections() {
		if sec == DefaultSection {
			continue
		}
		if strings.ContainsRune(sec, '?') {
			im.report.Warnings = append(im.report.Warnings, fmt.Sprintf("[%s]: conditional sections are not read", sec))
			continue
		}
		im.jail(sec)
	}
	if _, ok := im.out.Jails["sshd"]; !ok {
		why := "sysban's built-in config enables its own sshd jail; your fail2ban configuration has no [sshd], so it is turned off here"
		if im.names["sshd"] != "" {
			why = "sysban's built-in config enables its own sshd jail; your [sshd] could not be carried, so it is turned off here"
		}
		im.out.Jails["sshd"] = &outJail{Enabled: false}
		im.report.General = append(im.report.General, Item{Key: "jails.sshd", To: "enabled: false", Status: StatusChanged, Why: why})
	}
	im.count()
	data, err := im.yaml()
	if err != nil {
		return nil, err
	}
	// What `sysban check` would say, so a translation mistake shows here
	// and not when the daemon starts.
	if _, err := config.Parse("import-fail2ban output", data, nil); err != nil {
		return nil, fmt.Errorf("fail2ban: %w (a bug in the importer, please report it): %w", errOutputInvalid, err)
	}
	return &Result{YAML: data, Report: im.report}, nil
}

func (im *importer) count() {
	c := &im.report.Counts
	for _, it := range im.report.General {
		if it.Status == StatusDropped {
			c.Dropped++
		}
	}
	seen := map[string]bool{}
	for _, j := range im.report.Jails {
		c.Jails++
		if j.Enabled {
			c.JailsEnabled++
		}
		if j.NotCarried != "" {
			c.JailsNotCarried++
		} else {
			c.JailsCarried++
		}
		for _, it := range j.Items {
			if it.Status == StatusDropped {
				c.Dropped++
			}
		}
		f := j.Filter
		if f == nil {
			if j.NotCarried == "" {
				c.FiltersBuiltin++
			}
			continue
		}
		for _, p := range f.Patterns {
			if p.Status == StatusDropped {
				c.Dropped++
			}
		}
		if seen[f.Name] {
			continue
		}
		seen[f.Name] = true
		backtrack := slices.ContainsFunc(f.Patterns, func(p PatternResult) bool { return p.Backtracking })
		switch {
		case backtrack:
			c.FiltersBacktracking++
			if f.Spec == nil {
				c.FiltersNotCarried++
			} else {
				c.FiltersTranslated++
			}
		case f.Spec == nil:
			c.FiltersNotCarried++
		default:
			c.FiltersTranslated++
		}
	}
}

func (im *importer) yaml() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Imported from %s by sysban import-fail2ban.\n", im.report.Dir)
	b.WriteString("# Drop it into conf.d/ beside your sysban.yaml; the report says what changed.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(im.out); err != nil {
		return nil, fmt.Errorf("fail2ban: write yaml: %w", err)
	}
	return b.Bytes(), enc.Close()
}

// general reads fail2ban.conf/.local: what sysban has a key for.
func (im *importer) general() error {
	l, err := readLayers(im.fsys, "fail2ban")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fail2ban: %w", err)
	}
	for _, k := range l.OwnKeys("Definition") {
		v, err := l.Get("Definition", k, nil)
		it := Item{Key: "fail2ban.conf " + k, From: v}
		switch {
		case err != nil:
			it.Status, it.Why = StatusDropped, err.Error()
		case k == "dbpurgeage":
			if d, derr := duration(v); derr == nil && d != "-1" {
				im.out.State = map[string]string{"dbpurgeage": d}
				it.Status, it.To = StatusCarried, "state.dbpurgeage: "+d
			} else {
				it.Status, it.Why = StatusDropped, fmt.Sprintf("not a duration sysban reads: %v", derr)
			}
		case k == "loglevel":
			if lvl, ok := logLevel(v); ok {
				im.out.Log = map[string]string{"level": lvl}
				it.Status, it.To = StatusChanged, "log.level: "+lvl
				it.Why = "sysban has four levels"
			} else {
				it.Status, it.Why = StatusDropped, "unknown level"
			}
		case k == "allowipv6":
			it.Status, it.Why = StatusChanged, "sysban always handles IPv6"
		case k == "dbfile":
			it.Status, it.Why = StatusChanged, "sysban keeps bans and their history in state.dir (default /var/lib/sysban)"
		case k == "logtarget":
			it.Status, it.Why = StatusChanged, "sysban logs to stderr (the journal under systemd); log.format chooses text or json"
		case k == "socket":
			it.Status, it.Why = StatusChanged, "sysban's control socket is control.socket (default /run/sysban/control.sock)"
		case k == "pidfile":
			it.Status, it.Why = StatusChanged, "sysban needs no pid file: `sysban status` asks the control socket"
		default:
			it.Status, it.Why = StatusDropped, "no sysban equivalent"
		}
		im.report.General = append(im.report.General, it)
	}
	return nil
}

func logLevel(v string) (string, bool) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "CRITICAL", "ERROR", "1", "0":
		return "error", true
	case "WARNING", "WARN", "2":
		return "warn", true
	case "NOTICE", "INFO", "3":
		return "info", true
	case "DEBUG", "TRACEDEBUG", "HEAVYDEBUG", "4":
		return "debug", true
	}
	return "", false
}

// sysbanName turns a fail2ban section or filter name into a sysban name.
func sysbanName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	n := b.String()
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		n = "f2b-" + n
	}
	if len(n) > 32 {
		n = n[:32]
	}
	return n
}

// hashHint explains a value that ends in a '#' remark.
func hashHint(v string) string {
	if strings.Contains(v, " #") {
		return "; fail2ban reads '#' after a value as part of it (only ' ;' starts an inline comment), so fail2ban rejects this value too"
	}
	return ""
}

// get reads a jail key; unset is "", an interpolation error becomes a
// dropped item.
func (im *importer) get(sec, key string, items *[]Item) (string, bool) {
	v, err := im.jails.Get(sec, key, nil)
	if errors.Is(err, ErrNoOption) {
		return "", false
	}
	if err != nil {
		*items = append(*items, Item{Key: key, Status: StatusDropped, Why: err.Error()})
		return "", false
	}
	return v, true
}

// settings translates the counting and ban keys of a jail or [DEFAULT].
func (im *importer) settings(sec string, items *[]Item) *outSettings {
	s := &outSettings{}
	if v, ok := im.get(sec, "maxretry", items); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 1 {
			s.MaxRetry = n
			*items = append(*items, Item{Key: "maxretry", From: v, To: fmt.Sprintf("maxretry: %d", n), Status: StatusCarried})
		} else {
			*items = append(*items, Item{Key: "maxretry", From: v, Status: StatusDropped, Why: "not a positive whole number"})
		}
	}
	for _, k := range []string{"findtime", "bantime"} {
		v, ok := im.get(sec, k, items)
		if !ok {
			continue
		}
		d, err := duration(v)
		if err == nil && d == "-1" && k == "findtime" {
			err = errors.New("-1 is only meaningful for bantime")
		}
		if err != nil {
			*items = append(*items, Item{Key: k, From: v, Status: StatusDropped, Why: err.Error() + hashHint(v)})
			continue
		}
		if k == "findtime" {
			s.FindTime = d
		} else {
			s.BanTime = d
		}
		*items = append(*items, Item{Key: k, From: v, To: k + ": " + d, Status: StatusCarried})
	}
	s.BanTimeIncrement = im.increment(sec, items)
	if v, ok := im.get(sec, "ignoreip", items); ok {
		list := []string{}
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			p, err := config.ParsePrefix(f)
			if err != nil {
				why := "a hostname: sysban's ignoreip takes addresses and CIDRs; add its addresses"
				if strings.HasPrefix(f, "/") || strings.HasPrefix(f, "file:") {
					why = "a file of addresses: list them in ignoreip"
				}
				*items = append(*items, Item{Key: "ignoreip", From: f, Status: StatusDropped, Why: why})
				continue
			}
			list = append(list, p.String())
		}
		s.IgnoreIP = &list
		*items = append(*items, Item{Key: "ignoreip", From: v, To: "ignoreip: [" + strings.Join(list, ", ") + "]", Status: StatusCarried})
	}
	if v, ok := im.get(sec, "usedns", items); ok {
		switch u := strings.ToLower(strings.TrimSpace(v)); u {
		case "yes", "warn", "no":
			s.UseDNS = u
			*items = append(*items, Item{Key: "usedns", From: v, To: "usedns: " + u, Status: StatusCarried})
		case "raw":
			s.UseDNS = "warn"
			*items = append(*items, Item{Key: "usedns", From: v, To: "usedns: warn", Status: StatusChanged,
				Why: "sysban bans addresses, never a hostname as written: it resolves it (with a warning)"})
		default:
			*items = append(*items, Item{Key: "usedns", From: v, Status: StatusDropped, Why: "want yes, warn, no or raw"})
		}
	}
	return s
}

// increment translates bantime.increment and its companions.
func (im *importer) increment(sec string, items *[]Item) *outIncrement {
	v, ok := im.get(sec, "bantime.increment", items)
	if !ok {
		return nil
	}
	on, valid := boolValue(v)
	if !valid {
		*items = append(*items, Item{Key: "bantime.increment", From: v, Status: StatusDropped, Why: "not a boolean"})
		return nil
	}
	inc := &outIncrement{Enabled: on, Multiplier: 2}
	*items = append(*items, Item{Key: "bantime.increment", From: v, To: fmt.Sprintf("bantimeincrement.enabled: %v", on), Status: StatusCarried})
	if m, ok := im.get(sec, "bantime.multipliers", items); ok && strings.TrimSpace(m) != "" {
		it := Item{Key: "bantime.multipliers", From: m}
		var ns []float64
		for _, f := range strings.Fields(m) {
			if n, err := strconv.ParseFloat(f, 64); err == nil && n > 0 {
				ns = append(ns, n)
			}
		}
		if len(ns) >= 2 {
			inc.Multiplier = min(max(ns[1]/ns[0], 1), 1000)
			it.To = fmt.Sprintf("bantimeincrement.multiplier: %g", inc.Multiplier)
			it.Status, it.Why = StatusChanged, "sysban grows bans geometrically (bantime × multiplier^(n-1)); the ratio of your first two multipliers is used"
		} else {
			it.Status, it.Why = StatusDropped, "want at least two numbers"
		}
		*items = append(*items, it)
	}
	if f, ok := im.get(sec, "bantime.factor", items); ok && strings.TrimSpace(f) != "" && strings.TrimSpace(f) != "1" {
		*items = append(*items, Item{Key: "bantime.factor", From: f, Status: StatusDropped, Why: "sysban has no factor: scale bantime instead"})
	}
	if f, ok := im.get(sec, "bantime.formula", items); ok && strings.TrimSpace(f) != "" {
		*items = append(*items, Item{Key: "bantime.formula", From: f, Status: StatusDropped, Why: "sysban runs no Python formulas: bantime × multiplier^(n-1)"})
	}
	for _, k := range []string{"bantime.maxtime", "bantime.rndtime"} {
		m, ok := im.get(sec, k, items)
		if !ok || strings.TrimSpace(m) == "" {
			continue
		}
		d, err := duration(m)
		if err != nil || d == "-1" {
			*items = append(*items, Item{Key: k, From: m, Status: StatusDropped, Why: fmt.Sprintf("not a duration: %v", err)})
			continue
		}
		if k == "bantime.maxtime" {
			inc.MaxTime = d
		} else {
			inc.RndTime = d
		}
		*items = append(*items, Item{Key: k, From: m, To: "bantimeincrement." + strings.TrimPrefix(k, "bantime.") + ": " + d, Status: StatusCarried})
	}
	if o, ok := im.get(sec, "bantime.overalljails", items); ok {
		if b, _ := boolValue(o); b {
			*items = append(*items, Item{Key: "bantime.overalljails", From: o, Status: StatusDropped,
				Why: "sysban counts earlier bans per jail; the recidive jail bans addresses that offend across jails"})
		}
	}
	return inc
}

// builtinPrograms returns the programs of a sysban filter, built-in or
// translated.
func (im *importer) programsOf(filter string) []string {
	if spec, ok := pipeline.BuiltinFilters()[filter]; ok {
		return spec.Programs
	}
	return im.out.Filters[filter].Programs
}
