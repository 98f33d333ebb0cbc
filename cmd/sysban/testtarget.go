package main

// The targets of `sysban test`: a built-in or config filter, a jail (its
// filter in its mode), a filter file, or all filters.

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/pipeline"
)

// selectFilters resolves the FILTER|JAIL|FILTERFILE|all argument to filter
// specs and the mode to run them in; label describes the choice.
func (c *testCmd) selectFilters(o testOptions) (filters []pipeline.FilterSpec, mode, label string, err error) {
	cfg, err := config.Load(o.configPath, c.environ)
	if err != nil {
		return nil, "", "", err
	}
	specs := cfg.AllFilters()
	mode = o.mode
	t := o.target
	isPath := strings.ContainsRune(t, '/') || strings.HasSuffix(t, ".yaml") || strings.HasSuffix(t, ".yml")
	switch {
	case t == "all":
		for _, name := range slices.Sorted(maps.Keys(specs)) {
			filters = append(filters, specs[name])
		}
		return filters, mode, "all filters", nil
	case isPath:
		spec, err := loadFilterFile(t)
		if err != nil {
			return nil, "", "", err
		}
		return []pipeline.FilterSpec{spec}, mode, "filter " + spec.Name + " from " + t, nil
	}
	for _, j := range cfg.Jails {
		if j.Name != t {
			continue
		}
		if j.Filter == pipeline.RecidiveFilter {
			return nil, "", "", fmt.Errorf("jail %s counts sysban's own bans (filter %s), not log lines: there is nothing to test on a log", j.Name, j.Filter)
		}
		spec, ok := specs[j.Filter]
		if !ok {
			return nil, "", "", fmt.Errorf("jail %s: no filter named %q", j.Name, j.Filter)
		}
		if mode == "" {
			mode = j.Mode
		}
		return []pipeline.FilterSpec{spec}, mode, "jail " + j.Name + " (filter " + j.Filter + ")", nil
	}
	if spec, ok := specs[t]; ok {
		return []pipeline.FilterSpec{spec}, mode, "filter " + t, nil
	}
	if st, serr := os.Stat(t); serr == nil && st.Mode().IsRegular() {
		spec, err := loadFilterFile(t)
		if err != nil {
			return nil, "", "", err
		}
		return []pipeline.FilterSpec{spec}, mode, "filter " + spec.Name + " from " + t, nil
	}
	names := slices.Sorted(maps.Keys(specs))
	for _, j := range cfg.Jails {
		if _, ok := specs[j.Name]; !ok {
			names = append(names, j.Name)
		}
	}
	slices.Sort(names)
	return nil, "", "", fmt.Errorf("%q is no filter, jail or filter file; known: all, %s", t, strings.Join(names, ", "))
}

// loadFilterFile reads a FILTERFILE: one filter in the config schema, with
// an optional name, read by the config's own filter decoder
// (config.ParseFilter), so the file behaves exactly as the same filter
// would in the config, unknown keys and bad regexes included.
func loadFilterFile(path string) (pipeline.FilterSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return pipeline.FilterSpec{}, fmt.Errorf("filter file: %w", err)
	}
	return config.ParseFilter(path, data)
}
