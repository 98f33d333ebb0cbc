package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// The keys each section accepts; anything else is an error with a
// "did you mean" hint.
var (
	topFields     = []string{"listen", "defaults", "maxtracked", "jails", "filters", "nft", "log", "state", "control", "metrics", "actions", "notify", "nflog"}
	sectionFields = map[string][]string{
		"listen": {"udp", "tcp", "tls", "unix", "allow", "readbuffer", "maxmessagesize", "maxconnections", "idletimeout",
			"maxconnectionspersource", "frametimeout", "handshaketimeout", "ratepersender", "rateburst", "ratemaxsenders",
			"remotestreamonly", "tlscert", "tlskey", "tlsclientca", "tlsclientnames"},
		"defaults": {"maxretry", "findtime", "bantime", "bantimeincrement", "ports", "protocol", "verdict", "ignoreip", "usedns"},
		"state":    {"dir", "dbpurgeage"},
		"control":  {"socket"},
		"metrics":  {"listen"},
		"nft":      {"table", "priority"},
		"log":      {"level", "format"},
		"nflog":    {"enabled", "group", "rate", "snaplen", "banned", "trapports"},
	}
	// trapFields are the keys of nflog.trapports: a port list per protocol.
	trapFields   = []string{"tcp", "udp"}
	jailFields   = []string{"enabled", "filter", "mode", "maxretry", "findtime", "bantime", "bantimeincrement", "ports", "protocol", "verdict", "ignoreip", "usedns", "actions"}
	filterFields = []string{"programs", "failregex", "ignoreregex", "vars"}
	// incrementFields are the keys of defaults.bantimeincrement and
	// jails.NAME.bantimeincrement.
	incrementFields = []string{"enabled", "multiplier", "maxtime", "rndtime"}
)

// nameRE bounds jail and filter names: they become nftables set names
// ("<jail>_v4") and must survive viper's lower-casing and dot splitting.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// decoder turns viper's merged settings into a Config, collecting every
// error with the key and the layer it came from.
type decoder struct {
	origin map[string]string
	errs   []error
}

func (d *decoder) fail(key string, format string, args ...any) {
	src := d.source(key)
	d.errs = append(d.errs, fmt.Errorf("config: %s: %s: %s", src, key, fmt.Sprintf(format, args...)))
}

// source finds the layer that set key or, for a map, a key below it; it
// walks up to the nearest ancestor the layers mention. A user layer wins over
// the built-in one, since that is where the user will look.
func (d *decoder) source(key string) string {
	for k := key; k != ""; k = parentKey(k) {
		if s, ok := d.origin[k]; ok {
			return s
		}
		best := ""
		// In key order, so that the layer named is the same every time.
		for _, ok := range slices.Sorted(maps.Keys(d.origin)) {
			if s := d.origin[ok]; strings.HasPrefix(ok, k+".") && (best == "" || best == BuiltinSource) {
				best = s
			}
		}
		if best != "" {
			return best
		}
	}
	return BuiltinSource
}

func parentKey(k string) string {
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[:i]
	}
	return ""
}

func (d *decoder) err() error { return errors.Join(d.errs...) }

