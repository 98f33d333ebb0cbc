package store

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	bolt "go.etcd.io/bbolt"
)

// mappedKiB is the resident size of this process's mappings of path, from
// /proc/self/smaps; ok is false where there is no such file.
func mappedKiB(t *testing.T, path string) (kib int, ok bool) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			kib += n
		}
	}
	return kib, sc.Err() == nil
}

// TestScansLeaveNoPagesMapped: the whole-file reads (a bulk Record, Due,
// EachDue, an Expire scan) hand the file's pages back, EachDue also while it
// reads, and what they read is intact after it.
func TestScansLeaveNoPagesMapped(t *testing.T) {
	c := newClock()
	s, path := openTest(t, c)
	if _, ok := mappedKiB(t, path); !ok {
		t.Skip("no /proc/self/smaps")
	}
	t0 := c.Now()
	const n = 20000
	recs := make([]Record, 0, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		recs = append(recs, Record{Ban: sysban.Ban{Jail: "sshd", Addr: a, Start: t0, Duration: time.Hour, Failures: 3,
			Lines: []string{fmt.Sprintf("Failed password for root from %s port 22 ssh2", a)}}, Source: "pipeline"})
	}
	mustRecord(t, s, recs...)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const most = 256 // KiB: the meta pages and a few branch pages
	check := func(after string) {
		t.Helper()
		if kib, _ := mappedKiB(t, path); kib > most {
			t.Errorf("after %s, %d KiB of the %d KiB file mapped; want at most %d", after, kib, fi.Size()>>10, most)
		}
	}
	check("a bulk Record")
	seen, during := 0, 0
	if err := s.EachDue(t0, func(Record) {
		if seen++; seen == n {
			during, _ = mappedKiB(t, path)
		}
	}); err != nil || seen != n {
		t.Fatalf("EachDue gave %d bans, %v; want %d", seen, err, n)
	}
	// While it reads, too: at the last record, the pages of at most the
	// last scanRelease records (and the branch pages) are mapped.
	var used int64 // the file's pages in use (the file itself is grown ahead)
	if err := s.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if whole := int(used >> 10); during > whole/2 {
		t.Errorf("at EachDue's last record, %d KiB of the %d KiB in use mapped; want at most half", during, whole)
	}
	check("EachDue")
	if due, err := s.Due(t0); err != nil || len(due) != n || len(due[n-1].Lines) != 1 {
		t.Fatalf("Due gave %d bans, %v; want %d with their lines", len(due), err, n)
	}
	check("Due")
	if got, err := s.Expire(t0.Add(time.Minute), 1000); err != nil || len(got) != 0 {
		t.Fatalf("Expire = %d, %v", len(got), err)
	}
	check("an Expire scan")
}

// TestGeneration: every write moves the generation, reads do not.
func TestGeneration(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	t0 := c.Now()
	steps := []struct {
		name  string
		fn    func() error
		moves bool
	}{
		{"Record", func() error { return s.Record([]Record{rec("sshd", "192.0.2.1", t0, time.Minute)}) }, true},
		{"Due", func() error { _, err := s.Due(t0); return err }, false},
		{"EachDue", func() error { return s.EachDue(t0, func(Record) {}) }, false},
		{"Lookup", func() error { _, err := s.Lookup(netip.MustParsePrefix("192.0.2.1/32")); return err }, false},
		{"Remove", func() error {
			_, err := s.Remove("sshd", []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}, "manual")
			return err
		}, true},
		{"Record again", func() error { return s.Record([]Record{rec("sshd", "192.0.2.2", t0, time.Minute)}) }, true},
		{"Expire", func() error { _, err := s.Expire(t0.Add(2*time.Minute), 10); return err }, true},
	}
	for _, st := range steps {
		before := s.Generation()
		if err := st.fn(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if moved := s.Generation() != before; moved != st.moves {
			t.Errorf("%s: generation moved = %v, want %v", st.name, moved, st.moves)
		}
	}
}
