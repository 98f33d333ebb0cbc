package pipeline

import (
	"errors"
	"fmt"
	"testing"
)

// TestValidateSpecs pins both faces of each rule: the reason the config
// loader prints after a file and key, and the error New prints alone.
func TestValidateSpecs(t *testing.T) {
	ok := FilterSpec{Name: "f", Programs: []string{"p"}, FailRegex: []string{`^x <HOST>$`}}
	filters := Filters(map[string]FilterSpec{"f": ok})
	type want struct{ field, reason, err string }
	tests := []struct {
		name string
		err  error
		want []want // SpecErrors in order, then "" field/reason for a plain error
	}{
		{"valid filter", ValidateFilter(ok), nil},
		{"reserved name", ValidateFilter(FilterSpec{Name: RecidiveFilter, Programs: []string{"x"}, FailRegex: []string{`^x <HOST>$`}}), []want{{
			"", `the name "recidive" is reserved: jails with filter recidive count sysban's own bans, not log lines`,
			"pipeline: filter recidive: the name is reserved for the jail fed by sysban's own bans"}}},
		{"no programs", ValidateFilter(FilterSpec{Name: "f", FailRegex: []string{`^x <HOST>$`}}), []want{
			{"programs", "a filter needs at least one program", "pipeline: filter f: programs: a filter needs at least one program"},
			{"", "", "pipeline: filter f: no programs: it would never see a line"}}},
		{"no failregex", ValidateFilter(FilterSpec{Name: "f", Programs: []string{"p"}}), []want{
			{"failregex", "a filter needs at least one failregex", "pipeline: filter f: failregex: a filter needs at least one failregex"},
			{"", "", "pipeline: filter f: no failregex"}}},
		{"bad regex", ValidateFilter(FilterSpec{Name: "f", Programs: []string{"p"}, FailRegex: []string{`^x$`}}), []want{
			{"", "", "pipeline: filter f: failregex[0]: missing <HOST>"}}},
		{"valid jail", ValidateJail(JailSpec{Name: "j", Filter: "f"}, filters), nil},
		{"built-in filter, any mode (checked by New)", ValidateJail(JailSpec{Name: "j", Filter: "sshd", Mode: "nosuch"}, filters), nil},
		{"recidive jail", ValidateJail(JailSpec{Name: "r", Filter: RecidiveFilter, Mode: "normal"}, filters), nil},
		{"recidive with a mode", ValidateJail(JailSpec{Name: "r", Filter: RecidiveFilter, Mode: "ddos"}, filters), []want{{
			"mode", `"ddos": filter recidive counts bans and has no modes`, `pipeline: jail r: mode "ddos": filter recidive has no modes`}}},
		{"unknown filter", ValidateJail(JailSpec{Name: "j", Filter: "sshdd"}, filters), []want{{
			"filter", `no filter named "sshdd"`, `pipeline: jail j: unknown filter "sshdd"`}}},
		{"known mode", ValidateJailMode(JailSpec{Name: "j", Filter: "sshd", Mode: "ddos"}, filters), nil},
		{"normal mode of a filter without modes", ValidateJailMode(JailSpec{Name: "j", Filter: "f", Mode: "normal"}, filters), nil},
		{"unknown mode", ValidateJailMode(JailSpec{Name: "j", Filter: "sshd", Mode: "extra"}, filters), []want{{
			"mode", `"extra": filter sshd has modes normal, aggressive, ddos`, `pipeline: jail j: mode "extra": filter sshd has modes normal, aggressive, ddos`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []error
			if j, ok := tt.err.(interface{ Unwrap() []error }); ok {
				got = j.Unwrap()
			} else if tt.err != nil {
				got = []error{tt.err}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("errors %q, want %d", tt.err, len(tt.want))
			}
			for i, w := range tt.want {
				var se *SpecError
				isSpec := errors.As(got[i], &se)
				switch {
				case got[i].Error() != w.err:
					t.Errorf("error %q, want %q", got[i], w.err)
				case w.reason == "" && isSpec:
					t.Errorf("%q is a SpecError, want a plain error", got[i])
				case w.reason != "" && (!isSpec || se.Field != w.field || se.Reason != w.reason):
					t.Errorf("%q: SpecError %+v, want field %q reason %q", got[i], se, w.field, w.reason)
				}
			}
		})
	}
	// The unknown filter's choices are every filter a jail can name.
	var se *SpecError
	if errors.As(ValidateJail(JailSpec{Name: "j", Filter: "x"}, filters), &se) && (se.Value != "x" || len(se.Choices) != len(filters)+1) {
		t.Errorf("choices %v for %d filters and recidive", se.Choices, len(filters))
	}
}

func TestFilters(t *testing.T) {
	builtin := BuiltinFilters()
	user := map[string]FilterSpec{
		"sshd":  {Programs: []string{"mysshd"}, FailRegex: []string{`^x <HOST>$`}},
		"myapp": {Name: "myapp", Programs: []string{"myapp"}, FailRegex: []string{`^x <HOST>$`}},
	}
	all := Filters(user)
	if len(all) != len(builtin)+1 {
		t.Errorf("%d filters, want the %d built-in ones and myapp", len(all), len(builtin))
	}
	for name, spec := range all {
		if spec.Name != name {
			t.Errorf("filter %q is named %q", name, spec.Name)
		}
	}
	if got := fmt.Sprint(all["sshd"].Programs); got != "[mysshd]" {
		t.Errorf("sshd programs %s: want the user's filter to replace the built-in", got)
	}
	if len(BuiltinFilters()["sshd"].Programs) != len(builtin["sshd"].Programs) {
		t.Error("Filters changed the built-in filters")
	}
}
