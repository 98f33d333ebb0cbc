package pipeline

import "github.com/sysban/sysban/pipeline/filters"

// FilterSpec is a filter as configured or built in. The type is declared
// in package filters, beside the built-in filters that are values of it,
// so that those can be plain data in a package that needs nothing from
// pipeline.
type FilterSpec = filters.Spec

// Correlation is a multi-line failure of a FilterSpec (see
// filters.Correlation).
type Correlation = filters.Correlation

// BuiltinFilters returns the filters sysban ships (filters.All), by name.
// It builds a fresh map on each call so callers may modify the result.
func BuiltinFilters() map[string]FilterSpec {
	all := filters.All()
	out := make(map[string]FilterSpec, len(all))
	for _, f := range all {
		out[f.Name] = f
	}
	return out
}
