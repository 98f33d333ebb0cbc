package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/store"
)

// `sysban fleet keygen` writes a seed that `check` (and so run and
// reload, which load the config the same way) accepts; a seed others can
// read is refused with the file, the key and the fix.
func TestFleetKeygenAndCheck(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "fleet.seed")
	var out, errOut bytes.Buffer
	if rc := fleetKeygen(seed, &out, &errOut); rc != 0 {
		t.Fatalf("keygen: %d %s", rc, errOut.String())
	}
	pub := strings.TrimSpace(out.String())
	if !strings.HasPrefix(pub, "U") || !strings.Contains(errOut.String(), "fleet.nkeyseed: "+seed) {
		t.Fatalf("keygen printed %q, %q", pub, errOut.String())
	}
	if rc := fleetKeygen(seed, &out, &errOut); rc == 0 {
		t.Error("keygen overwrote an existing seed")
	}
	cfgPath := filepath.Join(dir, "sysban.yaml")
	config := "state: {dir: " + dir + "}\nfleet:\n  name: collector\n  nkeyseed: " + seed +
		"\n  embedded: {listen: '127.0.0.1:4222', nodes: [collector=" + pub + "]}\n"
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func() (int, string) {
		var stdout, stderr bytes.Buffer
		rc := (&Main{ConfigPath: cfgPath, Stdout: &stdout, Stderr: &stderr}).Check()
		return rc, stdout.String() + stderr.String()
	}
	if rc, text := check(); rc != 0 || !strings.Contains(text, "nkey=true") {
		t.Fatalf("check with a good seed: %d\n%s", rc, text)
	}
	if err := os.Chmod(seed, 0o644); err != nil {
		t.Fatal(err)
	}
	if rc, text := check(); rc != 2 || !strings.Contains(text, cfgPath+": fleet.nkeyseed: "+seed) || !strings.Contains(text, "chmod 600") {
		t.Errorf("check with a world-readable seed: %d\n%s", rc, text)
	}
}

// The recorder commits fleet bans behind the kernel writes; sync returns
// only once every record added before it is in the store, whether added
// while a commit ran or not.
func TestFleetRecorderSync(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := newFleetRecorder(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Now()
	const batches, per = 20, 50
	for i := range batches {
		recs := make([]store.Record, per)
		for j := range recs {
			a := netip.AddrFrom4([4]byte{10, 1, byte(i), byte(j)})
			recs[j] = store.Record{Ban: sysban.Ban{Jail: "sshd", Addr: a, Start: now, Duration: time.Hour}, Source: "fleet:hosta:hosta"}
		}
		r.add(recs)
	}
	r.sync()
	due, err := st.Due(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != batches*per {
		t.Fatalf("%d records in the store after sync, want %d", len(due), batches*per)
	}
	r.sync() // nothing queued: returns at once
}

// The recorder commits at most once per gap: records added while it waits
// join the next commit; a reader's sync, or fleetRecordEager records
// waiting, cut the wait short.
func TestFleetRecorderGap(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := newFleetRecorder(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.gap = time.Hour // only a hurry ends a wait
	now := time.Now()
	batch := func(i, n int) []store.Record {
		recs := make([]store.Record, n)
		for j := range recs {
			a := netip.AddrFrom4([4]byte{10, byte(i), byte(j >> 8), byte(j)})
			recs[j] = store.Record{Ban: sysban.Ban{Jail: "sshd", Addr: a, Start: now, Duration: time.Hour}, Source: "fleet:hosta:hosta"}
		}
		return recs
	}
	inStore := func() int {
		due, err := st.Due(now)
		if err != nil {
			t.Fatal(err)
		}
		return len(due)
	}
	gen0 := st.Generation()
	r.add(batch(1, 10)) // the first commit does not wait
	for deadline := time.Now().Add(5 * time.Second); inStore() < 10; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first batch was not committed at once")
		}
	}
	for i := 2; i < 12; i++ {
		r.add(batch(i, 10))
	}
	time.Sleep(50 * time.Millisecond) // time enough for a recorder that does not wait to commit
	if n := inStore(); n != 10 {
		t.Fatalf("%d records in the store while the recorder waits out its gap, want 10", n)
	}
	r.sync()
	if n := inStore(); n != 110 {
		t.Fatalf("%d records after sync, want 110", n)
	}
	if commits := st.Generation() - gen0; commits != 2 {
		t.Errorf("%d commits for 11 batches, want 2 (one at once, one for the ten that waited)", commits)
	}
	// Enough waiting records are committed without a sync.
	r.add(batch(20, 10))
	r.add(batch(21, fleetRecordEager))
	for deadline := time.Now().Add(5 * time.Second); inStore() < 120+fleetRecordEager; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records waiting, %d in the store: not committed at once", 10+fleetRecordEager, inStore()-110)
		}
	}
	r.sync()
}

// The "fleet ban" lines of a storm are bounded a second; the ones held
// back are counted and told with the next line let through.
func TestFleetBanLinesLimited(t *testing.T) {
	var r lineLimiter
	at := time.Unix(1765000000, 0)
	for i := range fleetBanLinesPerSecond {
		if ok, held := r.allow(at); !ok || held != 0 {
			t.Fatalf("line %d: ok %v held %d, want let through", i, ok, held)
		}
	}
	for range 500 {
		if ok, _ := r.allow(at.Add(999 * time.Millisecond)); ok {
			t.Fatal("a line beyond the second's bound was let through")
		}
	}
	if ok, held := r.allow(at.Add(time.Second)); !ok || held != 500 {
		t.Fatalf("next second: ok %v held %d, want true 500", ok, held)
	}
	if ok, held := r.allow(at.Add(time.Second)); !ok || held != 0 {
		t.Fatalf("then: ok %v held %d, want true 0", ok, held)
	}
}
