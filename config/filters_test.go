package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban/pipeline"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name, file, yaml string
		wantName         string
		check            func(s pipeline.FilterSpec) bool
		wantErr          string // exact error; "" = must parse
	}{
		{name: "named after the file", file: "/etc/sysban/filters/myapp.yaml",
			yaml:     "programs: [myapp]\nfailregex: ['^login failed from <HOST>$']\nignoreregex: ['^login failed from 192\\.0\\.2\\.1$']\n",
			wantName: "myapp",
			check: func(s pipeline.FilterSpec) bool {
				return slices.Equal(s.Programs, []string{"myapp"}) && len(s.FailRegex) == 1 && len(s.IgnoreRegex) == 1
			}},
		{name: "odd file name made a filter name", file: "My.App Filter.yml",
			yaml: "programs: [a]\nfailregex: ['^x <HOST>$']\n", wantName: "my-app-filter"},
		{name: "name key wins", file: "f.yaml",
			yaml: "name: custom\nprograms: [a]\nfailregex: ['^x <HOST>$']\n", wantName: "custom"},
		{name: "keys are read as a config reads them", file: "v.yaml",
			yaml:     "Programs: [named]\nFailRegex: ['^query <VAR:zones> from <HOST>$']\nvars:\n  Zones: [example.org]\n",
			wantName: "v",
			check:    func(s pipeline.FilterSpec) bool { return len(s.Vars["zones"]) == 1 }},
		{name: "a built-in's name adjusts it", file: "sshd.yaml",
			yaml: "ignoreregex: ['^Failed password for git from ']\n", wantName: "sshd",
			check: func(s pipeline.FilterSpec) bool {
				return len(s.IgnoreRegex) == 1 && len(s.FailRegex) > 1 && slices.Contains(s.Programs, "sshd")
			}},
		{name: "unknown key", file: "typo.yaml", yaml: "programs: [a]\nfailregexp: ['^x <HOST>$']\n",
			wantErr: "config: filter file typo.yaml: failregexp: unknown key (did you mean \"failregex\"?)\n" +
				"config: filter file typo.yaml: failregex: a filter needs at least one failregex\n" +
				"config: filter file typo.yaml: pipeline: filter typo: no failregex"},
		{name: "no programs", file: "p.yaml", yaml: "failregex: ['^x <HOST>$']\n",
			wantErr: "config: filter file p.yaml: programs: a filter needs at least one program\n" +
				"config: filter file p.yaml: pipeline: filter p: no programs: it would never see a line"},
		{name: "regex without host", file: "h.yaml", yaml: "programs: [a]\nfailregex: ['^failed$']\n",
			wantErr: "config: filter file h.yaml: pipeline: filter h: failregex[0]: missing <HOST>"},
		{name: "reserved name", file: "r.yaml", yaml: "name: recidive\nprograms: [a]\nfailregex: ['^x <HOST>$']\n",
			wantErr: `config: filter file r.yaml: the name "recidive" is reserved: jails with filter recidive count sysban's own bans, not log lines`},
		{name: "bad name", file: "n.yaml", yaml: "name: Has.Dots\nprograms: [a]\n",
			wantErr: `config: filter file n.yaml: name: the string "Has.Dots": want a lower-case letter, then letters, digits, '-' or '_', at most 32`},
		{name: "backtracking engine opted in", file: "bt.yaml",
			yaml:     "programs: [app]\nengine: backtrack\nmatchtimeout: 20ms\nfailregex: ['^login failed for (?!monitor )\\S+ from <HOST>$']\n",
			wantName: "bt",
			check: func(s pipeline.FilterSpec) bool {
				return s.Engine == pipeline.EngineBacktrack && s.MatchTimeout == 20*time.Millisecond
			}},
		{name: "look-ahead without the engine", file: "la.yaml",
			yaml: "programs: [app]\nfailregex: ['^login failed for (?!monitor )\\S+ from <HOST>$']\n",
			wantErr: "config: filter file la.yaml: pipeline: filter la: failregex[0]: error parsing regexp: invalid or unsupported Perl syntax: `(?!` " +
				"(Go's RE2 engine cannot run this form; to run it on the bounded backtracking engine set engine: backtrack on the filter)"},
		{name: "unknown engine", file: "ue.yaml", yaml: "programs: [app]\nengine: pcre\nfailregex: ['^x <HOST>$']\n",
			wantErr: "config: filter file ue.yaml: engine: \"pcre\": want one of re2, backtrack"},
		{name: "timeout above the ceiling", file: "to.yaml", yaml: "programs: [app]\nengine: backtrack\nmatchtimeout: 2s\nfailregex: ['^x <HOST>$']\n",
			wantErr: "config: filter file to.yaml: pipeline: filter to: matchtimeout 2s: want 1ms to 100ms"},
		{name: "a built-in stays on RE2", file: "sshd.yaml", yaml: "engine: backtrack\n",
			wantErr: "config: filter file sshd.yaml: engine: built-in filters stay on RE2 (linear time); copy the filter under a new name to run it on the backtracking engine"},
		{name: "empty", file: "e.yaml", yaml: "# nothing\n",
			wantErr: "config: filter file e.yaml: empty: want programs and failregex"},
		{name: "not a map", file: "l.yaml", yaml: "- programs\n", wantErr: "config: filter file l.yaml: yaml: "},
		{name: "not YAML", file: "y.yaml", yaml: "programs: [a\n", wantErr: "config: filter file y.yaml: yaml: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseFilter(tt.file, []byte(tt.yaml))
			if tt.wantErr != "" {
				// YAML errors are the library's: pin only our prefix.
				if err == nil || err.Error() != tt.wantErr && !(strings.HasSuffix(tt.wantErr, "yaml: ") && strings.HasPrefix(err.Error(), tt.wantErr)) {
					t.Fatalf("error:\n  %v\nwant:\n  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Name != tt.wantName {
				t.Errorf("name %q, want %q", spec.Name, tt.wantName)
			}
			if tt.check != nil && !tt.check(spec) {
				t.Errorf("spec = %+v", spec)
			}
			if err := pipeline.ValidateFilter(spec); err != nil {
				t.Errorf("ParseFilter returned a spec the pipeline refuses: %v", err)
			}
		})
	}
}
