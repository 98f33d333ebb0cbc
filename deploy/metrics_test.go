package deploy

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var metricName = regexp.MustCompile(`\bsysban_[a-z0-9_]+`)

// exported lists the metrics sysban exports, from metrics/README.md's
// table, which metrics' TestREADMETable holds to exactly what a scrape
// shows. Histograms also answer to their _bucket, _sum and _count series.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile("../metrics/README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `(sysban_[a-z0-9_]+)` \\| (\\w+) \\|")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = true
		if m[2] == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[m[1]+suffix] = true
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d metrics read from metrics/README.md; has its table changed shape?", len(out))
	}
	return out
}

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboardExprs returns every "expr" in the Grafana dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("grafana/sysban.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("grafana/sysban.json: %v", err)
	}
	var out []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

func alertExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("prometheus/alerts.yaml: %v", err)
	}
	var out []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %q: needs alert, expr, labels.severity and annotations.summary", r.Alert)
			}
			out = append(out, r.Expr)
		}
	}
	return out
}

// Every metric the dashboard and the alerts use is one sysban exports, and
// each shows what the issue asked for.
func TestMetricNames(t *testing.T) {
	known := exported(t)
	for file, exprs := range map[string][]string{"grafana/sysban.json": dashboardExprs(t), "prometheus/alerts.yaml": alertExprs(t)} {
		used := map[string]bool{}
		for _, e := range exprs {
			for _, name := range metricName.FindAllString(e, -1) {
				used[name] = true
				if !known[name] {
					t.Errorf("%s uses %s, which sysban does not export (metrics/README.md)", file, name)
				}
			}
		}
		var want []string
		switch file {
		case "grafana/sysban.json":
			want = []string{"sysban_bans_total", "sysban_failures_total", "sysban_messages_dropped_total",
				"sysban_nft_write_seconds_bucket", "sysban_nft_guard_repairs_total", "sysban_banned_packets_total"}
		default:
			want = []string{"sysban_messages_dropped_total", "sysban_queue_depth", "sysban_nft_guard_repairs_total",
				"sysban_ban_errors_total", "sysban_bans_lost_total"}
		}
		for _, w := range want {
			if !used[w] {
				t.Errorf("%s does not use %s", file, w)
			}
		}
		t.Logf("%s: %s", file, strings.Join(slices.Sorted(maps.Keys(used)), " "))
	}
}
