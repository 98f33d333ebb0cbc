package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The rules for filter and jail specs live here, once: New, Validate and
// the config loader all ask these functions. An error about one field of a
// spec is a *SpecError, so the config loader can put the file and the key
// in front of the reason instead of inventing its own wording.

// SpecError is a problem with one field of a filter or jail spec.
type SpecError struct {
	// Field is the spec's field at fault, as the config spells its key
	// ("programs", "filter", "mode"); "" means the spec as a whole (its
	// name).
	Field string
	// Reason says what is wrong for a reader who sees the field's full key
	// beside it (the config loader prints "file: jails.web.mode: Reason").
	Reason string
	// Value and Choices, when Choices is set, are the value refused and
	// the values it could have been: a caller may suggest the closest.
	Value   string
	Choices []string
	// msg is the error on its own, naming the spec, as New reports it.
	msg string
}

func (e *SpecError) Error() string { return e.msg }

// Filters returns the filters a config's jails can name: the built-in ones
// with user's laid over them by name (a user filter of a built-in's name
// replaces it). Each spec's Name is its key. This is the one place the two
// sets meet; the daemon (through New) and `sysban test` both use it.
func Filters(user map[string]FilterSpec) map[string]FilterSpec {
	specs := BuiltinFilters()
	for name, spec := range user {
		if spec.Name == "" {
			spec.Name = name
		}
		specs[name] = spec
	}
	return specs
}

// ValidateFilterName refuses a user filter's name that is reserved:
// RecidiveFilter, the jails that count sysban's own bans.
func ValidateFilterName(name string) error {
	if name != RecidiveFilter {
		return nil
	}
	return &SpecError{
		Reason: fmt.Sprintf("the name %q is reserved: jails with filter %s count sysban's own bans, not log lines", name, name),
		msg:    fmt.Sprintf("pipeline: filter %s: the name is reserved for the jail fed by sysban's own bans", name),
	}
}

// ValidateFilter checks spec as a user filter: its name is not reserved,
// it reads at least one program and has a failregex (or a correlation),
// and it compiles in every mode. The result joins a *SpecError per field
// at fault and CompileFilter's error, which names the filter and the
// regex.
func ValidateFilter(spec FilterSpec) error {
	if err := ValidateFilterName(spec.Name); err != nil {
		return err
	}
	var errs []error
	if len(spec.Programs) == 0 {
		errs = append(errs, &SpecError{Field: "programs", Reason: "a filter needs at least one program",
			msg: fmt.Sprintf("pipeline: filter %s: programs: a filter needs at least one program", spec.Name)})
	}
	if len(spec.FailRegex) == 0 && len(spec.Correlate) == 0 {
		errs = append(errs, &SpecError{Field: "failregex", Reason: "a filter needs at least one failregex",
			msg: fmt.Sprintf("pipeline: filter %s: failregex: a filter needs at least one failregex", spec.Name)})
	}
	if _, err := CompileFilter(spec); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateJail checks what js refers to among filters (as Filters returns
// them): a filter that exists, or RecidiveFilter, which has no modes. These
// hold for every jail of a config, enabled or not; ValidateJailMode is for
// the jails that run.
func ValidateJail(js JailSpec, filters map[string]FilterSpec) error {
	if js.Filter == RecidiveFilter {
		if js.Mode != "" && js.Mode != "normal" {
			return &SpecError{Field: "mode",
				Reason: fmt.Sprintf("%q: filter %s counts bans and has no modes", js.Mode, RecidiveFilter),
				msg:    fmt.Sprintf("pipeline: jail %s: mode %q: filter %s has no modes", js.Name, js.Mode, RecidiveFilter)}
		}
		return nil
	}
	if _, ok := filters[js.Filter]; !ok {
		return &SpecError{Field: "filter",
			Reason: fmt.Sprintf("no filter named %q", js.Filter),
			Value:  js.Filter, Choices: append(slices.Sorted(maps.Keys(filters)), RecidiveFilter),
			msg: fmt.Sprintf("pipeline: jail %s: unknown filter %q", js.Name, js.Filter)}
	}
	return nil
}

// ValidateJailMode checks that js's filter (among filters, as Filters
// returns them) has js.Mode; "" and "normal" are every filter's. A jail
// that passes ValidateJail but names a mode its filter lacks cannot run.
// The config loader asks it of enabled jails only: a disabled jail's mode
// is checked when it is enabled.
func ValidateJailMode(js JailSpec, filters map[string]FilterSpec) error {
	spec, ok := filters[js.Filter]
	if !ok || js.Mode == "" || js.Mode == "normal" {
		return nil
	}
	if _, ok := spec.Modes[js.Mode]; ok {
		return nil
	}
	modes := append([]string{"normal"}, sortedKeys(spec.Modes)...)
	return &SpecError{Field: "mode",
		Reason: fmt.Sprintf("%q: filter %s has modes %s", js.Mode, js.Filter, strings.Join(modes, ", ")),
		Value:  js.Mode, Choices: modes,
		msg: fmt.Sprintf("pipeline: jail %s: mode %q: filter %s has modes %s", js.Name, js.Mode, js.Filter, strings.Join(modes, ", "))}
}
