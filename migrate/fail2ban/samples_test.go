package fail2ban

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// sampleScore is how a translated filter did on fail2ban's own annotated
// sample log for it.
type sampleScore struct {
	failures, hits, wrongHost, missed, falsePositives, skipped int
	examples                                                   []string // false positives
}

// scoreSamples runs a translated filter over the annotated log fail2ban
// ships for it (tests/files/logs/<name>: a "# failJSON: {...}" comment
// before each line says whether it is a failure and of which host). Lines
// with a syslog header are routed by their program; others get the
// filter's first program, as an imfile forwarder would tag them.
func scoreSamples(t *testing.T, path string, spec pipeline.FilterSpec) (sampleScore, bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return sampleScore{}, false
	}
	defer f.Close()
	tester, err := pipeline.NewTester([]pipeline.FilterSpec{spec}, pipeline.TesterOptions{})
	if err != nil {
		t.Fatalf("%s: %v", spec.Name, err)
	}
	var sc sampleScore
	var expect *struct {
		Match bool   `json:"match"`
		Host  string `json:"host"`
	}
	sc2 := bufio.NewScanner(f)
	sc2.Buffer(make([]byte, 1<<20), 1<<20)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	defaultMode := true // under a "# filterOptions:" without the default, lines are another mode's
	for sc2.Scan() {
		line := sc2.Text()
		if j, ok := strings.CutPrefix(line, "# filterOptions:"); ok {
			defaultMode = hasDefaultOptions(j)
			continue
		}
		if strings.HasPrefix(line, "# failJSON:") && !defaultMode {
			expect = nil
			continue
		}
		if j, ok := strings.CutPrefix(line, "# failJSON:"); ok {
			expect = &struct {
				Match bool   `json:"match"`
				Host  string `json:"host"`
			}{}
			if json.Unmarshal([]byte(j), expect) != nil {
				expect = nil
			}
			continue
		}
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" || expect == nil {
			continue
		}
		want := *expect
		expect = nil
		var m sysban.Message
		err := receiver.ParseFileLine([]byte(line), now, &m)
		if err != nil && !errors.Is(err, receiver.ErrNoHeader) {
			sc.skipped++
			continue
		}
		if err != nil || m.AppName == "" {
			// A daemon's own file, forwarded whole by imfile with a tag.
			m.AppName, m.Text = strings.Trim(spec.Programs[0], "*?"), line
			if m.AppName == "" { // the filter reads every program
				m.AppName = "daemon"
			}
		}
		var failed *pipeline.Match
		for _, r := range tester.Test(&m) {
			if !r.Ignored && !r.Pending {
				failed = &r
				break
			}
		}
		switch {
		case want.Match:
			sc.failures++
			switch {
			case failed == nil:
				sc.missed++
			case sameHost(failed.Host, want.Host):
				sc.hits++
			default:
				sc.wrongHost++
			}
		case failed != nil:
			sc.falsePositives++
			if len(sc.examples) < 2 {
				sc.examples = append(sc.examples, line)
			}
		}
	}
	return sc, true
}

// hasDefaultOptions reports whether a sample log's filterOptions list
// (JSON: the filter arguments the following lines are tested with) has the
// filter's default: an entry without arguments or with mode normal alone.
func hasDefaultOptions(list string) bool {
	var opts []map[string]string
	if json.Unmarshal([]byte(list), &opts) != nil {
		return false
	}
	for _, o := range opts {
		if len(o) == 0 || len(o) == 1 && o["mode"] == "normal" {
			return true
		}
	}
	return false
}

// sameHost compares addresses canonically (::ffff:1.2.3.4 is 1.2.3.4).
func sameHost(got, want string) bool {
	g, err1 := netip.ParseAddr(got)
	w, err2 := netip.ParseAddr(want)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(got, want)
	}
	return g.Unmap() == w.Unmap()
}

// reportSamples scores every translated filter of an import against
// fail2ban's sample logs under logs and logs the figures.
func reportSamples(t *testing.T, rep *Report, specs map[string]pipeline.FilterSpec, logs string) (total sampleScore) {
	seen := map[string]bool{}
	for _, jr := range rep.Jails {
		fr := jr.Filter
		if fr == nil || fr.Spec == nil || seen[fr.Name] {
			continue
		}
		// A sample log holds the lines of every mode; score the default.
		if m := fr.Args["mode"]; m != "" && m != "normal" {
			continue
		}
		seen[fr.Name] = true
		sc, ok := scoreSamples(t, filepath.Join(logs, fr.Source), specs[fr.Name])
		if !ok {
			continue
		}
		t.Logf("  %-22s %3d failures: %3d found, %2d wrong host, %3d missed; %d false positives %q", fr.Source, sc.failures, sc.hits, sc.wrongHost, sc.missed, sc.falsePositives, sc.examples)
		total.failures += sc.failures
		total.hits += sc.hits
		total.wrongHost += sc.wrongHost
		total.missed += sc.missed
		total.falsePositives += sc.falsePositives
		total.skipped += sc.skipped
	}
	return total
}