func (d *decoder) decode(root map[string]any) *Config {
	d.checkKeys("", root, topFields)
	cfg := &Config{}

	listen := d.section(root, "listen")
	d.checkKeys("listen", listen, sectionFields["listen"])
	for _, a := range d.strings(listen, "listen.udp") {
		cfg.Listen.Specs = append(cfg.Listen.Specs, receiver.ListenerSpec{Network: "udp", Address: d.hostPort("listen.udp", a)})
	}
	for _, a := range d.strings(listen, "listen.tcp") {
		cfg.Listen.Specs = append(cfg.Listen.Specs, receiver.ListenerSpec{Network: "tcp", Address: d.hostPort("listen.tcp", a)})
	}
	for _, a := range d.strings(listen, "listen.tls") {
		addr := a
		if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
			addr = netip.AddrPortFrom(ip, receiver.TLSDefaultPort).String()
		}
		cfg.Listen.Specs = append(cfg.Listen.Specs, receiver.ListenerSpec{Network: receiver.TLS, Address: d.hostPort("listen.tls", addr)})
	}
	for _, a := range d.strings(listen, "listen.unix") {
		network, path := receiver.Network("unixgram"), a
		if p, ok := strings.CutPrefix(a, "stream:"); ok {
			network, path = "unix", p
		} else if p, ok := strings.CutPrefix(a, "dgram:"); ok {
			path = p
		}
		if !strings.HasPrefix(path, "/") {
			d.fail("listen.unix", "%q: want an absolute path, optionally prefixed stream: or dgram:", a)
			continue
		}
		cfg.Listen.Specs = append(cfg.Listen.Specs, receiver.ListenerSpec{Network: network, Address: path})
	}
	cfg.Listen.Allow = d.prefixes(listen, "listen.allow")
	cfg.Listen.ReadBuffer = d.intRange(listen, "listen.readbuffer", 0, 1<<30)
	cfg.Listen.MaxMessageSize = d.intRange(listen, "listen.maxmessagesize", 480, 1<<20)
	cfg.Listen.MaxConnections = d.intRange(listen, "listen.maxconnections", 1, 1<<20)
	cfg.Listen.IdleTimeout = d.duration(listen, "listen.idletimeout", false)
	cfg.Listen.MaxConnectionsPerSource = d.intRange(listen, "listen.maxconnectionspersource", 1, 1<<20)
	cfg.Listen.FrameTimeout = d.duration(listen, "listen.frametimeout", false)
	cfg.Listen.HandshakeTimeout = d.duration(listen, "listen.handshaketimeout", false)
	cfg.Listen.RatePerSender = d.float(listen, "listen.ratepersender", 0, 1e7)
	cfg.Listen.RateBurst = d.intRange(listen, "listen.rateburst", 0, 1<<30)
	if cfg.Listen.RateBurst > 0 && cfg.Listen.RatePerSender == 0 {
		d.fail("listen.rateburst", "set without listen.ratepersender")
	}
	cfg.Listen.RateMaxSenders = d.intRange(listen, "listen.ratemaxsenders", 1, 1<<24)
	cfg.Listen.RemoteStreamOnly = d.boolean(listen, "listen.remotestreamonly")
	cfg.Listen.TLSFiles = receiver.TLSFiles{
		CertFile:     d.str(listen, "listen.tlscert"),
		KeyFile:      d.str(listen, "listen.tlskey"),
		ClientCAFile: d.str(listen, "listen.tlsclientca"),
		ClientNames:  d.strings(listen, "listen.tlsclientnames"),
	}
	hasTLS := false
	for _, sp := range cfg.Listen.Specs {
		hasTLS = hasTLS || sp.Network == receiver.TLS
	}
	switch tf := cfg.Listen.TLSFiles; {
	case hasTLS && (tf.CertFile == "" || tf.KeyFile == ""):
		d.fail("listen.tlscert", "listen.tlscert and listen.tlskey are required when listen.tls is set")
	case !hasTLS && (tf.CertFile != "" || tf.KeyFile != "" || tf.ClientCAFile != ""):
		d.fail("listen.tlscert", "TLS files set but listen.tls is empty")
	case len(tf.ClientNames) > 0 && tf.ClientCAFile == "":
		d.fail("listen.tlsclientnames", "needs listen.tlsclientca (names are checked on verified client certificates)")
	}

	defaults := d.section(root, "defaults")
	d.checkKeys("defaults", defaults, sectionFields["defaults"])
	cfg.Defaults = d.jailSettings(defaults, "defaults", JailSettings{})

	cfg.MaxTracked = d.intRange(root, "maxtracked", 1, 1<<26)

	filters := d.section(root, "filters")
	builtin := pipeline.BuiltinFilters()
	cfg.Filters = map[string]pipeline.FilterSpec{}
	for _, name := range slices.Sorted(maps.Keys(filters)) {
		key := "filters." + name
		if !nameRE.MatchString(name) {
			d.fail(key, "filter name %q: want a lower-case letter, then letters, digits, '-' or '_', at most 32", name)
			continue
		}
		if name == pipeline.RecidiveFilter {
			d.fail(key, "the name %q is reserved: jails with filter %s count sysban's own bans, not log lines", name, name)
			continue
		}
		fm, ok := filters[name].(map[string]any)
		if !ok {
			d.fail(key, "want a map with %s", strings.Join(filterFields, ", "))
			continue
		}
		d.checkKeys(key, fm, filterFields)
		// An entry named like a built-in filter adjusts it: the keys it
		// sets replace the built-in's, the others stay (e.g. only vars).
		spec, isBuiltin := builtin[name]
		spec.Name = name
		if _, ok := fm["programs"]; ok || !isBuiltin {
			spec.Programs = d.strings(fm, key+".programs")
		}
		if _, ok := fm["failregex"]; ok || !isBuiltin {
			spec.FailRegex = d.strings(fm, key+".failregex")
		}
		if _, ok := fm["ignoreregex"]; ok || !isBuiltin {
			spec.IgnoreRegex = d.strings(fm, key+".ignoreregex")
		}
		if _, ok := fm["vars"]; ok {
			vars := map[string][]string{}
			for k, v := range spec.Vars {
				vars[k] = v
			}
			vm := d.section(fm, key+".vars")
			for _, vn := range slices.Sorted(maps.Keys(vm)) {
				vars[vn] = d.strings(vm, key+".vars."+vn)
			}
			spec.Vars = vars
		}
		if len(spec.Programs) == 0 {
			d.fail(key+".programs", "a filter needs at least one program")
		}
		if len(spec.FailRegex) == 0 && len(spec.Correlate) == 0 {
			d.fail(key+".failregex", "a filter needs at least one failregex")
		}
		if _, err := pipeline.CompileFilter(spec); err != nil {
			d.fail(key, "%v", err)
		}
		cfg.Filters[name] = spec
	}

	cfg.Actions = d.decodeActions(root)
	cfg.Notify = d.decodeNotify(root)

	jails := d.section(root, "jails")
	for _, name := range slices.Sorted(maps.Keys(jails)) {
		key := "jails." + name
		if !nameRE.MatchString(name) {
			d.fail(key, "jail name %q: want lower-case letters, digits, '-' or '_', at most 32", name)
			continue
		}
		jm, ok := jails[name].(map[string]any)
		if !ok {
			d.fail(key, "want a map with %s", strings.Join(jailFields, ", "))
			continue
		}
		d.checkKeys(key, jm, jailFields)
		j := Jail{Name: name, Filter: name, Enabled: d.boolean(jm, key+".enabled")}
		if s := d.str(jm, key+".filter"); s != "" {
			j.Filter = s
		}
		if _, user := cfg.Filters[j.Filter]; !user && j.Filter != pipeline.RecidiveFilter {
			if _, ok := builtin[j.Filter]; !ok {
				d.fail(key+".filter", "no filter named %q%s", j.Filter,
					didYouMean(j.Filter, append(append(slices.Sorted(maps.Keys(builtin)), slices.Sorted(maps.Keys(cfg.Filters))...), pipeline.RecidiveFilter)))
			}
		}
		j.Mode = d.str(jm, key+".mode")
		if j.Filter == pipeline.RecidiveFilter && j.Mode != "" && j.Mode != "normal" {
			d.fail(key+".mode", "%q: filter %s counts bans and has no modes", j.Mode, pipeline.RecidiveFilter)
		}
		j.Actions = d.strings(jm, key+".actions")
		for _, a := range j.Actions {
			if _, ok := cfg.Actions[a]; !ok {
				d.fail(key+".actions", "no action named %q%s", a, didYouMean(a, slices.Sorted(maps.Keys(cfg.Actions))))
			}
		}
		j.JailSettings = d.jailSettings(jm, key, cfg.Defaults)
		cfg.Jails = append(cfg.Jails, j)
	}

	nftm := d.section(root, "nft")
	d.checkKeys("nft", nftm, sectionFields["nft"])
	cfg.NFT.Table = d.str(nftm, "nft.table")
	if !nameRE.MatchString(cfg.NFT.Table) {
		d.fail("nft.table", "%q: want lower-case letters, digits, '-' or '_', at most 32", cfg.NFT.Table)
	}
	cfg.NFT.Priority = d.intRange(nftm, "nft.priority", -400, 400)

	statem := d.section(root, "state")
	d.checkKeys("state", statem, sectionFields["state"])
	cfg.State.Dir = d.str(statem, "state.dir")
	if !strings.HasPrefix(cfg.State.Dir, "/") {
		d.fail("state.dir", "%q: want an absolute path", cfg.State.Dir)
	}
	cfg.State.PurgeAge = d.duration(statem, "state.dbpurgeage", false)

	ctlm := d.section(root, "control")
	d.checkKeys("control", ctlm, sectionFields["control"])
	cfg.Control.Socket = d.str(ctlm, "control.socket")
	if !strings.HasPrefix(cfg.Control.Socket, "/") {
		d.fail("control.socket", "%q: want an absolute path", cfg.Control.Socket)
	}

	metm := d.section(root, "metrics")
	d.checkKeys("metrics", metm, sectionFields["metrics"])
	if l := d.str(metm, "metrics.listen"); l != "" && l != "off" {
		cfg.Metrics.Listen = d.hostPort("metrics.listen", l)
	}

	cfg.NFLOG = d.decodeNFLOG(root)
	for _, j := range cfg.Jails {
		if j.Enabled && j.Filter == "portprobe" && (!cfg.NFLOG.Enabled || len(cfg.NFLOG.TrapTCP)+len(cfg.NFLOG.TrapUDP) == 0) {
			d.fail("jails."+j.Name+".enabled", "jail %s reads the probes of nflog.trapports, but nflog is not enabled with trap ports: it would never ban anyone", j.Name)
		}
	}

	logm := d.section(root, "log")
	d.checkKeys("log", logm, sectionFields["log"])
	cfg.Log.Level = d.oneOf(logm, "log.level", "debug", "info", "warn", "error")
	cfg.Log.Format = d.oneOf(logm, "log.format", "text", "json")
	return cfg
}

