package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/configs"
	"github.com/sysban/sysban/pipeline"
)

// FuzzParse feeds arbitrary YAML (and one arbitrary environment variable)
// to Parse. A config file is written by an admin, but often by hand, copied
// from a forum or generated; whatever it holds, loading must not panic,
// every error must say where it comes from (the file, the built-in config
// or the environment variable, then the key or the YAML error), the same
// input must give the same answer (a reload must not flip-flop), and a
// config Parse accepts must be one the pipeline accepts too, or `sysban
// check` would pass a config the daemon then refuses to start with.
func FuzzParse(f *testing.F) {
	const name = "fuzz.yaml"
	seeds := []struct{ yaml, env string }{
		{"", ""},
		{string(configs.Default), ""},
		{"jails:\n  sshd:\n    maxretry: 3\n    mode: aggressive\n", ""},
		{"jails:\n  my_app:\n    enabled: true\n    filter: myapp\n    ports: [8080, 9000-9010, imaps]\nfilters:\n  myapp:\n    programs: [myapp]\n    failregex: ['^bad login from <HOST>$']\n", "SYSBAN_JAILS_MY_APP_MAXRETRY=7"},
		{"filters:\n  named:\n    vars:\n      domains: [example.com]\n", ""},
		{"filters:\n  x:\n    programs: [a]\n    failregex: ['^(<HOST>']\n", ""},
		{"defaults:\n  bantime: 1d12h\n  ignoreip: [10.0.0.0/8, '2001:db8::/32']\n  usedns: no\n", "SYSBAN_DEFAULTS_FINDTIME=1w"},
		{"listen:\n  udp: ['[::]:514']\n  unix: ['stream:/run/x.sock']\n  allow: [0.0.0.0/0]\n", "SYSBAN_LISTEN_TCP=0.0.0.0:514,[::]:514"},
		{"defaults:\n  ipv6prefix: /56\njails:\n  sshd:\n    ipv4prefix: 24\n", "SYSBAN_JAILS_SSHD_IPV6PREFIX=48"},
		{"defaults:\n  ipv6prefix: 2001:db8::/64\n  ipv4prefix: -1\n", "SYSBAN_DEFAULTS_IPV4PREFIX=/33"},
		{"jails: [\n", ""},
		{"jails:\n  \"host.example\":\n    enabled: true\n", ""},
		{"a: &a [*a, *a]\nb: *a\n", ""},
		{"actions:\n  mail:\n    type: mail\n", ""},
		{"notify:\n  x: 1\n", "SYSBAN_NOTIFY=1"},
		{"jails:\n  sshd:\n    ports: [65536, 0-1, '']\n    findtime: -1\n", "SYSBAN_DEFAULTS_BANTIM=1h"},
	}
	for _, s := range seeds {
		f.Add(s.yaml, s.env)
	}
	f.Fuzz(func(t *testing.T, yaml, env string) {
		var environ []string
		if env != "" {
			environ = []string{"PATH=/bin", env}
		}
		cfg, err := Parse(name, []byte(yaml), environ)
		// Several errors could come out in map order: compare a few loads
		// (one more load is enough to catch a config flipping between
		// accepted and refused).
		loads := 1
		if err != nil && len(leafErrors(err)) > 1 {
			loads = 4
		}
		for range loads {
			_, err2 := Parse(name, []byte(yaml), environ)
			if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
				t.Fatalf("two loads of one input disagree:\n %v\n %v", err, err2)
			}
		}
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with an error: %v", err)
			}
			for _, e := range leafErrors(err) {
				if !namesSource(e.Error(), name) {
					t.Fatalf("error does not name the file, the built-in config or the variable:\n%v", e)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		if err := pipeline.Validate(cfg.Pipeline()); err != nil {
			t.Fatalf("Parse accepted a config the pipeline refuses: %v", err)
		}
		filters := pipeline.BuiltinFilters()
		for _, j := range cfg.EnabledJails() {
			_, user := cfg.Filters[j.Filter]
			if _, builtin := filters[j.Filter]; !user && !builtin {
				t.Fatalf("jail %s names filter %q, which does not exist", j.Name, j.Filter)
			}
			if j.MaxRetry < 1 || j.FindTime <= 0 || j.BanTime == 0 {
				t.Fatalf("jail %s has unusable settings: %+v", j.Name, j.JailSettings)
			}
		}
		if len(cfg.Rules()) != len(cfg.EnabledJails()) {
			t.Fatalf("%d kernel rules for %d enabled jails", len(cfg.Rules()), len(cfg.EnabledJails()))
		}
	})
}

