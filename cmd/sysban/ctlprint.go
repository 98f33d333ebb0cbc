package main

// How the control verbs' answers read for people: a jail's status, an
// address's bans, and the small formatters of times, durations and lists
// the tables are made of. ctl.go has the verbs and the daemon's status.

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sysban/sysban/control"
)

// printJail writes one jail with the fields fail2ban-client status shows.
func (c ctl) printJail(w io.Writer, js control.JailStatus) {
	fmt.Fprintf(w, "Status for jail %s\n", js.Name)
	tw := newTable(w)
	filter := js.Filter
	if len(js.Programs) > 0 {
		filter += " (programs: " + strings.Join(js.Programs, ", ") + ")"
	}
	fmt.Fprintf(tw, "  Filter:\t%s\n", filter)
	if js.MaxRetry > 0 {
		bantime := humanDuration(time.Duration(js.BanTimeSeconds) * time.Second)
		if js.BanTimeSeconds < 0 {
			bantime = "permanent"
		}
		fmt.Fprintf(tw, "  Rule:\t%d %s within %s, ban %s\n", js.MaxRetry, plural(js.MaxRetry, "failure", "failures"),
			humanDuration(time.Duration(js.FindTimeSeconds)*time.Second), bantime)
	}
	fmt.Fprintf(tw, "  Currently failed:\t%d\n", js.CurrentlyFailed)
	fmt.Fprintf(tw, "  Total failed:\t%d\n", js.TotalFailed)
	fmt.Fprintf(tw, "  Currently banned:\t%d\n", js.CurrentlyBanned)
	fmt.Fprintf(tw, "  Total banned:\t%d\n", js.TotalBanned)
	if js.Untrusted > 0 {
		fmt.Fprintf(tw, "  Untrusted:\t%d (failures dropped for their origin)\n", js.Untrusted)
	}
	if len(js.Banned) == 0 {
		fmt.Fprintf(tw, "  Banned IP list:\t(none)\n")
		tw.Flush()
		return
	}
	fmt.Fprintf(tw, "  Banned IP list:\t%d %s\n", len(js.Banned), plural(len(js.Banned), "address", "addresses"))
	tw.Flush()
	tw = newTable(w)
	fmt.Fprintln(tw, "    ADDRESS\tUNTIL\tREMAINING\tFAILURES")
	for _, b := range js.Banned {
		until, left := c.untilText(b)
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", banned(b), until, left, failuresText(b))
	}
	tw.Flush()
}

// printBans writes the answer of `sysban banned [ADDR]`.
func (c ctl) printBans(w io.Writer, addr netip.Prefix, bans []control.BanInfo) {
	if len(bans) == 0 {
		if addr.IsValid() {
			fmt.Fprintf(w, "%s is not banned\n", ctlPrefixString(addr))
		} else {
			fmt.Fprintln(w, "no bans")
		}
		return
	}
	sort.SliceStable(bans, func(i, j int) bool {
		if bans[i].Jail != bans[j].Jail {
			return bans[i].Jail < bans[j].Jail
		}
		return comparePrefixes(bans[i].Prefix, bans[j].Prefix) < 0
	})
	// The blocked-traffic columns only when NFLOG saw any: most setups
	// run without it and a column of dashes says nothing.
	blocked := slices.ContainsFunc(bans, func(b control.BanInfo) bool { return b.BlockedPackets > 0 })
	tw := newTable(w)
	header := "JAIL\tADDRESS\tSINCE\tUNTIL\tREMAINING\tFAILURES\tOFFENCES"
	if blocked {
		header += "\tBLOCKED\tLAST BLOCKED"
	}
	fmt.Fprintln(tw, header)
	for _, b := range bans {
		until, left := c.untilText(b)
		since := "-"
		if !b.Start.IsZero() {
			since = c.when(b.Start)
		}
		offences := "-"
		if b.Offences > 0 {
			offences = fmt.Sprint(b.Offences)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", b.Jail, banned(b), since, until, left, failuresText(b), offences)
		if blocked {
			last := "-"
			if !b.LastBlocked.IsZero() {
				last = c.when(b.LastBlocked)
			}
			fmt.Fprintf(tw, "\t%d\t%s", b.BlockedPackets, last)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	// For one address, say why: the lines that got it banned.
	if !addr.IsValid() {
		return
	}
	for _, b := range bans {
		if b.FleetNode != "" {
			origin := b.Origin
			if origin == "" {
				origin = "-"
			}
			fmt.Fprintf(w, "\nfleet (%s): decided by node %s, origin %s\n", b.Jail, b.FleetNode, origin)
		}
		if len(b.Lines) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nwhy (%s):\n", b.Jail)
		for _, l := range b.Lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// untilText is a ban's end and the time left, for tables.
func (c ctl) untilText(b control.BanInfo) (until, left string) {
	if b.Permanent || b.Until.IsZero() {
		return "permanent", "-"
	}
	return c.when(b.Until), c.remaining(b.Until)
}

func (c ctl) when(t time.Time) string { return t.In(c.loc).Format(time.RFC3339) }

// remaining says how long until t: "in 59m", "in 2h05m", "in 3d4h".
func (c ctl) remaining(t time.Time) string {
	d := t.Sub(c.now())
	if d <= 0 {
		return "expired"
	}
	return "in " + humanDuration(d)
}

// humanDuration is a short, rounded-down duration: 45s, 59m, 2h05m, 3d4h.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

func failuresText(b control.BanInfo) string {
	switch {
	case b.Manual:
		return "manual"
	case b.Failures > 0:
		return fmt.Sprint(b.Failures)
	default:
		return "-"
	}
}

// droppedText lists the reasons that dropped something; the receiver
// reports every reason, zeros included.
func droppedText(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// nonNil makes an empty list print as [] rather than null in --json.
func nonNil(b []control.BanInfo) []control.BanInfo {
	if b == nil {
		return []control.BanInfo{}
	}
	return b
}

// banned says what a ban covers: the address, or the prefix with the
// address seen last ("2001:db8:1:2::/64 (last 2001:db8:1:2::9)"), marked
// "[observed]" when observe mode decided it and the kernel does not have it.
func banned(b control.BanInfo) string {
	if b.Observed {
		b.Observed = false
		return banned(b) + " [observed]"
	}
	switch {
	case !b.Prefix.IsValid():
		return b.Addr.String() // a daemon from before prefix bans
	case b.Prefix.IsSingleIP():
		return b.Prefix.Addr().String()
	case b.Addr.IsValid():
		return fmt.Sprintf("%s (last %s)", b.Prefix, b.Addr)
	}
	return b.Prefix.String()
}

// comparePrefixes orders by network address, wider first.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
