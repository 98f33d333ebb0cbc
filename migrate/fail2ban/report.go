package fail2ban

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is what became of one fail2ban setting.
type Status string

const (
	StatusCarried Status = "carried" // same meaning in sysban
	StatusChanged Status = "changed" // carried with a different value or meaning; Why says how
	StatusDropped Status = "dropped" // not carried; Why says why
)

// Item is one key of one jail (or of [DEFAULT], fail2ban.conf, a filter).
type Item struct {
	Key    string `json:"key"`
	From   string `json:"from,omitempty"` // fail2ban's value
	To     string `json:"to,omitempty"`   // sysban's key: value
	Status Status `json:"status"`
	Why    string `json:"reason,omitempty"`
}

// JailReport is the report of one fail2ban jail.
type JailReport struct {
	Name    string        `json:"name"`             // fail2ban's section name
	Sysban  string        `json:"sysban,omitempty"` // jail name in sysban; empty when not carried
	Enabled bool          `json:"enabled"`
	Items   []Item        `json:"items"`
	Filter  *FilterResult `json:"filter,omitempty"` // when its filter file was translated
	// Todo: what the user must do (forwarder lines, programs to check).
	Todo []string `json:"todo,omitempty"`
	// NotCarried says why the jail is not in the output.
	NotCarried string `json:"not_carried,omitempty"`
}

// Report is the migration report.
type Report struct {
	Dir      string       `json:"dir"`
	Files    []string     `json:"files"` // jail files read, in order
	General  []Item       `json:"general"`
	Jails    []JailReport `json:"jails"`
	Counts   Counts       `json:"counts"`
	Forward  []string     `json:"forward,omitempty"` // rsyslog lines to add, one per log file outside syslog
	Warnings []string     `json:"warnings,omitempty"`
}

// Counts summarise the report.
type Counts struct {
	Jails             int `json:"jails"`
	JailsEnabled      int `json:"jails_enabled"`
	JailsCarried      int `json:"jails_carried"`
	JailsNotCarried   int `json:"jails_not_carried"`
	FiltersBuiltin    int `json:"filters_builtin"`
	FiltersTranslated int `json:"filters_translated"`
	// FiltersBacktracking counts filters with a pattern that needs the
	// backtracking engine; those carried (FiltersTranslated counts them
	// too) run on it, engine: backtrack.
	FiltersBacktracking int `json:"filters_backtracking"`
	FiltersNotCarried   int `json:"filters_not_carried"`
	Dropped             int `json:"dropped"` // items and patterns not carried
}

// Complete reports whether everything was carried (changes allowed):
// no jail, key or pattern dropped. `--check` exits 1 when it is not.
func (r *Report) Complete() bool { return r.Counts.Dropped == 0 && r.Counts.JailsNotCarried == 0 }

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: per jail, every key with its
// fate, then what to do.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	c := r.Counts
	fmt.Fprintf(&b, "fail2ban import of %s\n", r.Dir)
	fmt.Fprintf(&b, "  jails: %d (%d enabled), %d carried, %d not carried\n", c.Jails, c.JailsEnabled, c.JailsCarried, c.JailsNotCarried)
	fmt.Fprintf(&b, "  filters: %d built-in, %d translated, %d need the backtracking engine, %d not carried\n",
		c.FiltersBuiltin, c.FiltersTranslated, c.FiltersBacktracking, c.FiltersNotCarried)
	fmt.Fprintf(&b, "  keys and patterns dropped: %d\n", c.Dropped)
	if len(r.General) > 0 {
		b.WriteString("\n[general]\n")
		writeItems(&b, r.General)
	}
	for _, j := range r.Jails {
		state := "disabled"
		if j.Enabled {
			state = "enabled"
		}
		switch {
		case j.NotCarried != "":
			fmt.Fprintf(&b, "\n[%s] %s: NOT CARRIED: %s\n", j.Name, state, j.NotCarried)
		case j.Sysban != j.Name:
			fmt.Fprintf(&b, "\n[%s] %s -> jails.%s\n", j.Name, state, j.Sysban)
		default:
			fmt.Fprintf(&b, "\n[%s] %s\n", j.Name, state)
		}
		writeItems(&b, j.Items)
		if f := j.Filter; f != nil {
			if len(f.Files) > 0 {
				fmt.Fprintf(&b, "  filter %s from %s:\n", f.Name, strings.Join(f.Files, ", "))
			} else {
				fmt.Fprintf(&b, "  filter %s:\n", f.Name)
			}
			if f.NotCarried != "" {
				fmt.Fprintf(&b, "    NOT CARRIED: %s\n", f.NotCarried)
			}
			for _, n := range f.Notes {
				writeItem(&b, "    ", n)
			}
			for _, p := range f.Patterns {
				fmt.Fprintf(&b, "    %-7s %s %s\n", p.Status, p.Kind, p.From)
				if p.To != "" && p.To != p.From {
					fmt.Fprintf(&b, "              -> %s\n", p.To)
				}
				if p.Why != "" {
					fmt.Fprintf(&b, "              (%s)\n", p.Why)
				}
			}
		}
		for _, t := range j.Todo {
			fmt.Fprintf(&b, "  TODO: %s\n", t)
		}
	}
	if len(r.Forward) > 0 {
		b.WriteString("\nForward these logs (rsyslog imfile, /etc/rsyslog.d/60-sysban-files.conf):\n")
		b.WriteString("  module(load=\"imfile\")\n")
		for _, f := range r.Forward {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	for _, wmsg := range r.Warnings {
		fmt.Fprintf(&b, "\nwarning: %s\n", wmsg)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeItems(b *strings.Builder, items []Item) {
	for _, it := range items {
		writeItem(b, "  ", it)
	}
}

func writeItem(b *strings.Builder, indent string, it Item) {
	fmt.Fprintf(b, "%s%-7s %s", indent, it.Status, it.Key)
	if it.From != "" {
		fmt.Fprintf(b, " = %s", oneLine(it.From))
	}
	if it.To != "" {
		fmt.Fprintf(b, " -> %s", oneLine(it.To))
	}
	if it.Why != "" {
		fmt.Fprintf(b, " (%s)", it.Why)
	}
	b.WriteByte('\n')
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