// jailSettings reads the per-jail keys of m, taking absent ones from base.
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
	d.checkKeys(key, im, incrementFields)
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

func (d *decoder) section(m map[string]any, key string) map[string]any {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		return map[string]any{}
	}
	sm, ok := v.(map[string]any)
	if !ok {
		d.fail(key, "want a map, got %s", describe(v))
		return map[string]any{}
	}
	return sm
}

func (d *decoder) checkKeys(key string, m map[string]any, allowed []string) {
	// Sorted, so one config always gives the same report.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			full := k
			if key != "" {
				full = key + "." + k
			}
			d.fail(full, "unknown key%s", didYouMean(k, allowed))
		}
	}
}

func (d *decoder) str(m map[string]any, key string) string {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		return ""
	}
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case int, int64, float64, bool:
		return fmt.Sprint(t)
	}
	d.fail(key, "want a string, got %s", describe(v))
	return ""
}

// strings reads a list; a single string is split on commas and white space
// (fail2ban's "ignoreip = 127.0.0.1/8 10.0.0.0/8" and environment values).
func (d *decoder) strings(m map[string]any, key string) []string {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		return nil
	}
	var out []string
	switch t := v.(type) {
	case string:
		for _, f := range strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			out = append(out, f)
		}
		// Regexes contain spaces: a lone string under a regex key is one pattern.
		if strings.HasSuffix(key, "regex") {
			out = []string{t}
		}
	case []any:
		for i, e := range t {
			switch s := e.(type) {
			case string:
				out = append(out, s)
			case int, int64, float64:
				out = append(out, fmt.Sprint(s))
			default:
				d.fail(fmt.Sprintf("%s[%d]", key, i), "want a string, got %s", describe(e))
			}
		}
	default:
		d.fail(key, "want a list, got %s", describe(v))
	}
	return out
}

