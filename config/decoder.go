package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// The decoder and its readers of single values. Each section of the config
// has its own file (listen.go, jails.go, filters.go, ...) declaring the
// keys it accepts beside the code that reads them; these readers are what
// that code is written with. Every reader reports a bad value with the key
// and the layer it came from and returns a zero value, so one load reports
// every mistake at once.

// decoder turns viper's merged settings into a Config, collecting every
// error with the key and the layer it came from.
type decoder struct {
	origin map[string]string // key -> the layer that set it
	// document, when set, is the source of every key: the decoder reads
	// one document (a filter file), not layers.
	document string
	errs     []error
}

func (d *decoder) fail(key string, format string, args ...any) {
	src := d.source(key)
	if key == "" { // the document itself
		d.errs = append(d.errs, fmt.Errorf("config: %s: %s", src, fmt.Sprintf(format, args...)))
		return
	}
	d.errs = append(d.errs, fmt.Errorf("config: %s: %s: %s", src, key, fmt.Sprintf(format, args...)))
}

// specErrors reports what the owning package found wrong with the spec
// read at key: a *pipeline.SpecError under its field's key, with a "did
// you mean" hint when it lists choices; any other error under key itself.
func (d *decoder) specErrors(key string, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok { // errors.Join
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var se *pipeline.SpecError
		if errors.As(e, &se) {
			d.fail(subKey(key, se.Field), "%s%s", se.Reason, didYouMean(se.Value, se.Choices))
			continue
		}
		d.fail(key, "%v", e)
	}
}

// namedEntries calls each, in name order, for every entry of the section
// at key (filters, jails, actions) whose name is valid (nameRE) and whose
// value is a map. kind names the entries in errors, rule says what a name
// must be, want what the map should hold.
func (d *decoder) namedEntries(root map[string]any, section, kind, rule, want string, each func(key, name string, m map[string]any)) {
	entries := d.section(root, section)
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		key := section + "." + name
		if !nameRE.MatchString(name) {
			d.fail(key, "%s name %q: want %s", kind, name, rule)
			continue
		}
		m, ok := entries[name].(map[string]any)
		if !ok {
			d.fail(key, "want a map with %s", want)
			continue
		}
		each(key, name, m)
	}
}

// subKey is the full key of field k of the map at key ("" is the root).
func subKey(key, k string) string {
	if key == "" || k == "" {
		return key + k
	}
	return key + "." + k
}

// source finds the layer that set key or, for a map, a key below it; it
// walks up to the nearest ancestor the layers mention. A user layer wins over
// the built-in one, since that is where the user will look.
func (d *decoder) source(key string) string {
	if d.document != "" {
		return d.document
	}
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
		if !slices.Contains(allowed, k) {
			d.fail(subKey(key, k), "unknown key%s", didYouMean(k, allowed))
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

// required returns the value at key, reporting it missing when it is
// absent or null.
func (d *decoder) required(m map[string]any, key string) (any, bool) {
	v, ok := m[lastKey(key)]
	if !ok || v == nil {
		d.fail(key, "missing")
		return nil, false
	}
	return v, true
}

func (d *decoder) intRange(m map[string]any, key string, lo, hi int) int {
	v, ok := d.required(m, key)
	if !ok {
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
	v, ok := d.required(m, key)
	if !ok {
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
	v, ok := d.required(m, key)
	if !ok {
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
	return parseEach(d, m, key, ParsePrefix)
}

func (d *decoder) ports(m map[string]any, key string) []sysban.PortRange {
	return parseEach(d, m, key, ParsePort)
}

// parseEach reads a list and parses each element, reporting those parse
// refuses.
func parseEach[T any](d *decoder, m map[string]any, key string, parse func(string) (T, error)) []T {
	var out []T
	for _, s := range d.strings(m, key) {
		v, err := parse(s)
		if err != nil {
			d.fail(key, "%v", err)
			continue
		}
		out = append(out, v)
	}
	return out
}

// absPath reads a path that must be absolute: the daemon's working
// directory is no place for its state or sockets.
func (d *decoder) absPath(m map[string]any, key string) string {
	p := d.str(m, key)
	if !strings.HasPrefix(p, "/") {
		d.fail(key, "%q: want an absolute path", p)
	}
	return p
}

func (d *decoder) hostPort(key, s string) string {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		d.fail(key, "%q: want IP:port (e.g. 127.0.0.1:5514 or [::1]:5514): %v", s, err)
		return s
	}
	return ap.String()
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
