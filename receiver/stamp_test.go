package receiver

import (
	"testing"
	"time"
)

// inferYearRef is year inference written the plain way: every year from
// the one after now back to eight before, the first real date not more
// than yearSlack after now. inferYear must agree with it.
func inferYearRef(mon time.Month, day, hh, mm, ss, ns int, now time.Time) (time.Time, bool) {
	limit := now.Add(yearSlack)
	for y := now.Year() + 1; y >= now.Year()-8; y-- {
		t := time.Date(y, mon, day, hh, mm, ss, ns, now.Location())
		if t.Month() != mon || t.Day() != day {
			continue
		}
		if !t.After(limit) {
			return t, true
		}
	}
	return time.Time{}, false
}

func TestInferYearMatchesReference(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 14*3600), time.FixedZone("", -12*3600)}
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Pacific/Apia"} {
		if loc, err := time.LoadLocation(name); err == nil {
			zones = append(zones, loc)
		}
	}
	// nows around the year boundary, around leap days and mid-year.
	var nows []time.Time
	for _, loc := range zones {
		for _, d := range []struct{ y, m, d, h int }{
			{2026, 11, 21, 20}, {2026, 12, 24, 23}, {2026, 12, 31, 23}, {2027, 1, 1, 0},
			{2027, 1, 6, 12}, {2028, 2, 22, 1}, {2028, 2, 29, 12}, {2028, 3, 1, 0}, {2026, 6, 1, 0},
		} {
			nows = append(nows, time.Date(d.y, time.Month(d.m), d.d, d.h, 30, 0, 0, loc))
		}
	}
	for _, now := range nows {
		for mon := time.January; mon <= time.December; mon++ {
			for day := 1; day <= 31; day++ {
				for _, hh := range []int{0, 12, 23} {
					got, gok := inferYear(mon, day, hh, 59, 59, 0, now)
					want, wok := inferYearRef(mon, day, hh, 59, 59, 0, now)
					if gok != wok || !got.Equal(want) {
						t.Fatalf("inferYear(%v %d %02d:59:59, now %v) = %v, %v; reference %v, %v", mon, day, hh, now, got, gok, want, wok)
					}
				}
			}
		}
	}
}

func TestDaysIn(t *testing.T) {
	for y := 1896; y <= 2404; y++ {
		for m := time.January; m <= time.December; m++ {
			// Day 0 of the next month is the last day of this one.
			want := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
			if got := daysIn(m, y); got != want {
				t.Fatalf("daysIn(%v, %d) = %d, want %d", m, y, got, want)
			}
		}
	}
}
