package filters_test

import (
	"testing"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// TestServiceVarsOverride checks that the vars are what decides the
// configurable lines: replacing them changes what counts.
func TestServiceVarsOverride(t *testing.T) {
	tests := []struct {
		filter, vr string
		vals       []string
		prog, line string
		host       string
	}{
		{"named", "domains", []string{"example.org"}, "named", "client 192.0.2.7#1 (example.org): query: example.org IN ANY +E (192.0.2.53)", "192.0.2.7"},
		{"named", "domains", []string{"example.org"}, "named", "client 192.0.2.7#1 (isc.org): query: isc.org IN ANY +E (192.0.2.53)", ""},
		{"named", "domains", []string{"a.b"}, "named", "client 192.0.2.7#1 (aXb): query: aXb IN ANY +E (192.0.2.53)", ""}, // values are literals
		{"apache", "paths", []string{"secret-admin"}, "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/secret-admin", "192.0.2.7"},
		{"apache", "paths", []string{"secret-admin"}, "httpd", "[error] [client 192.0.2.7] File does not exist: /var/www/html/phpMyAdmin", ""},
	}
	for _, tt := range tests {
		spec := pipeline.BuiltinFilters()[tt.filter]
		spec.Vars = map[string][]string{tt.vr: tt.vals}
		tester, err := pipeline.NewTester([]pipeline.FilterSpec{spec}, pipeline.TesterOptions{})
		if err != nil {
			t.Fatalf("%s with %s=%v: %v", tt.filter, tt.vr, tt.vals, err)
		}
		got := ""
		for _, m := range tester.Test(&sysban.Message{AppName: tt.prog, Text: tt.line}) {
			if !m.Ignored && !m.Pending {
				got = m.Host
			}
		}
		if got != tt.host {
			t.Errorf("%s=%v: %q: host %q, want %q", tt.vr, tt.vals, tt.line, got, tt.host)
		}
	}
}
