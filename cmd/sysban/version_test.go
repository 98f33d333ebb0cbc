package main

import (
	"bytes"
	"strings"
	"testing"
)

// The -X values win; without them the output still names every field.
func TestVersionOutput(t *testing.T) {
	var out bytes.Buffer
	cmdVersion(nil, &out, nil)
	for _, field := range []string{"sysban ", "\ncommit ", "\nbuilt  ", "\ngo     go1."} {
		if !strings.Contains(out.String(), field) {
			t.Errorf("version output lacks %q:\n%s", field, out.String())
		}
	}

	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "1.2.3", "0123456789abcdef", "2026-12-06T20:00:00Z"
	out.Reset()
	cmdVersion(nil, &out, nil)
	want := "sysban 1.2.3\ncommit 0123456789abcdef\nbuilt  2026-12-06T20:00:00Z\n"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("with ldflags:\n%s\nwant prefix:\n%s", out.String(), want)
	}
}