func (d *decoder) boolean(m map[string]any, key string) bool {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		return false
	}
	switch t := v.(type) {
	case bool:
		return t
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "true", "yes", "on", "1":
			return true
		case "false", "no", "off", "0":
			return false
		}
	}
	d.fail(key, "want true or false, got %s", describe(v))
	return false
}

func (d *decoder) intRange(m map[string]any, key string, lo, hi int) int {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		d.fail(key, "missing")
		return 0
	}
	var n int
	switch t := v.(type) {
	case int:
		n = t
	case int64:
		n = int(t)
	case float64:
		if t != float64(int(t)) {
			d.fail(key, "want a whole number, got %v", t)
			return 0
		}
		n = int(t)
	case string:
		var err error
		if n, err = strconv.Atoi(strings.TrimSpace(t)); err != nil {
			d.fail(key, "want a whole number, got %q", t)
			return 0
		}
	default:
		d.fail(key, "want a whole number, got %s", describe(v))
		return 0
	}
	if n < lo || n > hi {
		d.fail(key, "%d is out of range [%d, %d]", n, lo, hi)
	}
	return n
}

func (d *decoder) float(m map[string]any, key string, lo, hi float64) float64 {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		d.fail(key, "missing")
		return 0
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(fmt.Sprint(v)), 64)
	if err != nil {
		d.fail(key, "want a number, got %s", describe(v))
		return 0
	}
	if f < lo || f > hi {
		d.fail(key, "%v is out of range [%v, %v]", f, lo, hi)
	}
	return f
}

