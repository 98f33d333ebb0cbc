package config

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sysban/sysban/pipeline"
)

// filterKeys are the keys of filters.NAME (and of a filter file), which
// decodeFilter reads.
var filterKeys = []string{"programs", "failregex", "ignoreregex", "vars", "trust", "engine", "matchtimeout"}

// trustKeys are the keys of filters.NAME.trust: whom the filter believes
// when a line's sender is vouched for (pipeline/provenance.go).
var trustKeys = []string{"users", "exes", "units"}

// decodeFilters reads the filters section: user filters, and adjustments
// of built-in ones, by name.
func (d *decoder) decodeFilters(root map[string]any) map[string]pipeline.FilterSpec {
	builtin := pipeline.BuiltinFilters()
	out := map[string]pipeline.FilterSpec{}
	d.namedEntries(root, "filters", "filter", nameRule, strings.Join(filterKeys, ", "), func(key, name string, m map[string]any) {
		if spec, ok := d.decodeFilter(key, name, m, builtin); ok {
			out[name] = spec
		}
	})
	return out
}

// decodeFilter reads the filter name from m, found at key ("" for a filter
// file), and has the pipeline validate it. An entry named like a built-in
// filter adjusts it: the keys it sets replace the built-in's, the others
// stay (e.g. only vars). ok is false when the name is refused outright.
func (d *decoder) decodeFilter(key, name string, m map[string]any, builtin map[string]pipeline.FilterSpec) (spec pipeline.FilterSpec, ok bool) {
	spec, isBuiltin := builtin[name]
	spec.Name = name
	if err := pipeline.ValidateFilterName(name); err != nil {
		// Nothing else about the entry matters.
		d.specErrors(key, err)
		return spec, false
	}
	d.checkKeys(key, m, filterKeys)
	if _, ok := m["programs"]; ok || !isBuiltin {
		spec.Programs = d.strings(m, subKey(key, "programs"))
	}
	if _, ok := m["failregex"]; ok || !isBuiltin {
		spec.FailRegex = d.strings(m, subKey(key, "failregex"))
	}
	if _, ok := m["ignoreregex"]; ok || !isBuiltin {
		spec.IgnoreRegex = d.strings(m, subKey(key, "ignoreregex"))
	}
	if _, ok := m["vars"]; ok {
		vars := maps.Clone(spec.Vars)
		if vars == nil {
			vars = map[string][]string{}
		}
		vk := subKey(key, "vars")
		vm := d.section(m, vk)
		for _, vn := range slices.Sorted(maps.Keys(vm)) {
			vars[vn] = d.strings(vm, vk+"."+vn)
		}
		spec.Vars = vars
	}
	// The backtracking engine only when asked for (pipeline/backtrack.go).
	if _, ok := m["engine"]; ok {
		spec.Engine = d.oneOf(m, subKey(key, "engine"), pipeline.EngineRE2, pipeline.EngineBacktrack)
		if isBuiltin && spec.Engine == pipeline.EngineBacktrack {
			d.fail(subKey(key, "engine"), "built-in filters stay on RE2 (linear time); copy the filter under a new name to run it on the backtracking engine")
			spec.Engine = ""
		}
	}
	if _, ok := m["matchtimeout"]; ok {
		spec.MatchTimeout = d.duration(m, subKey(key, "matchtimeout"), false)
	}
	if _, ok := m["trust"]; ok {
		tk := subKey(key, "trust")
		tm := d.section(m, tk)
		d.checkKeys(tk, tm, trustKeys)
		spec.Trust = pipeline.Trust{Users: d.strings(tm, tk+".users"), Exes: d.strings(tm, tk+".exes"), Units: d.strings(tm, tk+".units")}
	}
	d.specErrors(key, pipeline.ValidateFilter(spec))
	return spec, true
}

// ParseFilter reads a filter file: one filter in the schema of
// filters.NAME (programs, failregex, ignoreregex, vars, trust, engine,
// matchtimeout) plus an optional
// name. name is the file's name: errors say "filter file NAME", and
// without a name key the filter is named after it (made a valid filter
// name). A filter named like a built-in one adjusts it, as in a config.
// The filter is checked as strictly as one in a config: unknown keys, bad
// regexes and missing programs are errors.
func ParseFilter(name string, data []byte) (pipeline.FilterSpec, error) {
	d := &decoder{document: "filter file " + name}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.fail("", "%v", err)
		return pipeline.FilterSpec{}, d.err()
	}
	if doc == nil {
		d.fail("", "empty: want programs and failregex")
		return pipeline.FilterSpec{}, d.err()
	}
	doc = lowerKeys(doc)
	filterName := filterNameFromFile(name)
	if n, ok := doc["name"]; ok {
		filterName = d.str(doc, "name")
		if !nameRE.MatchString(filterName) {
			d.fail("name", "%s: want %s", describe(n), nameRule)
			return pipeline.FilterSpec{}, d.err()
		}
		delete(doc, "name")
	}
	spec, _ := d.decodeFilter("", filterName, doc, pipeline.BuiltinFilters())
	if err := d.err(); err != nil {
		return pipeline.FilterSpec{}, err
	}
	return spec, nil
}

// lowerKeys lower-cases the keys of m and of the maps in it, as viper does
// with a config file, so a filter file reads as the same entry would in
// the config.
func lowerKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sm, ok := v.(map[string]any); ok {
			v = lowerKeys(sm)
		}
		out[strings.ToLower(k)] = v
	}
	return out
}

// filterNameFromFile makes a filter name from a file name, within the
// rules for names (lower case, [a-z0-9_-], at most 32): dots and capitals
// would otherwise be split and folded like keys.
func filterNameFromFile(path string) string {
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".yaml"), ".yml")
	b := []byte(strings.ToLower(base))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 || b[0] < 'a' || b[0] > 'z' {
		b = append([]byte("f-"), b...)
	}
	return string(b[:min(len(b), 32)])
}
