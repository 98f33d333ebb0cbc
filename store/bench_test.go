package store

import (
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func benchRecords(n, base int, start time.Time) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Ban: sysban.Ban{Jail: "sshd", Addr: addrN(base + i), Start: start, Duration: time.Hour, Failures: 5,
				Lines: []string{"Failed password for invalid user admin from 192.0.2.1 port 40000 ssh2"}},
			Source: "pipeline",
		}
	}
	return recs
}

// BenchmarkRecord stores batches of 10,000 new bans, one transaction each.
func BenchmarkRecord(b *testing.B) {
	c := newClock()
	s, _ := openTest(b, c)
	const batch = 10000
	base := 0
	for b.Loop() {
		b.StopTimer()
		recs := benchRecords(batch, base, c.Now())
		base += batch
		b.StartTimer()
		if err := s.Record(recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(base)/b.Elapsed().Seconds(), "bans/s")
}

// BenchmarkRecordOne stores one ban per transaction: the fsync-bound case
// of a quiet pipeline that bans one address at a time.
func BenchmarkRecordOne(b *testing.B) {
	c := newClock()
	s, _ := openTest(b, c)
	i := 0
	for b.Loop() {
		if err := s.Record(benchRecords(1, i, c.Now())); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "bans/s")
}

// BenchmarkDue reads 100,000 current bans, as a restore at start does.
func BenchmarkDue(b *testing.B) {
	c := newClock()
	s, _ := openTest(b, c)
	for i := range 10 {
		if err := s.Record(benchRecords(10000, i*10000, c.Now())); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		due, err := s.Due(c.Now())
		if err != nil {
			b.Fatal(err)
		}
		if len(due) != 100000 {
			b.Fatalf("Due returned %d", len(due))
		}
	}
}

// BenchmarkRecordTens stores bans ten per transaction into a store that
// already holds 50,000: the ban worker's batches during a ban storm, where
// each commit's fixed cost (page writes, fsync) is shared by few bans.
func BenchmarkRecordTens(b *testing.B) {
	c := newClock()
	s, _ := openTest(b, c)
	if err := s.Record(benchRecords(50000, 0, c.Now())); err != nil {
		b.Fatal(err)
	}
	i := 50000
	for b.Loop() {
		if err := s.Record(benchRecords(10, i, c.Now())); err != nil {
			b.Fatal(err)
		}
		i += 10
	}
	b.ReportMetric(float64(i-50000)/b.Elapsed().Seconds(), "bans/s")
}
