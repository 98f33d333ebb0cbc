package notify

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// recorder is an action that records the events it got.
type recorder struct {
	mu   sync.Mutex
	evs  []Event
	err  error
	only string // if set, Wants only this kind
}

func (r *recorder) Do(_ context.Context, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return r.err
}

func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

type kindRecorder struct {
	recorder
	kind string
}

func (k *kindRecorder) Wants(kind string) bool { return kind == k.kind }

// stuck blocks every call until released or cancelled.
type stuck struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newStuck() *stuck { return &stuck{started: make(chan struct{}), release: make(chan struct{})} }

func (s *stuck) Do(ctx context.Context, _ Event) error {
	s.once.Do(func() { close(s.started) })
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func banEvent(jail string, i int) Event {
	return Event{Kind: KindBan, Ban: sysban.Ban{Jail: jail, Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), Duration: time.Hour}}
}

func run(t *testing.T, d *Dispatcher) (done chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		d.Close()
	})
	return done
}

func TestDispatcherRoutes(t *testing.T) {
	mail, hook := &recorder{}, &recorder{err: errors.New("down")}
	unbanOnly := &kindRecorder{kind: KindUnban}
	d, err := New(map[string]Action{"mail": mail, "hook": hook, "unban": unbanOnly},
		map[string][]string{"sshd": {"mail", "hook", "unban", "mail"}, "dovecot": {"hook"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	lines := []string{"a", "b"}
	d.Notify(Event{Kind: KindBan, Ban: sysban.Ban{Jail: "sshd"}, Lines: lines})
	lines[0] = "changed by the caller"
	d.Notify(Event{Kind: KindUnban, Ban: sysban.Ban{Jail: "sshd"}, Reason: ReasonManual})
	d.Notify(banEvent("dovecot", 1))
	d.Notify(banEvent("nginx", 1)) // no actions: ignored
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	got := d.Stats()
	want := map[string]Stats{
		"mail":  {Sent: 2},   // listed twice for sshd, runs once per event
		"hook":  {Failed: 3}, // sshd ban, sshd unban, dovecot ban
		"unban": {Sent: 1},   // only the unban
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s stats = %+v, want %+v", name, got[name], w)
		}
	}
	if evs := mail.events(); len(evs) != 2 || evs[0].Lines[0] != "a" {
		t.Errorf("mail got %+v; want 2 events with the lines as they were at Notify", evs)
	}
	if evs := unbanOnly.events(); len(evs) != 1 || evs[0].Reason != ReasonManual {
		t.Errorf("unban-only action got %+v", evs)
	}
}

func TestDispatcherNeverBlocks(t *testing.T) {
	slow := newStuck()
	fast := &recorder{}
	d, err := New(map[string]Action{"slow": slow, "fast": fast},
		map[string][]string{"sshd": {"slow", "fast"}}, Options{QueueSize: 2, DrainTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := run(t, d)

	d.Notify(banEvent("sshd", 0))
	select {
	case <-slow.started:
	case <-time.After(30 * time.Second):
		t.Fatal("slow action never started")
	}
	// The slow action holds one event; its queue takes 2; the rest must be
	// dropped without Notify waiting.
	notified := make(chan struct{})
	go func() {
		for i := 1; i < 100; i++ {
			d.Notify(banEvent("sshd", i))
		}
		close(notified)
	}()
	select {
	case <-notified:
	case <-time.After(30 * time.Second):
		t.Fatal("Notify blocked behind a stuck action")
	}
	st := d.Stats()["slow"]
	if st.Dropped != 97 || st.Queued != 2 {
		t.Errorf("slow stats = %+v, want 97 dropped, 2 queued", st)
	}
	// The fast action is not held up by the slow one.
	waitFor(t, "fast action to finish the flood", func() bool {
		st := d.Stats()["fast"]
		return st.Sent+st.Dropped == 100 && st.Queued == 0
	})
	sent := d.Stats()["fast"].Sent
	d.Notify(banEvent("sshd", 100))
	waitFor(t, "fast action to deliver while slow is stuck", func() bool { return d.Stats()["fast"].Sent == sent+1 })

	// Close gives up on the stuck action at the drain deadline (the
	// action stays stuck until the test ends).
	var closeErr error
	returns(t, "Close with a stuck action and a 50ms drain deadline", func() { closeErr = d.Close() })
	if closeErr != nil {
		t.Fatal(closeErr)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st = d.Stats()["slow"]
	// 97 in the flood, 1 more while stuck, 2 still queued at the deadline.
	if st.Failed != 1 || st.Dropped != 100 || st.Queued != 0 {
		t.Errorf("after Close slow stats = %+v, want 1 failed (cancelled), 100 dropped", st)
	}
	before := d.Stats()["fast"].Dropped
	d.Notify(banEvent("sshd", 200)) // after Close: counted, no panic
	if got := d.Stats()["fast"].Dropped; got != before+1 {
		t.Errorf("fast dropped after Close = %d, want %d", got, before+1)
	}
}

func TestDispatcherDrainsOnCancel(t *testing.T) {
	slow := newStuck()
	d, err := New(map[string]Action{"slow": slow}, map[string][]string{"sshd": {"slow"}}, Options{DrainTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for i := range 5 {
		d.Notify(banEvent("sshd", i))
	}
	<-slow.started
	cancel() // shutdown begins; queued events are still delivered
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := d.Stats()["slow"]; st.Sent != 5 || st.Dropped != 0 {
		t.Errorf("stats = %+v, want all 5 sent during the drain", st)
	}
}

func TestDispatcherPanicAndErrors(t *testing.T) {
	if _, err := New(map[string]Action{"a": &recorder{}}, map[string][]string{"sshd": {"b"}}, Options{}); err == nil {
		t.Error("unknown action: want an error")
	}
	if _, err := New(map[string]Action{"a": nil}, nil, Options{}); err == nil {
		t.Error("nil action: want an error")
	}
	d, err := New(map[string]Action{"p": panicky{}}, map[string][]string{"sshd": {"p"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	d.Notify(banEvent("sshd", 1))
	d.Notify(banEvent("sshd", 2))
	waitFor(t, "both events to fail", func() bool { return d.Stats()["p"].Failed == 2 })

	// Close without Run still delivers what was queued.
	rec := &recorder{}
	d2, _ := New(map[string]Action{"a": rec}, map[string][]string{"sshd": {"a"}}, Options{})
	d2.Notify(banEvent("sshd", 1))
	d2.Close()
	if st := d2.Stats()["a"]; st.Sent != 1 {
		t.Errorf("Close without Run: %+v, want 1 sent", st)
	}
}

type panicky struct{}

func (panicky) Do(context.Context, Event) error { panic("boom") }

func BenchmarkNotify(b *testing.B) {
	a, c := newStuck(), newStuck()
	d, _ := New(map[string]Action{"a": a, "b": c},
		map[string][]string{"sshd": {"a", "b"}}, Options{QueueSize: 16, DrainTimeout: time.Millisecond})
	b.Cleanup(func() {
		close(a.release)
		close(c.release)
		d.Close()
	})
	ev := banEvent("sshd", 1)
	ev.Lines = []string{"Failed password for root from 192.0.2.1 port 22 ssh2"}
	b.ReportAllocs()
	for b.Loop() {
		d.Notify(ev)
	}
}