// leafErrors flattens errors.Join trees into the errors a user reads, one
// per line of the report.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// namesSource reports whether msg starts by saying which layer it is about.
func namesSource(msg, file string) bool {
	for _, src := range []string{file, BuiltinSource, "environment " + EnvPrefix} {
		if strings.HasPrefix(msg, "config: "+src) {
			return true
		}
	}
	return false
}

// TestNamesSource pins the helper FuzzParse judges errors with, so that a
// change of wording in the errors fails here rather than as a fuzz crasher.
func TestNamesSource(t *testing.T) {
	_, err := Parse("fuzz.yaml", []byte("defaults:\n  maxretry: x\n  bantime: y\n"), []string{"SYSBAN_LOG_LEVEL=loud"})
	if err == nil {
		t.Fatal("config accepted")
	}
	leaves := leafErrors(err)
	if len(leaves) < 3 {
		t.Fatalf("want at least 3 errors, got %d: %v", len(leaves), err)
	}
	for _, e := range leaves {
		if !namesSource(e.Error(), "fuzz.yaml") {
			t.Errorf("not attributed: %v", e)
		}
	}
	if namesSource("config: other.yaml: x", "fuzz.yaml") || namesSource(errors.New("yaml: bad").Error(), "fuzz.yaml") {
		t.Error("namesSource accepts errors that name no source")
	}
}

// FuzzParseValues fuzzes the value parsers of config keys directly (Parse
// reaches them too, but through viper at a few hundred inputs a second):
// durations, ports and addresses as admins type them, and as
// SYSBAN_* variables deliver them. A value is refused or usable, and a
// usable value reads back the same from its canonical form.
func FuzzParseValues(f *testing.F) {
	for _, s := range []string{"600", "10m", "1h30m", "1d12h", "2w", "-1", " 5s ", "0", "-5m", "1e3",
		"22", "ssh", "imaps", "9000-9010", "9010:9000", "0", "65536", "1-",
		"127.0.0.1/8", "10.0.0.0/8", "::1", "2001:db8::/32", "::ffff:192.0.2.7", "fe80::1%eth0", "192.0.2.7/33", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil {
			if d <= 0 && d != sysban.Permanent {
				t.Fatalf("ParseDuration(%q) = %v", s, d)
			}
			if d > 0 {
				if back, err := ParseDuration(strconv.FormatInt(int64(d/time.Second), 10)); err == nil && d%time.Second == 0 && back != d {
					t.Fatalf("ParseDuration(%q) = %v, but its seconds read back as %v", s, d, back)
				}
			}
		} else if !strings.Contains(err.Error(), "duration") {
			t.Fatalf("ParseDuration(%q): error %q does not say what it read", s, err)
		}
		if r, err := ParsePort(s); err == nil {
			if r.First == 0 || r.First > r.Last {
				t.Fatalf("ParsePort(%q) = %+v", s, r)
			}
			if back, err := ParsePort(r.String()); err != nil || back != r {
				t.Fatalf("ParsePort(%q) = %v, reads back as %v (%v)", s, r, back, err)
			}
		}
		if p, err := ParsePrefix(s); err == nil {
			if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
				t.Fatalf("ParsePrefix(%q) = %v: want a valid, masked prefix without a zone", s, p)
			}
			if back, err := ParsePrefix(p.String()); err != nil || back != p {
				t.Fatalf("ParsePrefix(%q) = %v, reads back as %v (%v)", s, p, back, err)
			}
		}
	})
}

// FuzzParseFilter feeds arbitrary bytes to ParseFilter, as `sysban test
// FILTERFILE` does with whatever file it is given: no panic, every error
// names the file, and an accepted filter is one the pipeline accepts.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"programs: [myapp]\nfailregex: ['^login failed from <HOST>$']\n",
		"name: custom\nprograms: [a]\nfailregex: ['^x <HOST>$']\nvars:\n  Zones: [example.org]\n",
		"ignoreregex: ['^Failed password for git from ']\n",
		"name: recidive\n", "name: [1]\n", "- a\n", "programs: [a\n", "", "failregexp: x\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, yaml string) {
		spec, err := ParseFilter("fuzz.yaml", []byte(yaml))
		if err != nil {
			for _, e := range leafErrors(err) {
				if !strings.HasPrefix(e.Error(), "config: filter file fuzz.yaml: ") {
					t.Fatalf("error does not name the file: %v", e)
				}
			}
			return
		}
		if err := pipeline.ValidateFilter(spec); err != nil {
			t.Fatalf("ParseFilter accepted a filter the pipeline refuses: %v", err)
		}
	})
}
