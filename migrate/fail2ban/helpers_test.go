package fail2ban

import (
	"regexp"
	"testing"
)

func regexpMust(t *testing.T, re string) *regexp.Regexp {
	t.Helper()
	r, err := regexp.Compile(re)
	if err != nil {
		t.Fatalf("compile %q: %v", re, err)
	}
	return r
}
