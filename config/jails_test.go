package config

import (
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

func TestBanTimeIncrement(t *testing.T) {
	week := 7 * 24 * time.Hour
	def, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (pipeline.BanIncrement{Multiplier: 2, MaxTime: week}); def.Defaults.BanTimeIncrement != want {
		t.Errorf("built-in defaults.bantimeincrement = %+v, want %+v", def.Defaults.BanTimeIncrement, want)
	}
	tests := []struct {
		name string
		yaml string
		env  []string
		want map[string]pipeline.BanIncrement // jail -> increment
	}{
		{"defaults reach every jail", "defaults:\n  bantimeincrement:\n    enabled: true\n", nil,
			map[string]pipeline.BanIncrement{
				"sshd":   {Enabled: true, Multiplier: 2, MaxTime: week},
				"apache": {Enabled: true, Multiplier: 2, MaxTime: week},
			}},
		{"a jail overrides key by key", `
defaults:
  bantimeincrement: {enabled: true, maxtime: 2d}
jails:
  sshd:
    bantimeincrement: {multiplier: 1.5, rndtime: 10m}
  apache:
    bantimeincrement: {enabled: false}
`, nil, map[string]pipeline.BanIncrement{
			"sshd":   {Enabled: true, Multiplier: 1.5, MaxTime: 48 * time.Hour, RndTime: 10 * time.Minute},
			"apache": {Multiplier: 2, MaxTime: 48 * time.Hour},
		}},
		{"rndtime 0 is off", "jails:\n  sshd:\n    bantimeincrement: {enabled: yes, multiplier: 3, rndtime: 0}\n", nil,
			map[string]pipeline.BanIncrement{"sshd": {Enabled: true, Multiplier: 3, MaxTime: week}}},
		{"environment", "", []string{
			"SYSBAN_JAILS_SSHD_BANTIMEINCREMENT_ENABLED=true",
			"SYSBAN_DEFAULTS_BANTIMEINCREMENT_MULTIPLIER=1.5",
			"SYSBAN_JAILS_APACHE_BANTIMEINCREMENT_MAXTIME=1d",
		}, map[string]pipeline.BanIncrement{
			"sshd":   {Enabled: true, Multiplier: 1.5, MaxTime: week},
			"apache": {Multiplier: 1.5, MaxTime: 24 * time.Hour},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte(tt.yaml), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range cfg.Jails {
				if want, ok := tt.want[j.Name]; ok && j.BanTimeIncrement != want {
					t.Errorf("jail %s: bantimeincrement %+v, want %+v", j.Name, j.BanTimeIncrement, want)
				}
			}
			// The pipeline gets it, and accepts it.
			pc := cfg.Pipeline()
			if err := pipeline.Validate(pc); err != nil {
				t.Fatal(err)
			}
			for _, js := range pc.Jails {
				if want, ok := tt.want[js.Name]; ok && js.Increment != want {
					t.Errorf("pipeline jail %s: increment %+v, want %+v", js.Name, js.Increment, want)
				}
			}
		})
	}
}

func TestRecidiveJail(t *testing.T) {
	def, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rec *Jail
	for i := range def.Jails {
		if def.Jails[i].Name == "recidive" {
			rec = &def.Jails[i]
		}
	}
	if rec == nil {
		t.Fatal("built-in config has no recidive jail")
	}
	if rec.Enabled || rec.Filter != pipeline.RecidiveFilter || rec.MaxRetry != 5 || rec.FindTime != 24*time.Hour ||
		rec.BanTime != 7*24*time.Hour || len(rec.Ports) != 0 || rec.Protocol != sysban.All {
		t.Errorf("built-in recidive = %+v: want disabled, filter recidive, 5 in 1d, 1w on every port and protocol", rec)
	}

	cfg, err := Parse("test.yaml", []byte(`
jails:
  recidive:
    enabled: true
  repeat:
    enabled: true
    filter: recidive
    maxretry: 2
    bantime: -1
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.Validate(cfg.Pipeline()); err != nil {
		t.Fatalf("pipeline refuses enabled recidive jails: %v", err)
	}
	var rules []string
	for _, r := range cfg.Rules() {
		rules = append(rules, r.String())
	}
	if got, want := strings.Join(rules, " "), "recidive(all  drop) repeat(tcp  drop) sshd(tcp 22 drop)"; got != want {
		t.Errorf("rules = %q, want %q", got, want)
	}
}

// TestRepeatOffenderErrors pins the exact messages of the new keys.
func TestRepeatOffenderErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"multiplier below 1", "jails:\n  sshd:\n    bantimeincrement: {multiplier: 0.5}\n",
			"config: test.yaml: jails.sshd.bantimeincrement.multiplier: 0.5: want a number of at least 1 (and at most 1000), e.g. 2 or 1.5"},
		{"multiplier not a number", "defaults:\n  bantimeincrement: {multiplier: double}\n",
			`config: test.yaml: defaults.bantimeincrement.multiplier: "double": want a number of at least 1, e.g. 2 or 1.5`},
		{"multiplier a list", "defaults:\n  bantimeincrement: {multiplier: [2]}\n",
			"config: test.yaml: defaults.bantimeincrement.multiplier: want a number of at least 1, got a list"},
		{"permanent maxtime", "jails:\n  sshd:\n    bantimeincrement: {maxtime: -1}\n",
			"config: test.yaml: jails.sshd.bantimeincrement.maxtime: -1: maxtime caps increased bans and must be a duration; for bans that never end set bantime: -1"},
		{"bad maxtime", "defaults:\n  bantimeincrement: {maxtime: 10 minutes}\n",
			`config: test.yaml: defaults.bantimeincrement.maxtime: duration "10 minutes": want e.g. 30s, 10m, 1h, 1d, 1w, seconds, or -1`},
		{"zero maxtime", "defaults:\n  bantimeincrement: {maxtime: 0}\n",
			`config: test.yaml: defaults.bantimeincrement.maxtime: duration "0": want a positive number of seconds or -1`},
		{"bad rndtime", "defaults:\n  bantimeincrement: {rndtime: -1}\n",
			"config: test.yaml: defaults.bantimeincrement.rndtime: -1 (permanent) is only meaningful for bantime"},
		{"unknown key", "jails:\n  sshd:\n    bantimeincrement: {multipler: 3}\n",
			`config: test.yaml: jails.sshd.bantimeincrement.multipler: unknown key (did you mean "multiplier"?)`},
		{"not a map", "jails:\n  sshd:\n    bantimeincrement: true\n",
			"config: test.yaml: jails.sshd.bantimeincrement: want a map, got bool true"},
		{"enabled not a bool", "defaults:\n  bantimeincrement: {enabled: sometimes}\n",
			`config: test.yaml: defaults.bantimeincrement.enabled: want true or false, got the string "sometimes"`},
		{"bad env", "",
			"config: environment SYSBAN_DEFAULTS_BANTIMEINCREMENT_MULTIPLIER: defaults.bantimeincrement.multiplier: \"x\": want a number of at least 1, e.g. 2 or 1.5"},
		{"user filter named recidive", "filters:\n  recidive:\n    programs: [x]\n    failregex: ['^x <HOST>$']\n",
			`config: test.yaml: filters.recidive: the name "recidive" is reserved: jails with filter recidive count sysban's own bans, not log lines`},
		{"mode on a recidive jail", "jails:\n  recidive:\n    mode: ddos\n",
			`config: test.yaml: jails.recidive.mode: "ddos": filter recidive counts bans and has no modes`},
		{"user filter without programs", "filters:\n  nolog:\n    failregex: ['^x <HOST>$']\n",
			"config: test.yaml: filters.nolog.programs: a filter needs at least one program\n" +
				"config: test.yaml: filters.nolog: pipeline: filter nolog: no programs: it would never see a line"},
		{"typo of recidive", "jails:\n  again:\n    filter: recidiv\n",
			`config: test.yaml: jails.again.filter: no filter named "recidiv" (did you mean "recidive"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env []string
			if tt.name == "bad env" {
				env = []string{"SYSBAN_DEFAULTS_BANTIMEINCREMENT_MULTIPLIER=x"}
			}
			_, err := Parse("test.yaml", []byte(tt.yaml), env)
			if err == nil {
				t.Fatalf("config accepted, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n  %v\nwant:\n  %s", err, tt.want)
			}
		})
	}
}

// TestJailModes: an enabled jail's mode must be one its filter has (the
// pipeline would refuse to start otherwise); a disabled jail's is checked
// when it is enabled.
func TestJailModes(t *testing.T) {
	_, err := Parse("test.yaml", []byte("jails:\n  sshd:\n    mode: aggresive\n"), nil)
	want := `config: test.yaml: jails.sshd.mode: "aggresive": filter sshd has modes normal, aggressive, ddos (did you mean "aggressive"?)`
	if err == nil || err.Error() != want {
		t.Errorf("enabled jail, unknown mode: error\n  %v\nwant\n  %s", err, want)
	}
	if _, err := Parse("test.yaml", []byte("jails:\n  apache:\n    mode: aggresive\n"), nil); err != nil {
		t.Errorf("disabled jail, unknown mode: %v", err)
	}
	if _, err := Parse("test.yaml", []byte("jails:\n  sshd:\n    mode: ddos\n"), nil); err != nil {
		t.Errorf("enabled jail, known mode: %v", err)
	}
}