func (d *decoder) oneOf(m map[string]any, key string, allowed ...string) string {
	s := strings.ToLower(d.str(m, key))
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.fail(key, "%q: want one of %s", s, strings.Join(allowed, ", "))
	return ""
}

func (d *decoder) duration(m map[string]any, key string, permanentOK bool) time.Duration {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		d.fail(key, "missing")
		return 0
	}
	dur, err := ParseDuration(fmt.Sprint(v))
	if err != nil {
		d.fail(key, "%v", err)
		return 0
	}
	if dur == sysban.Permanent && !permanentOK {
		d.fail(key, "-1 (permanent) is only meaningful for bantime")
		return 0
	}
	return dur
}

func (d *decoder) prefixes(m map[string]any, key string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range d.strings(m, key) {
		p, err := ParsePrefix(s)
		if err != nil {
			d.fail(key, "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *decoder) ports(m map[string]any, key string) []sysban.PortRange {
	var out []sysban.PortRange
	for _, s := range d.strings(m, key) {
		r, err := ParsePort(s)
		if err != nil {
			d.fail(key, "%v", err)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (d *decoder) hostPort(key, s string) string {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		d.fail(key, "%q: want IP:port (e.g. 127.0.0.1:5514 or [::1]:5514): %v", s, err)
		return s
	}
	return ap.String()
}

// ParseDuration reads 30s, 10m, 1h30m, 1d, 2w, a plain number of seconds
// (fail2ban's habit), or -1 (sysban.Permanent).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "-1" || s == "-1s" {
		return sysban.Permanent, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > int64(100*365*24*3600) {
			return 0, fmt.Errorf("duration %q: want a positive number of seconds or -1", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	// Expand d and w, which time.ParseDuration lacks.
	var total time.Duration
	rest := s
	for _, unit := range []struct {
		suffix byte
		d      time.Duration
	}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}} {
		if i := strings.IndexByte(rest, unit.suffix); i > 0 {
			n, err := strconv.Atoi(rest[:i])
			if err != nil || n < 0 {
				return 0, fmt.Errorf("duration %q: bad count before %q", s, unit.suffix)
			}
			total += time.Duration(n) * unit.d
			rest = rest[i+1:]
		}
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want e.g. 30s, 10m, 1h, 1d, 1w, seconds, or -1", s)
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q: must be positive (or -1 for permanent)", s)
	}
	return total, nil
}

// ParsePrefix reads an address (a host prefix) or a CIDR. fail2ban's
// "127.0.0.1/8" (host bits set) is accepted and masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: not an address or CIDR", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: not an address or CIDR", s)
	}
	a = sysban.CanonicalAddr(a)
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func lastKey(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[i+1:]
	}
	return key
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", v)
	}
	return fmt.Sprintf("%T %v", v, v)
}

// didYouMean suggests the closest candidate within a small edit distance.
func didYouMean(s string, candidates []string) string {
	best, bestD := "", 4
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeNFLOG reads the nflog section. Its values are checked even when it
// is disabled, so turning it on later cannot reveal old mistakes.
func (d *decoder) decodeNFLOG(root map[string]any) NFLOG {
	m := d.section(root, "nflog")
	d.checkKeys("nflog", m, sectionFields["nflog"])
	n := NFLOG{
		Enabled: d.boolean(m, "nflog.enabled"),
		Group:   uint16(d.intRange(m, "nflog.group", 0, 65535)),
		Rate:    d.intRange(m, "nflog.rate", 1, 1000000),
		// 64 bytes hold an IPv6 header and the TCP flags; more than a
		// page is never needed for headers.
		Snaplen: d.intRange(m, "nflog.snaplen", 64, 4096),
		Banned:  d.boolean(m, "nflog.banned"),
	}
	tp := d.section(m, "nflog.trapports")
	d.checkKeys("nflog.trapports", tp, trapFields)
	n.TrapTCP = d.ports(tp, "nflog.trapports.tcp")
	n.TrapUDP = d.ports(tp, "nflog.trapports.udp")
	if n.Enabled && !n.Banned && len(n.TrapTCP)+len(n.TrapUDP) == 0 {
		d.fail("nflog.enabled", "nflog is enabled but watches nothing: set nflog.banned: true or list nflog.trapports")
	}
	return n
}
