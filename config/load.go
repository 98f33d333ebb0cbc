package config

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/viper"

	"github.com/sysban/sysban/configs"
)

// BuiltinSource names the embedded configs/sysban.yaml in errors.
const BuiltinSource = "built-in configs/sysban.yaml"

// EnvPrefix starts every environment override.
const EnvPrefix = "SYSBAN_"

// Load builds the configuration from, in order: the built-in defaults, the
// file at path (if path is not empty), every conf.d/*.yaml beside that file in
// name order, and SYSBAN_* variables of environ (os.Environ() form). Later
// layers replace earlier values; maps merge, lists are replaced.
//
// Every error names the layer that supplied the offending value (a file, the
// environment variable, or the built-in config) and the key, and says why.
func Load(path string, environ []string) (*Config, error) {
	layers := []layer{{name: BuiltinSource, data: configs.Default}}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		layers = append(layers, layer{name: path, data: data})
		overlays, err := filepath.Glob(filepath.Join(filepath.Dir(path), "conf.d", "*.yaml"))
		if err != nil {
			return nil, fmt.Errorf("config: conf.d: %w", err)
		}
		sort.Strings(overlays)
		for _, o := range overlays {
			data, err := os.ReadFile(o)
			if err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
			layers = append(layers, layer{name: o, data: data})
		}
	}
	return load(layers, environ)
}

// Parse is Load for a config given as bytes (tests, `sysban check -`), layered
// over the built-in defaults; name labels it in errors.
func Parse(name string, data []byte, environ []string) (*Config, error) {
	return load([]layer{{name: BuiltinSource, data: configs.Default}, {name: name, data: data}}, environ)
}

type layer struct {
	name string
	data []byte
}

// load merges the layers with viper and decodes the result strictly.
//
// Viper does the YAML reading and the deep merge of layers. Two of its habits
// are worked around here rather than inherited: it forgets which layer set a
// key (we record an origin per key so errors can name the file), and its
// AutomaticEnv only applies to keys it already knows and cannot tell
// SYSBAN_JAILS_MY_APP_BANTIME's underscores apart, so environment variables
// are matched against the full set of valid keys here.
func load(layers []layer, environ []string) (*Config, error) {
	merged := viper.New()
	origin := map[string]string{}
	var sources []string
	for _, l := range layers {
		lv := viper.New()
		lv.SetConfigType("yaml")
		if err := lv.ReadConfig(bytes.NewReader(l.data)); err != nil {
			return nil, fmt.Errorf("config: %s: %w", l.name, err)
		}
		for _, k := range lv.AllKeys() {
			origin[k] = l.name
		}
		if err := merged.MergeConfigMap(lv.AllSettings()); err != nil {
			return nil, fmt.Errorf("config: %s: %w", l.name, err)
		}
		sources = append(sources, l.name)
	}
	if n, err := applyEnv(merged, origin, environ); err != nil {
		return nil, err
	} else if n > 0 {
		sources = append(sources, "environment")
	}
	d := &decoder{origin: origin}
	cfg := d.decode(merged.AllSettings())
	if err := d.err(); err != nil {
		return nil, err
	}
	cfg.Sources = sources
	return cfg, nil
}

// applyEnv sets every SYSBAN_* variable on v, matched against the keys that
// could exist: those already present plus every field of every section and of
// every jail and filter the files define.
func applyEnv(v *viper.Viper, origin map[string]string, environ []string) (int, error) {
	candidates := map[string]string{} // env name -> key
	add := func(key string) {
		name := EnvPrefix + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(key))
		candidates[name] = key
	}
	for _, k := range v.AllKeys() {
		add(k)
	}
	for _, k := range envKeys(slices.Sorted(maps.Keys(v.GetStringMap("jails"))), slices.Sorted(maps.Keys(v.GetStringMap("filters")))) {
		add(k)
	}
	n := 0
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key, known := candidates[name]
		if !known {
			return 0, fmt.Errorf("config: environment %s: no such setting%s", name, suggestEnv(name, candidates))
		}
		v.Set(key, value)
		origin[key] = "environment " + name
		n++
	}
	return n, nil
}

func suggestEnv(name string, candidates map[string]string) string {
	names := make([]string, 0, len(candidates))
	for n := range candidates {
		names = append(names, n)
	}
	sort.Strings(names) // ties suggest the same name every time
	return didYouMean(name, names)
}
